import OpenAI from "openai";
import { apiMessage, endsRunAt, errorMessage, type RetryHint } from "../../engine/errors.ts";
import type { Logger } from "../../engine/log.ts";
import {
  connectionWhy,
  endsRunFor,
  MalformedReplyError,
  overCap,
  redirected,
  TRANSIENT,
  unsent,
  withOpenAIRetry,
} from "../openai/openai_retry.ts";
import { safeUrl } from "../embeddings/openai_embeddings.ts";
import { redactKey } from "../openai/redact_key.ts";
import { type Clock, type RateLimiter, realClock } from "../http/rate_limiter.ts";
import { cappedFetch } from "../http/capped_fetch.ts";

/** How replies are held to the schema: the server's structured output, or instructions alone. */
export type StructuredMode = "auto" | "on" | "off";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** The JSON Schema a reply must follow, as `response_format.json_schema` carries it. */
export interface ReplyFormat {
  name: string;
  schema: Record<string, unknown>;
  /** OpenAI's strict mode: only for schemas it accepts (every field required, no extras). */
  strict: boolean;
}

export interface ChatReply {
  /** The assistant's text: JSON when the server kept to the format. */
  content: string;
  /** Tokens the server reported for the request and the reply (an estimate when it reports none). */
  tokens: number;
  /** Why the reply ended: "length" means it was cut at maxOutputTokens. */
  finishReason?: string;
}

/** A chat-completions endpoint, as the llm stage uses it. */
export interface ChatClient {
  readonly model: string;
  /** Where requests go, without credentials: safe to log. */
  readonly endpoint: string;
  complete(messages: ChatMessage[], format: ReplyFormat, signal: AbortSignal): Promise<ChatReply>;
}

export interface OpenAIChatOptions {
  model: string;
  /** Root of the API, up to /v1; default https://api.openai.com/v1. */
  baseUrl?: string;
  apiKey: string;
  /** auto: structured output, falling back when the server refuses it; default auto. */
  structured?: StructuredMode;
  /** Per attempt, in ms; default 60000. */
  timeout?: number;
  /** Attempts after the first on 429, 5xx, timeouts and connection errors; default 5. */
  maxRetries?: number;
  /** Most tokens of one reply (`max_tokens`); default none (the server's). */
  maxOutputTokens?: number;
  /** Most bytes of one reply body; default 4 MiB. */
  maxReplyBytes?: number;
  /** Shared requests/tokens per minute budget; every attempt draws on it. */
  limiter?: RateLimiter;
  /** First backoff in ms (doubling, full jitter, capped at 20s); default 500. */
  backoffBase?: number;
  clock?: Clock;
  random?: () => number;
  log?: Logger;
  /**
   * Counts each request sent, retries included ("requests"), in the run's
   * report, as the embedder does: a request that failed cost its call too.
   */
  tally?: (name: string, n: number) => void;
}

/** A 400 that says the server does not take this `response_format`. */
const FORMAT_REFUSED = /response_format|json_schema|json_object|structured|grammar/i;

/** A failed chat request after this client's retries; `retryable` is read by the stage runner. */
export class ChatRequestError extends Error implements RetryHint {
  /** RetryHint.retryAfterMs: what the last answer's Retry-After asked (set by withOpenAIRetry). */
  retryAfterMs?: number;
  /** RetryHint.service: no reply in time, after the client's retries. */
  readonly service: boolean;
  /** A 401, 403 or 404: the run stops (engine/errors.ts endsRunAt). */
  readonly endsRun: boolean;
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryable: boolean,
    options?: ErrorOptions & { endsRun?: boolean },
  ) {
    super(apiMessage(message, status), options);
    this.name = "ChatRequestError";
    // No reply at all (a timeout, a dropped connection) is the service's failure, not the
    // input's; a 429 or 5xx says so by its status (isServiceFailure).
    this.service = status === undefined && retryable;
    this.endsRun = options?.endsRun ?? endsRunAt(status);
  }
}

/**
 * A ChatClient for any server that speaks OpenAI's POST /chat/completions
 * (OpenAI, Azure's v1 endpoint, llama.cpp's server, Ollama, vLLM, LiteLLM),
 * through npm:openai, with the embeddings client's habits: its own retries
 * through the shared limiter, Retry-After honoured (a 429's wait holds back
 * every request on the limiter), the key in the Authorization header only.
 *
 * Replies are asked for as `response_format: json_schema`. With `structured:
 * auto`, a server that answers 400 naming the response format is asked again
 * in JSON mode (`json_object`), then with no format at all; from the first
 * fallback on, the schema rides in the system message instead, and the
 * client stays at the level that worked for the rest of the run.
 */
export class OpenAIChat implements ChatClient {
  readonly model: string;
  readonly endpoint: string;
  /** HTTP attempts made, and retries among them. */
  readonly stats = { requests: 0, retries: 0 };
  readonly #sdk: OpenAI;
  readonly #fetch: typeof fetch;
  readonly #baseUrl: string;
  readonly #options: OpenAIChatOptions;
  readonly #clock: Clock;
  /** When this client last warned of a retry (withOpenAIRetry's `said`). */
  readonly #said: { at?: number } = {};
  /** The response_format in use: json_schema, then json_object, then none. */
  #level: 0 | 1 | 2;

  constructor(options: OpenAIChatOptions) {
    this.model = options.model;
    this.#options = options;
    this.#clock = options.clock ?? realClock;
    this.#level = options.structured === "off" ? 2 : 0;
    const baseURL = options.baseUrl ?? "https://api.openai.com/v1";
    this.endpoint = safeUrl(baseURL);
    this.#baseUrl = baseURL.replace(/\/+$/, "");
    this.#fetch = options.maxReplyBytes === undefined
      ? cappedFetch(4 * 1024 * 1024, "a chat reply's limit")
      : cappedFetch(options.maxReplyBytes);
    this.#sdk = new OpenAI({
      apiKey: options.apiKey,
      baseURL,
      organization: null,
      project: null,
      maxRetries: 0,
      timeout: options.timeout ?? 60_000,
      logLevel: "off",
      fetch: this.#fetch,
    });
  }

  /**
   * Whether the server answers at all, asked at start with a request that
   * costs no tokens (GET /models): with none listening, each batch would
   * wait it out as an outage, 10 minutes apiece, where the embedder's start
   * check ends the run at once (exit 75). Any answer passes, a 404 of a
   * server with no such route or a 401 included (a key is judged by the
   * first batch, which a refusal ends): only no answer in `timeout` fails,
   * with `away` set, as a service that did not answer at start.
   */
  async answers(signal: AbortSignal): Promise<void> {
    const timeout = AbortSignal.timeout(this.#options.timeout ?? 60_000);
    try {
      const reply = await this.#fetch(`${this.#baseUrl}/models`, {
        headers: { authorization: `Bearer ${this.#options.apiKey}` },
        signal: AbortSignal.any([signal, timeout]),
        redirect: "manual",
      });
      await reply.body?.cancel();
    } catch (error) {
      if (signal.aborted) throw error;
      throw Object.assign(
        new Error(
          `${this.model} at ${this.endpoint} did not answer: ${
            timeout.aborted
              ? "no answer in time (timeout)"
              : redactKey(connectionWhy(error), this.#options.apiKey, this.#options.baseUrl)
          } (is the server running, and is the url right?)`,
        ),
        { away: true },
      );
    }
  }

  /** The response format in use, for logs: json_schema, json_object or none. */
  get format(): string {
    return ["json_schema", "json_object", "none"][this.#level];
  }

  async complete(
    messages: ChatMessage[],
    format: ReplyFormat,
    signal: AbortSignal,
  ): Promise<ChatReply> {
    for (;;) {
      const level = this.#level;
      const tokens = this.#tokensParam;
      try {
        return await this.#request(messages, format, level, signal);
      } catch (error) {
        if (!this.#fallBack(error, level) && !this.#tokensRefused(error, tokens)) throw error;
      }
    }
  }

  /**
   * What the reply's token limit is sent as: `max_tokens`, which every
   * OpenAI-compatible server knows, until a server refuses it for
   * `max_completion_tokens` (OpenAI's reasoning models, o1 to gpt-5: every
   * request refused alike with a 400, every item dead-lettered).
   */
  #tokensParam: "max_tokens" | "max_completion_tokens" = "max_tokens";

  /** Whether `error` refused `max_tokens` for `max_completion_tokens`; if so, asks with that from now on. */
  #tokensRefused(error: unknown, sent: string): boolean {
    if (!(error instanceof ChatRequestError) || error.status !== 400) return false;
    if (sent !== "max_tokens" || !/max_tokens/.test(error.message)) return false;
    if (!/max_completion_tokens/.test(error.message)) return false;
    if (this.#tokensParam === "max_tokens") {
      this.#tokensParam = "max_completion_tokens";
      this.#options.log?.warn(
        `${this.model} at ${this.endpoint} refused max_tokens; asking with max_completion_tokens`,
      );
    }
    return true;
  }

  /** Moves to the next response format after a refusal of this one; false when there is none. */
  #fallBack(error: unknown, level: number): boolean {
    if (!(error instanceof ChatRequestError) || error.status !== 400) return false;
    if (this.#options.structured !== "auto" && this.#options.structured !== undefined) return false;
    if (level >= 2 || !FORMAT_REFUSED.test(error.message)) return false;
    if (this.#level === level) {
      const refused = this.format;
      this.#level = (level + 1) as 1 | 2;
      this.#options.log?.warn(
        `${this.model} at ${this.endpoint} refused response_format ${refused}; ` +
          `asking with ${this.#level === 1 ? "json_object" : "the schema in the instructions"}`,
      );
    }
    return true;
  }

  async #request(
    messages: ChatMessage[],
    format: ReplyFormat,
    level: number,
    signal: AbortSignal,
  ): Promise<ChatReply> {
    const { limiter, maxRetries = 5 } = this.#options;
    const sent = level === 0 ? messages : withSchemaInstructions(messages, format);
    const estimate = Math.ceil(sent.reduce((n, m) => n + m.content.length, 0) / 4);
    const body: OpenAI.ChatCompletionCreateParamsNonStreaming = {
      model: this.model,
      messages: sent,
      ...(this.#options.maxOutputTokens
        ? { [this.#tokensParam]: this.#options.maxOutputTokens }
        : {}),
      ...(level === 0
        ? { response_format: { type: "json_schema", json_schema: format } }
        : level === 1
        ? { response_format: { type: "json_object" } }
        : {}),
    };
    const reply: OpenAI.ChatCompletion = await withOpenAIRetry(async () => {
      await limiter?.acquire(estimate + (this.#options.maxOutputTokens ?? 0), signal);
      this.stats.requests++;
      this.#options.tally?.("requests", 1);
      const reply = await this.#sdk.chat.completions.create(body, { signal, maxRetries: 0 });
      if (!Array.isArray((reply as Partial<OpenAI.ChatCompletion> | undefined)?.choices)) {
        throw new MalformedReplyError("a chat completion", reply);
      }
      return reply;
    }, {
      ...this.#options, // backoffBase, random, limiter, log
      signal,
      maxRetries,
      clock: this.#clock,
      stats: this.stats,
      said: this.#said,
      failure: (error) => this.#failure(error),
    });
    const choice = reply?.choices?.[0];
    const message = choice?.message;
    const content = typeof message?.content === "string"
      ? message.content
      : message?.refusal
      ? `(refused: ${message.refusal})`
      : "";
    return {
      content,
      tokens: reply?.usage?.total_tokens ?? estimate + Math.ceil(content.length / 4),
      finishReason: choice?.finish_reason ?? undefined,
    };
  }

  /** A failed attempt in this client's words, without the key. */
  #failure(error: unknown): ChatRequestError {
    const where = `${this.model} at ${this.endpoint}`;
    const redact = (m: string) => redactKey(m, this.#options.apiKey, this.#options.baseUrl);
    if (error instanceof OpenAI.APIConnectionTimeoutError) {
      const ms = this.#options.timeout ?? 60_000;
      return new ChatRequestError(`${where}: no reply within ${ms} ms`, undefined, true);
    }
    if (redirected(error)) {
      return new ChatRequestError(
        `${where}: ${redact(errorMessage((error as Error).cause))}`,
        undefined,
        false,
        { endsRun: true },
      );
    }
    if (overCap(error)) {
      // It would come again as large: the same request is not sent again.
      return new ChatRequestError(
        `${where}: ${redact(errorMessage((error as Error).cause))}`,
        undefined,
        false,
      );
    }
    if (error instanceof OpenAI.APIConnectionError) {
      // The SDK says only "Connection error."; its cause says what (refused, no such host).
      const why = error.cause ? `: ${redact(connectionWhy(error.cause))}` : "";
      return new ChatRequestError(
        unsent(error)
          ? `${where}: cannot connect${why} (is the server running, and is the url right?)`
          : `${where}: no reply, the connection was closed${why}`,
        undefined,
        true,
      );
    }
    if (error instanceof MalformedReplyError) {
      return new ChatRequestError(`${where}: ${redact(error.message)}`, undefined, true);
    }
    if (error instanceof OpenAI.APIError && error.status !== undefined) {
      // No `cause`: the SDK's error keeps the body unredacted.
      const ends = endsRunFor(error);
      return new ChatRequestError(
        `${where}: ${redact(error.message)}`,
        error.status,
        TRANSIENT.has(error.status) && !ends,
        { endsRun: ends },
      );
    }
    if (error instanceof SyntaxError) {
      // The SDK's JSON.parse of a 200's body (a proxy's page, a body cut short), said as the
      // embeddings client says it: not the model's answer, of which llm.ts says "the reply is
      // not JSON". Worth another try, like a reply that never came.
      return new ChatRequestError(
        `${where}: answered with a body that is not valid JSON (${redact(errorMessage(error))})`,
        undefined,
        true,
      );
    }
    return new ChatRequestError(`${where}: ${redact(errorMessage(error))}`, undefined, true);
  }
}

/** The messages with the schema spelled out in the system message, for a server without json_schema. */
function withSchemaInstructions(messages: ChatMessage[], format: ReplyFormat): ChatMessage[] {
  const rule = "Reply with one JSON value only, no prose and no code fence, following this " +
    `JSON Schema:\n${JSON.stringify(format.schema)}`;
  const [first, ...rest] = messages;
  return first?.role === "system"
    ? [{ role: "system", content: `${first.content}\n\n${rule}` }, ...rest]
    : [{ role: "system", content: rule }, ...messages];
}
