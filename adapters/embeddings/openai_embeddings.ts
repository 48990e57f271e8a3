import OpenAI from "openai";
import { cappedFetch } from "../http/capped_fetch.ts";
import { apiMessage, endsRunAt, errorMessage, type RetryHint } from "../../engine/errors.ts";
import type { Logger } from "../../engine/log.ts";
import { maskedError } from "../../engine/mask_url.ts";
import { redactKey } from "../openai/redact_key.ts";
import {
  connectionWhy,
  endsRunFor,
  MalformedReplyError,
  overCap,
  redirected,
  withOpenAIRetry,
} from "../openai/openai_retry.ts";
import type { EmbeddingClient } from "./embedding_client.ts";
import { type Clock, type RateLimiter, realClock } from "../http/rate_limiter.ts";

export interface OpenAIEmbeddingsOptions {
  model: string;
  /** Root of the API, up to /v1; default https://api.openai.com/v1. */
  baseUrl?: string;
  apiKey: string;
  /** Sent with every request when given, and every vector must have it; else learned from the first reply. */
  dimensions?: number;
  /** Per attempt, in ms; default 30000. */
  timeout?: number;
  /** Attempts after the first on 429, 5xx, timeouts and connection errors; default 5. */
  maxRetries?: number;
  /** Shared requests/tokens per minute budget; every attempt draws on it. */
  limiter?: RateLimiter;
  /** Tokens of one input, for the limiter; default chars/4. */
  countTokens?: (text: string) => number;
  /** Most inputs per request; a longer list is sent as several; default 2048 (OpenAI's limit). */
  maxInputs?: number;
  /** First backoff in ms (doubling, full jitter, capped at 20s); default 500. */
  backoffBase?: number;
  clock?: Clock;
  random?: () => number;
  log?: Logger;
  /** Told of each request sent and the tokens each reply reports (a stage's usage counters). */
  tally?: (name: string, n: number) => void;
}

/**
 * Statuses that blame the request's content: the same inputs will fail again,
 * but a part of them may pass, so the stage runner splits the batch at once
 * to find the bad input rather than retry the whole.
 */
const BAD_INPUT = new Set([400, 413, 422]);

/**
 * A failed embeddings request, after this client's own retries. `retryable`
 * is read by the stage runner (through `isRetryable`): false sends the batch
 * straight to splitting.
 */
export class EmbeddingRequestError extends Error implements RetryHint {
  /** RetryHint.retryAfterMs: what the last answer's Retry-After asked (set by withOpenAIRetry). */
  retryAfterMs?: number;
  /**
   * A 401, 403 or 404 (engine/errors.ts endsRunAt), or what no input
   * causes (vectors of the wrong length): the run stops.
   */
  /** RetryHint.service: no reply in time, after the client's retries. */
  readonly service: boolean;
  readonly endsRun: boolean;
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryable: boolean,
    options?: ErrorOptions & { endsRun?: boolean },
  ) {
    super(apiMessage(message, status), options);
    this.name = "EmbeddingRequestError";
    // No reply at all (a timeout, a dropped connection) is the service's failure, not the
    // input's; a 429 or 5xx says so by its status (isServiceFailure).
    this.service = status === undefined && retryable;
    this.endsRun = options?.endsRun ?? endsRunAt(status);
  }
}

/**
 * The largest reply a request can need: every input's vector as JSON
 * numbers (24 bytes at most, sign, 17 digits, exponent and comma; 40 to
 * allow a server that indents) at the asked dimensions, or 4,096 when the
 * model picks, and 1 MiB for the rest. A server sending more is broken or
 * hostile: its reply is refused before it fills memory.
 */
export function replyLimit(options: { maxInputs?: number; dimensions?: number }): number {
  return (options.maxInputs ?? 2048) * (options.dimensions || 4096) * 40 + (1 << 20);
}

/**
 * An EmbeddingClient for any server that speaks OpenAI's POST /embeddings
 * (OpenAI, Azure OpenAI's v1 endpoint, Ollama, vLLM, text-embeddings-inference,
 * LiteLLM), through npm:openai.
 *
 * Retries are this client's, not the SDK's (which is built with
 * `maxRetries: 0`), so each attempt passes through the rate limiter and is
 * counted: exponential backoff with full jitter on 429, 5xx, timeouts and
 * connection errors, or exactly the server's `retry-after-ms` / `Retry-After`
 * (seconds or an HTTP date) when it sends one. A 429's wait holds back every
 * request sharing the limiter.
 *
 * The API key goes into the Authorization header and nowhere else: no log
 * line or error message carries it, nor the base URL's query or user info.
 *
 * @example
 * ```ts ignore
 * import { OpenAIEmbeddings } from "../../mod.ts";
 *
 * const client = new OpenAIEmbeddings({
 *   model: "text-embedding-3-small",
 *   apiKey: Deno.env.get("OPENAI_API_KEY")!,
 *   dimensions: 512,
 * });
 * const [vector] = await client.embed(["hello"], AbortSignal.timeout(30_000));
 * ```
 */
export class OpenAIEmbeddings implements EmbeddingClient {
  readonly model: string;
  /** Where requests go, without credentials: safe to log. */
  readonly endpoint: string;
  /** 0 until the first reply when the options gave none. */
  dimensions: number;
  /** HTTP attempts made, retries among them, and tokens the server reported. */
  readonly stats = { requests: 0, retries: 0, tokens: 0 };
  readonly #sdk: OpenAI;
  readonly #options: OpenAIEmbeddingsOptions;
  readonly #clock: Clock;
  /** When this client last warned of a retry (withOpenAIRetry's `said`). */
  readonly #said: { at?: number } = {};

  /**
   * Sends nothing yet. Only `options` count: no key, organisation or project is taken from the
   * environment, and the key is never logged.
   */
  constructor(options: OpenAIEmbeddingsOptions) {
    this.model = options.model;
    this.dimensions = options.dimensions ?? 0;
    this.#options = options;
    this.#clock = options.clock ?? realClock;
    const baseURL = options.baseUrl ?? "https://api.openai.com/v1";
    this.endpoint = safeUrl(baseURL);
    this.#sdk = new OpenAI({
      apiKey: options.apiKey,
      baseURL,
      // Only what the flow file says counts: no org, project or key from the environment.
      organization: null,
      project: null,
      maxRetries: 0,
      timeout: options.timeout ?? 30_000,
      logLevel: "off",
      fetch: cappedFetch(replyLimit(options), "inputs x dimensions x 40 bytes"),
    });
  }

  async embed(inputs: string[], signal: AbortSignal): Promise<number[][]> {
    if (inputs.length === 0) return [];
    const max = this.#options.maxInputs ?? 2048;
    if (inputs.length <= max) return await this.#request(inputs, signal);
    const parts: Promise<number[][]>[] = [];
    for (let i = 0; i < inputs.length; i += max) {
      parts.push(this.#request(inputs.slice(i, i + max), signal));
    }
    return (await Promise.all(parts)).flat();
  }

  /** One request, retried as the class comment says. */
  async #request(inputs: string[], signal: AbortSignal): Promise<number[][]> {
    const { limiter, maxRetries = 5 } = this.#options;
    const count = this.#options.countTokens ?? ((t: string) => Math.ceil(t.length / 4));
    const tokens = limiter?.countsTokens ? inputs.reduce((n, text) => n + count(text), 0) : 0;
    const reply: OpenAI.CreateEmbeddingResponse = await withOpenAIRetry(async () => {
      await limiter?.acquire(tokens, signal);
      this.stats.requests++;
      this.#options.tally?.("requests", 1);
      const reply = await this.#sdk.embeddings.create({
        model: this.model,
        input: inputs,
        encoding_format: "float",
        ...(this.#options.dimensions ? { dimensions: this.#options.dimensions } : {}),
      }, { signal, maxRetries: 0 });
      if (!Array.isArray((reply as Partial<OpenAI.CreateEmbeddingResponse> | undefined)?.data)) {
        throw new MalformedReplyError("an embeddings reply", reply);
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
    // A server that sends no usage (some compatible ones): the tokens are counted here, as
    // for the limiter; they were reported as 0 unless rpm or tpm was set.
    const used = reply.usage?.total_tokens ??
      (limiter?.countsTokens ? tokens : inputs.reduce((n, text) => n + count(text), 0));
    this.stats.tokens += used;
    this.#options.tally?.("tokens", used);
    return this.#vectors(reply, inputs.length);
  }

  /** Whether a reply's vectors had the expected length: a later one that has not is a change. */
  #matched = false;

  /**
   * The reply's vectors in input order, checked for count, length and
   * numbers (a null would become a 0 and be cached for good). A reply that
   * fails the check is not asked for again as it was: the stage splits the
   * batch at once, rather than buying every good input again with retries.
   */
  #vectors(reply: OpenAI.CreateEmbeddingResponse, expected: number): number[][] {
    const where = `${this.model} at ${this.endpoint}`;
    // What the reply held may echo the request's key (a proxy that put the header in a vector).
    const bad = (message: string, endsRun = false) =>
      new EmbeddingRequestError(`${where} ${this.#redact(message)}`, undefined, false, { endsRun });
    const data = Array.isArray(reply?.data) ? reply.data : [];
    const vectors: number[][] = new Array(expected);
    for (const [i, d] of data.entries()) {
      vectors[typeof d.index === "number" ? d.index : i] = d.embedding;
    }
    for (let i = 0; i < expected; i++) {
      const v = vectors[i];
      if (!Array.isArray(v) || v.length === 0) {
        throw bad(`returned ${data.length} vectors for ${expected} inputs`);
      }
      if (this.dimensions === 0) this.dimensions = v.length;
      if (v.length !== this.dimensions) {
        // The model's doing, not an input's: every batch would fail alike, split down to
        // one-input calls, each paid for. The run stops, as for a wrong key.
        throw bad(
          `returned vectors of ${v.length} dimensions, expected ${this.dimensions}` +
            (this.#matched
              ? ` as its earlier replies gave: did the model behind ${this.endpoint} change?`
              : this.#options.dimensions
              ? ": does this model honour `dimensions`? Leave it out to use the model's own"
              : ""),
          true,
        );
      }
      for (const x of v) {
        if (typeof x !== "number" || !Number.isFinite(x)) {
          throw bad(`returned a vector holding ${JSON.stringify(x) ?? String(x)}, not a number`);
        }
      }
    }
    this.#matched = true;
    return vectors;
  }

  /**
   * A server's message without the key: OpenAI's 401 quotes part of it
   * ("Incorrect API key provided: sk-abc***xyz"), and a proxy may quote all.
   */
  #redact(message: string): string {
    return redactKey(message, this.#options.apiKey, this.#options.baseUrl);
  }

  /** A failed attempt in this client's words, without the key. */
  #failure(error: unknown): EmbeddingRequestError {
    const where = `${this.model} at ${this.endpoint}`;
    if (error instanceof OpenAI.APIConnectionTimeoutError) {
      const ms = this.#options.timeout ?? 30_000;
      return new EmbeddingRequestError(`${where}: no reply within ${ms} ms`, undefined, true);
    }
    if (error instanceof OpenAI.APIError && error.status !== undefined) {
      // No `cause`: the SDK's error keeps the body unredacted.
      const ends = endsRunFor(error);
      return new EmbeddingRequestError(
        `${where}: ${this.#redact(error.message)}`,
        error.status,
        !BAD_INPUT.has(error.status) && !ends,
        { endsRun: ends },
      );
    }
    if (redirected(error)) {
      const message = this.#redact(errorMessage((error as Error).cause));
      return new EmbeddingRequestError(`${where}: ${message}`, undefined, false, { endsRun: true });
    }
    // The SDK says only "Connection error."; its cause says what (refused, a reply over the
    // cap, which is said alone: the connection was fine).
    const cause = error instanceof OpenAI.APIConnectionError && error.cause && !overCap(error)
      ? `: ${connectionWhy(error.cause)}`
      : "";
    // The SDK parses the body itself: its SyntaxError names a position, not the reply.
    const what = error instanceof SyntaxError
      ? `answered with a body that is not valid JSON (${errorMessage(error)})`
      : overCap(error)
      ? errorMessage((error as Error).cause)
      : errorMessage(error);
    const message = this.#redact(what + cause);
    // A reply over the cap would come again: the same request is not retried.
    return new EmbeddingRequestError(`${where}: ${message}`, undefined, !overCap(error), {
      cause: maskedError(error, (text) => this.#redact(text)),
    });
  }
}

/** A URL fit for logs: no user info, no query (an Azure key may ride in either). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`.replace(/\/$/, "");
  } catch {
    throw new RangeError(`baseUrl is not a URL`);
  }
}
