import { withPrefix } from "../engine/log.ts";
import { z } from "zod";
import { duration } from "../config/units.ts";
import type { Actor, Outcome, StageContext } from "../engine/actor.ts";
import type { Envelope, RawItem } from "../engine/item.ts";
import type { BuildEnv, StageSpec } from "../engine/registry.ts";
import type { WindowOptions } from "../engine/window.ts";
import type { ChatClient, ChatMessage } from "../adapters/chat/openai_chat.ts";
import { openReplyCache, type ReplyCache } from "../adapters/chat/reply_cache.ts";
import { textKey } from "../adapters/embeddings/vector_cache.ts";
import { apiBaseUrl } from "../adapters/openai/base_url.ts";
import { RateLimiter } from "../adapters/http/rate_limiter.ts";
import { batchFormat, readReply, requestMessages, retryMessage } from "./_llm_reply.ts";
import { redactKey } from "../adapters/openai/redact_key.ts";
import { absentFieldWarner, compileTemplate, type Template, templateFields } from "./_template.ts";
import { schemaWordProblem } from "./_schema_words.ts";

/** A JSON Schema, as written in YAML, turned into the zod schema replies are checked with. */
function outputChecker(schema: Record<string, unknown>): z.ZodType {
  return z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
}

export const llmConfigSchema = z.strictObject({
  model: z.string().min(1).describe("Model name sent to the API, e.g. gpt-4o-mini. Required."),
  baseUrl: apiBaseUrl(
    "API root up to /v1 (llama.cpp, Ollama, vLLM, LiteLLM, Azure); default https://api.openai.com/v1.",
  ),
  apiKey: z.string().min(1, { error: "apiKey is empty (is its environment variable set?)" })
    .describe(
      "Bearer key, usually ${OPENAI_API_KEY}; never logged. A server without auth takes any value.",
    ),
  prompt: z.string().min(1)
    .refine((t) => templateFields(t).length === 0, {
      message: "prompt is said once per request, for all its items; put item fields such as " +
        '"{title}" in input',
    })
    .describe("What to do with each input: the instructions, sent once per request. Required."),
  input: z.string().default("{title}\n{text}")
    .refine((t) => templateFields(t).length > 0, {
      message: 'input must name at least one payload field, such as "{title}"',
    })
    .describe(
      'Template over payload fields: what the model reads of each item; default "{title}\\n{text}".',
    ),
  schema: z.record(z.string(), z.unknown()).superRefine((schema, ctx) => {
    const misspelt = schemaWordProblem(schema);
    if (misspelt) {
      ctx.addIssue({ code: "custom", message: misspelt.message, path: misspelt.path });
      return;
    }
    try {
      outputChecker(schema);
    } catch (error) {
      ctx.addIssue({
        code: "custom",
        message: `not a JSON Schema this stage can check: ${(error as Error).message}`,
      });
    }
  }).describe("JSON Schema (written in YAML) of one item's result. Required."),
  into: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
    error: "into is a payload field name, such as summary",
  }).describe("Payload field the checked result is written to. Required."),
  structured: z.enum(["auto", "on", "off"]).default("auto").describe(
    "on: ask for json_schema output; off: the schema goes in the instructions; auto: json_schema, " +
      "falling back to JSON mode, then instructions, when the server refuses it. Default auto.",
  ),
  maxInputChars: z.int().positive().default(8_000)
    .describe("Each item's input is cut to this many characters; default 8000."),
  maxOutputTokens: z.int().positive().optional()
    .describe("Most tokens of one reply (max_tokens); default the server's."),
  timeout: duration({ positive: true }).default(60_000).describe("Per request; default 60s."),
  maxRetries: z.int().min(0).default(5)
    .describe("Retries of a request on 429, 5xx and timeouts; default 5."),
  rpm: z.number().positive().optional()
    .describe("Requests per minute, shared by the stage's batches in flight; default none."),
  tpm: z.number().positive().optional()
    .describe("Tokens per minute (input estimated at 4 characters a token), shared likewise."),
  cache: z.boolean().default(true).describe(
    "Reuse results by (model, prompt, input, schema): in Redis in a durable flow, else a file " +
      "under the output directory; default true.",
  ),
  batch: z.strictObject({
    size: z.int().positive().max(100).default(10)
      .describe("Items per request; default 10 (1 asks for each item alone)."),
    maxTokens: z.int().positive().default(8_000)
      .describe("Input tokens per request (estimated at 4 characters a token); default 8000."),
    maxWait: duration().default(2_000)
      .describe("Longest a first item waits for its batch to fill; default 2s."),
  }).prefault({}).describe("How items share a request."),
}).describe("Asks a chat model about each item and writes its checked answer to a field.");

export type LlmConfig = z.output<typeof llmConfigSchema>;

/** One item as the stage sends it: its input, and the cache key of its result. */
interface Prepared {
  input: string;
  key: string;
}

/**
 * The llm stage over a given client (a test can pass its own). A batch is
 * looked up in the cache, then its distinct uncached inputs go in one
 * request; an item whose output fails the schema is asked for once more,
 * with the error, in the same conversation, and then goes to dead letters
 * with the reason. Only checked results are cached.
 */
export function createLlm(
  connect: (ctx: StageContext) => Promise<{ client: ChatClient; cache?: ReplyCache }>,
  config: LlmConfig,
): Actor<RawItem, RawItem> {
  const render: Template = compileTemplate(config.input);
  // The input's fields alone: an item with none of them would ask about the template's bare
  // text, and every such item would get one invented answer (a misspelt field did that).
  const fields = templateFields(config.input);
  const anyField: Template = compileTemplate(fields.map((f) => `{${f}}`).join(""));
  let saidEmpty = false;
  /**
   * With `cache: false`, the checked results of a batch that then failed (a
   * reply cut off, and the batch split; a retry round the server dropped),
   * until an item of a later try takes them: paid for, they are not bought
   * again. Bounded by PAID_KEPT, oldest out first.
   */
  const paid = new Map<string, unknown>();
  let absent: ReturnType<typeof absentFieldWarner> | undefined;
  const check = outputChecker(config.schema);
  const format = batchFormat(config.schema);
  const version = textKey(JSON.stringify([config.prompt, config.input, config.schema]));
  let connection: ReturnType<typeof connect> | undefined;
  const prepare = (item: Envelope<RawItem>, model: string): Prepared => {
    const input = render(item.payload).slice(0, config.maxInputChars);
    return { input, key: textKey(`${model}\n${version}\n${input}`) };
  };
  const window: WindowOptions = {
    size: config.batch.size,
    maxWeight: config.batch.maxTokens,
    weigh: (item) => Math.ceil(render(item.payload).slice(0, config.maxInputChars).length / 4),
    maxWait: config.batch.maxWait,
  };

  return {
    window,
    async open(ctx) {
      await (connection ??= connect(ctx));
    },
    async handle(batch, out, ctx) {
      const { client, cache } = await (connection ??= connect(ctx));
      const where = `${ctx.flow}/${ctx.stage}`;
      (absent ??= absentFieldWarner(config.input, (m) => ctx.log.warn(`${where}: ${m}`)))(batch);
      // An item deleted upstream is a tombstone for the sinks: nothing to ask about.
      const empty = new Set<number>();
      const prepared = batch.map((item, i) => {
        if ((item.payload as RawItem).deleted === true) return undefined;
        if (anyField((item as Envelope<RawItem>).payload).trim() === "") {
          empty.add(i);
          return undefined;
        }
        return prepare(item as Envelope<RawItem>, client.model);
      });
      if (empty.size > 0 && !saidEmpty) {
        saidEmpty = true;
        ctx.log.warn(
          `${where}: an item has none of the input's fields (${fields.join(", ")}): it goes to ` +
            `dead letters as an empty input, not asked about (said once; check input)`,
        );
      }
      const asking = prepared.filter((p) => p !== undefined);
      const distinct = [...new Set(asking.map((p) => p.key))];
      const found = cache ? await cache.getMany(distinct) : [];
      const results = new Map<string, unknown>();
      distinct.forEach((key, i) => {
        const output = parseCached(found[i]);
        if (output !== undefined) results.set(key, output);
      });
      const cached = asking.filter((p) => results.has(p.key)).length;
      for (const key of distinct) if (paid.has(key)) results.set(key, paid.get(key));
      const missing = distinct.filter((key) => !results.has(key));

      const failures = new Map<string, string>();
      if (missing.length > 0) {
        const inputOf = new Map(asking.map((p) => [p.key, p.input]));
        // Each round's checked outputs are stored at once: a retry round that fails for good
        // (a server gone) does not make the outputs already paid for be bought again.
        const keep = async (outputs: Map<number, unknown>) => {
          const fresh: [string, string][] = [];
          for (const [i, output] of outputs) {
            results.set(missing[i], output);
            fresh.push([missing[i], JSON.stringify(output)]);
            if (!cache) paid.set(missing[i], output);
          }
          for (const key of paid.keys()) {
            if (paid.size <= PAID_KEPT) break;
            paid.delete(key);
          }
          await cache?.setMany(fresh).catch((error) =>
            ctx.log.warn(`${where}: storing ${fresh.length} results in the cache failed`, {
              error: String(error),
            })
          );
        };
        const failed = await ask(client, missing.map((k) => inputOf.get(k)!), ctx, keep);
        // A reply quoted in the reason may echo the request's key.
        for (const [i, error] of failed) {
          failures.set(missing[i], redactKey(error, config.apiKey, config.baseUrl));
        }
      }
      // Counted once the batch is through: a try that failed after the lookup counted its
      // cached items again at each retry (15 for 5 in a review's run).
      ctx.tally?.("cached", cached);
      for (const key of distinct) paid.delete(key);
      emitAll(batch as Envelope<RawItem>[], prepared, results, failures, out, config.into, where, {
        empty,
        fields,
      });
    },
    async close() {
      const open = await connection?.catch(() => undefined);
      await open?.cache?.close?.();
    },
  };

  /**
   * One request for `inputs`, and one more for those whose outputs failed;
   * `keep` gets each round's checked outputs (by position). Returns why
   * each input that has no output failed.
   */
  async function ask(
    client: ChatClient,
    inputs: string[],
    ctx: StageContext,
    keep: (outputs: Map<number, unknown>) => Promise<void>,
  ): Promise<Map<number, string>> {
    const messages: ChatMessage[] = requestMessages(config.prompt, inputs);
    const round = async (messages: ChatMessage[], wanted: number[]) => {
      const reply = await client.complete(messages, format, ctx.signal);
      ctx.tally?.("tokens", reply.tokens);
      const read = readReply(
        reply.content,
        wanted,
        check,
        reply.finishReason,
        inputs.length,
        cutAt(config.maxOutputTokens),
      );
      const outputs = new Map<number, unknown>();
      const failed = new Map<number, string>();
      for (const [i, r] of read) {
        if ("error" in r) failed.set(i, r.error);
        else outputs.set(i, r.output);
      }
      await keep(outputs);
      return { content: reply.content, failed, cut: reply.finishReason === "length" };
    };
    const first = await round(messages, inputs.map((_, i) => i));
    if (first.failed.size === 0) return first.failed;
    if (first.cut && inputs.length > 1) {
      // The outputs of the batch did not fit in maxOutputTokens: asked again as they were,
      // they were cut again, and every item went to dead letters though each alone fits.
      // Not retryable, so the runner splits the batch at once (each half asked anew).
      throw Object.assign(
        new Error(
          `${config.model}: the reply for ${inputs.length} inputs was cut off at ` +
            `${cutAt(config.maxOutputTokens)}; the batch is split`,
        ),
        { retryable: false },
      );
    }
    const again: ChatMessage[] = [
      ...messages,
      { role: "assistant", content: first.content },
      retryMessage(first.failed),
    ];
    const second = await round(again, [...first.failed.keys()]);
    for (const [i, error] of second.failed) {
      second.failed.set(i, `${error} (and before the retry: ${first.failed.get(i)})`);
    }
    return second.failed;
  }
}

/** Results `cache: false` keeps for a failed batch's next try (see `paid`). */
const PAID_KEPT = 10_000;

/** A cached result, or undefined for a miss or a value that is not JSON (a foreign writer). */
function parseCached(value: string | undefined): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value) ?? undefined;
  } catch {
    return undefined;
  }
}

function emitAll(
  batch: Envelope<RawItem>[],
  prepared: (Prepared | undefined)[],
  results: Map<string, unknown>,
  failures: Map<string, string>,
  out: Outcome<RawItem>,
  into: string,
  where: string,
  input: { empty: Set<number>; fields: string[] },
): void {
  batch.forEach((item, i) => {
    const key = prepared[i]?.key;
    if (input.empty.has(i)) {
      out.reject(
        item,
        "empty input",
        `${where}: empty input: the item has none of the input's fields (${
          input.fields.join(", ")
        }), nothing to ask about`,
      );
    } else if (key === undefined) {
      out.emit(item);
    } else if (results.has(key)) {
      out.emit({ ...item, payload: { ...item.payload, [into]: results.get(key) } });
    } else {
      out.reject(
        item,
        "invalid-llm-reply",
        `${where}: the model's reply gave no valid result for it, twice: ${failures.get(key)}`,
      );
    }
  });
}

/** The client and cache of a stage, made when it opens; npm:openai loads on first use. */
async function connectLlm(config: LlmConfig, env: BuildEnv, ctx: StageContext) {
  const { OpenAIChat } = await import("../adapters/chat/openai_chat.ts");
  // One even without rpm or tpm: a 429's Retry-After holds back every request of the stage.
  const limiter = new RateLimiter({ rpm: config.rpm, tpm: config.tpm });
  const client = new OpenAIChat({
    model: config.model,
    baseUrl: config.baseUrl,
    apiKey: config.apiKey,
    structured: config.structured,
    timeout: config.timeout,
    maxRetries: config.maxRetries,
    maxOutputTokens: config.maxOutputTokens,
    limiter,
    log: withPrefix(ctx.log, `${ctx.flow}/${ctx.stage}: `),
    tally: ctx.tally,
  });
  await client.answers(ctx.signal);
  const cache = config.cache ? await openReplyCache(env, config.model) : undefined;
  return { client, cache };
}

/**
 * ```yaml
 * - llm:
 *     model: gpt-4o-mini
 *     apiKey: ${OPENAI_API_KEY}
 *     prompt: Give the story's topic and a one-sentence summary.
 *     input: "{title}\n{text}"
 *     schema:
 *       type: object
 *       properties:
 *         topic: { type: string, enum: [tech, science, business, other] }
 *         summary: { type: string }
 *       required: [topic, summary]
 *       additionalProperties: false
 *     into: llm
 *     rpm: 500
 *     batch: { size: 10, maxTokens: 8000, maxWait: 2s }
 * ```
 */
export const llmStage: StageSpec<LlmConfig> = {
  kind: "llm",
  leavesInputs: true,
  summary: "Asks a chat model about each item; the checked answer goes into a field.",
  schema: llmConfigSchema,
  needs: () => [],
  create(config, env) {
    return createLlm((ctx) => connectLlm(config, env, ctx), config);
  },
};

/**
 * What cut a reply that ended for its length: the flow's maxOutputTokens, or
 * when the flow sets none the server's own limit, which a user would look
 * for in the flow in vain.
 */
function cutAt(maxOutputTokens: number | undefined): string {
  return maxOutputTokens === undefined
    ? "the server's output limit (maxOutputTokens is not set: set it to raise the limit)"
    : `maxOutputTokens (${maxOutputTokens})`;
}
