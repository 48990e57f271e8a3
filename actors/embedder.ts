import { z } from "zod";
import { didYouMean } from "../config/suggest.ts";
import { duration } from "../config/units.ts";
import type { Actor, StageContext } from "../engine/actor.ts";
import type { Envelope, RawItem } from "../engine/item.ts";
import type { BuildEnv, StageSpec } from "../engine/registry.ts";
import type { WindowOptions } from "../engine/window.ts";
import type { EmbeddingClient } from "../adapters/embeddings/embedding_client.ts";
import { HashingEmbedder } from "../adapters/embeddings/hashing_embedder.ts";
import { apiBaseUrl } from "../adapters/openai/base_url.ts";
import { combineChunks, EmbedInputs } from "./_embed_inputs.ts";
import { connectOpenAI, type EmbedConnection } from "./_embed_openai.ts";
import { absentFieldWarner, templateFields } from "./_template.ts";

/** The providers a flow file may name; each needs a factory in `PROVIDERS` below. */
const PROVIDER_NAMES = ["local", "openai"] as const;
/** Inputs OpenAI takes in one embeddings request. */
export const MAX_INPUTS_PER_CALL = 2048;

const batchSchema = z.strictObject({
  size: z.int().positive().default(256)
    .describe(
      `Items per embedding call (at most ${MAX_INPUTS_PER_CALL} with openai); default 256.`,
    ),
  maxTokens: z.int().positive().default(200_000)
    .describe("Tokens of input per call (counted as truncate.maxTokens counts); default 200000."),
  maxWait: duration().default(2_000)
    .describe("Longest a first item waits for its batch to fill; default 2s."),
}).describe("The batch window in front of each embedding call.");

const truncateSchema = z.strictObject({
  maxTokens: z.int().positive().default(8191)
    .describe("Most tokens of one input (OpenAI's embedding models take 8191); default 8191."),
  policy: z.enum(["truncate", "chunk-average", "reject"]).default("truncate").describe(
    "A longer input is cut to maxTokens (truncate), embedded in chunks of maxTokens whose " +
      "vectors are averaged by tokens and renormalised (chunk-average), or sent to dead " +
      "letters (reject); default truncate.",
  ),
}).describe("How inputs longer than the model takes are handled.");

/** Fields that only mean something to a remote provider. */
const REMOTE_ONLY = ["model", "baseUrl", "apiKey", "timeout", "maxRetries", "rpm", "tpm", "cache"];

export const embedConfigSchema = z.strictObject({
  provider: z.enum(PROVIDER_NAMES, {
    error: (issue) =>
      `unknown embedding provider ${JSON.stringify(issue.input)}; known providers: ${
        PROVIDER_NAMES.join(", ")
      }${typeof issue.input === "string" ? didYouMean(issue.input, PROVIDER_NAMES) : ""}`,
  }).default("local").describe(
    "Who computes the vectors: local (feature hashing, no service) or openai (any " +
      "OpenAI-compatible embeddings endpoint); default local.",
  ),
  model: z.string().min(1).optional()
    .describe("Model name sent to the API, e.g. text-embedding-3-small; required for openai."),
  baseUrl: apiBaseUrl(
    "API root up to /v1 (Azure, Ollama, vLLM, TEI, LiteLLM); default https://api.openai.com/v1.",
  ),
  apiKey: z.string().min(1, { error: "apiKey is empty (is its environment variable set?)" })
    .optional()
    .describe("Bearer key, usually ${OPENAI_API_KEY}; never logged. Required for openai."),
  dimensions: z.int().positive().max(65_536).optional().describe(
    "Vector length: local default 256; openai sends it when given (checked at start), else " +
      "takes the model's own.",
  ),
  timeout: duration({ positive: true }).optional().describe("Per request (openai); default 30s."),
  maxRetries: z.int().min(0).optional()
    .describe("Retries of a request on 429, 5xx and timeouts (openai); default 5."),
  rpm: z.number().positive().optional()
    .describe("Requests per minute, shared by the stage's batches in flight; default none."),
  tpm: z.number().positive().optional()
    .describe("Input tokens per minute, shared likewise; default none."),
  cache: z.boolean().optional().describe(
    "Reuse vectors by (model, dimensions, text): in Redis in a durable flow, else a file " +
      "under the output directory (openai); default true.",
  ),
  input: z.string().default("{title}\n{text}")
    .refine((t) => templateFields(t).length > 0, {
      message: 'input must name at least one payload field, such as "{title}"',
    })
    .describe(
      'Template over payload fields; a missing field renders as ""; default "{title}\\n{text}".',
    ),
  maxInputChars: z.int().positive().optional()
    .describe(
      "Inputs are first cut to this many characters; default 8000 for local, none for openai.",
    ),
  truncate: truncateSchema.prefault({}),
  batch: batchSchema.prefault({}),
}).superRefine((c, ctx) => {
  if (c.provider === "openai") {
    for (const field of ["model", "apiKey"] as const) {
      if (c[field] === undefined) {
        ctx.addIssue({
          code: "custom",
          path: [field],
          message: field === "model"
            ? "provider openai needs a model, e.g. model: text-embedding-3-small"
            : "provider openai needs an apiKey, e.g. apiKey: ${OPENAI_API_KEY} " +
              "(a server without auth, such as Ollama, takes any value)",
        });
      }
    }
    if (c.batch.size > MAX_INPUTS_PER_CALL) {
      ctx.addIssue({
        code: "custom",
        path: ["batch", "size"],
        message: `batch.size ${c.batch.size} is over the ${MAX_INPUTS_PER_CALL} inputs the ` +
          "embeddings API takes per call",
      });
    }
    return;
  }
  for (const field of REMOTE_ONLY) {
    if (c[field as keyof typeof c] !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: [field],
        message: `${field} is for provider openai; this stage uses provider ${c.provider}`,
      });
    }
  }
}).describe("Adds a vector to every item, one embedding call per batch.");

export type EmbedConfig = z.output<typeof embedConfigSchema>;

type Connect = (ctx: StageContext) => Promise<EmbedConnection>;

/**
 * How each provider's client is built: the one place to add a provider, with
 * its name in `PROVIDER_NAMES`; the compiler insists the two agree. A remote
 * one connects when the stage opens (a probe call checks the dimension, the
 * vector cache opens), so a wrong key or dimension fails the flow at start.
 */
const PROVIDERS: Record<
  EmbedConfig["provider"],
  (config: EmbedConfig, env: BuildEnv, inputs: EmbedInputs) => Connect
> = {
  local: (config) => {
    const client = new HashingEmbedder({ dimensions: config.dimensions ?? 256 });
    return () => Promise.resolve({ client });
  },
  openai: (config, env, inputs) => (ctx) =>
    connectOpenAI(config, env, inputs, ctx.signal, ctx.tally, `${ctx.flow}/${ctx.stage}`),
};

/** The inputs of one embed stage: its actor and its window share them (and what the tokenizer found). */
function inputsOf(config: EmbedConfig): EmbedInputs {
  const remote = config.provider !== "local";
  return new EmbedInputs({
    input: config.input,
    maxInputChars: config.maxInputChars ?? (remote ? Infinity : 8_000),
    model: remote ? config.model! : "local",
    maxTokens: config.truncate.maxTokens,
    policy: config.truncate.policy,
    rejectEmpty: remote,
  });
}

/** The window in front of an embed stage: size, tokens as the actor counts them, maxWait. */
function embedWindow(config: EmbedConfig, inputs: EmbedInputs): WindowOptions {
  return {
    size: config.batch.size,
    maxWeight: config.batch.maxTokens,
    weigh: (item) => inputs.weigh(item),
    maxWait: config.batch.maxWait,
  };
}

/**
 * The Embedder over a given client: what a test builds with a fake client.
 * One `embed` call per batch; a reply that does not hold one vector of the
 * right length per input throws, so the runner retries the batch rather
 * than attach a wrong vector to an item.
 *
 * @example
 * ```ts
 * import { createEmbedder, embedConfigSchema } from "./embedder.ts";
 * import { HashingEmbedder } from "../adapters/embeddings/hashing_embedder.ts";
 *
 * const config = embedConfigSchema.parse({ dimensions: 8 });
 * const actor = createEmbedder(new HashingEmbedder({ dimensions: 8 }), config);
 * if (!actor.handle) throw new Error("an actor handles batches");
 * ```
 */
export function createEmbedder(
  client: EmbeddingClient,
  config: EmbedConfig,
): Actor<RawItem, RawItem> {
  const inputs = inputsOf(config);
  return {
    ...embedder(() => Promise.resolve({ client }), inputs, config.batch.maxTokens),
    window: embedWindow(config, inputs),
  };
}

/**
 * The vectors of `texts`, in calls of at most `maxTokens` tokens (one text
 * at the least): the window keeps a batch within it, but lets an item over
 * it through alone, and a long document's chunks went in one call of
 * 306,625 tokens, which OpenAI refuses (300,000 a request).
 */
async function embedWithin(
  client: EmbeddingClient,
  texts: string[],
  tokens: number[],
  maxTokens: number,
  signal: AbortSignal,
): Promise<number[][]> {
  const total = tokens.reduce((a, b) => a + b, 0);
  if (total <= maxTokens) return await client.embed(texts, signal);
  const calls: Promise<number[][]>[] = [];
  for (let from = 0; from < texts.length;) {
    let to = from + 1, sum = tokens[from];
    while (to < texts.length && sum + tokens[to] <= maxTokens) sum += tokens[to++];
    calls.push(client.embed(texts.slice(from, to), signal));
    from = to;
  }
  return (await Promise.all(calls)).flat();
}

function embedder(
  connect: Connect,
  inputs: EmbedInputs,
  maxTokens: number,
): Actor<RawItem, RawItem> {
  let connection: Promise<EmbedConnection> | undefined;
  let where = "";
  let absent: ReturnType<typeof absentFieldWarner> | undefined;
  const ready = (ctx: StageContext) => {
    where = `${ctx.flow}/${ctx.stage}`;
    return connection ??= inputs.load().then(() => connect(ctx));
  };
  return {
    async open(ctx) {
      await ready(ctx);
    },
    async handle(batch, out, ctx) {
      if (batch.length === 0) return;
      const { client, tallies } = await ready(ctx);
      (absent ??= absentFieldWarner(inputs.input, (m) => ctx.log.warn(`${where}: ${m}`)))(batch);
      const prepared = batch.map((item) => inputs.prepare(item as Envelope<RawItem>));
      const texts = prepared.flatMap((p) => p.rejected || p.deleted ? [] : p.texts);
      const tokens = prepared.flatMap((p) => p.rejected || p.deleted ? [] : p.tokens);
      const vectors = texts.length > 0
        ? await embedWithin(client, texts, tokens, maxTokens, ctx.signal)
        : [];
      // Counted once the call answered: what the provider bills (or, local, would).
      // The openai client tallies what the API says it billed; the local one is estimated here.
      if (!tallies) {
        ctx.tally?.(
          "tokens",
          prepared.reduce((n, p) => n + (p.rejected || p.deleted ? 0 : p.total), 0),
        );
      }
      check(where, client, vectors, texts.length);
      let next = 0;
      for (let i = 0; i < batch.length; i++) {
        const p = prepared[i];
        if (p.rejected) {
          out.reject(batch[i], p.rejected.label, `${where}: ${p.rejected.detail}`);
          continue;
        }
        if (p.deleted) {
          out.emit(batch[i]);
          continue;
        }
        const own = vectors.slice(next, next += p.texts.length);
        out.emit({ ...batch[i], vector: combineChunks(own, p.tokens) });
      }
    },
    async close() {
      const open = await connection?.catch(() => undefined);
      await open?.close?.(where);
    },
  };
}

/** Throws unless `vectors` holds `expected` vectors of the client's length. */
function check(where: string, client: EmbeddingClient, vectors: number[][], expected: number) {
  if (!Array.isArray(vectors) || vectors.length !== expected) {
    throw new Error(
      `${where}: ${client.model} returned ${
        Array.isArray(vectors) ? vectors.length : "no"
      } vectors for ${expected} inputs`,
    );
  }
  for (let i = 0; i < vectors.length; i++) {
    if (vectors[i]?.length !== client.dimensions) {
      throw new Error(
        `${where}: ${client.model} returned a vector of length ${
          vectors[i]?.length
        } for input ${i}, expected ${client.dimensions}`,
      );
    }
  }
}

/**
 * ```yaml
 * - embed:
 *     provider: openai
 *     model: text-embedding-3-small
 *     apiKey: ${OPENAI_API_KEY}
 *     dimensions: 512
 *     rpm: 3000
 *     tpm: 1000000
 *     input: "{title}\n{text}"
 *     truncate: { maxTokens: 8191, policy: chunk-average }
 *     batch: { size: 256, maxTokens: 200000, maxWait: 2s }
 *     concurrency: 4
 * ```
 */
export const embedStage: StageSpec<EmbedConfig> = {
  kind: "embed",
  leavesInputs: true,
  summary: "Adds a vector to every item, batching inputs into one embedding call.",
  schema: embedConfigSchema,
  needs: () => [],
  adds: ["embedded"],
  vectorLength: (config) => config.dimensions ?? (config.provider === "local" ? 256 : undefined),
  create(config, env) {
    const inputs = inputsOf(config);
    const connect = PROVIDERS[config.provider](config, env, inputs);
    const actor = embedder(
      async (ctx) => {
        const connection = await connect(ctx);
        if (env.vectors) {
          env.vectors.dimensions = connection.client.dimensions;
          env.vectors.stage = ctx.stage;
        }
        return connection;
      },
      inputs,
      config.batch.maxTokens,
    );
    return { ...actor, window: embedWindow(config, inputs) };
  },
  workers: (config) =>
    config.provider === "local" ||
    `provider ${config.provider} waits on the network, not the CPU: raise concurrency instead`,
};
