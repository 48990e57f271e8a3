import OpenAI from "openai";
import { RedirectError, ReplyTooLargeError } from "../http/capped_fetch.ts";
import { neverConnected } from "../http/never_connected.ts";
import {
  AWAY_STATUSES,
  cutShort,
  endsRunAt,
  errorMessage,
  type RetryHint,
} from "../../engine/errors.ts";
import type { Logger } from "../../engine/log.ts";
import { retry, retryAfterMs } from "../../engine/retry.ts";
import type { Clock, RateLimiter } from "../http/rate_limiter.ts";

/** Longest Retry-After honoured as given; a longer one waits this long and asks again. */
const MAX_RETRY_AFTER = 60_000;
/**
 * Longest failure a client says: a server's error page (quoted whole by
 * the SDK's message) can be megabytes, and it goes into every retry's log
 * line and every item's dead letter.
 */
const MAX_FAILURE = 1000;
/** How often a client warns of a retry at most (see OpenAIRetryOptions.said). */
const SAY_EVERY_MS = 60_000;
/** Statuses worth another attempt of the same request. */
export const TRANSIENT: ReadonlySet<number> = new Set([408, 409, 429, 500, 502, 503, 504]);

/** What a call to an OpenAI-compatible API needs to be retried the same way everywhere. */
export interface OpenAIRetryOptions {
  signal: AbortSignal;
  /** Attempts after the first. */
  maxRetries: number;
  backoffBase?: number;
  random?: () => number;
  clock: Clock;
  /** Shared by every request of the stage: a 429's wait holds them all back. */
  limiter?: RateLimiter;
  stats: { retries: number };
  log?: Logger;
  /**
   * When this client last warned of a retry (its clock's ms), shared by its
   * requests: a request's first retry warns at most once a minute per
   * client. While a server is away the stage tries its batch again and
   * again, each a new request, and every one warned "attempt 1 of 5".
   */
  said?: { at?: number };
  /**
   * The stage's usage counts (the summary's, and millrace_stage_usage_total):
   * each retry of a request is counted as `request retries`, since a stage
   * whose client retries within one try of its batch shows nothing in its
   * batch retries while it struggles.
   */
  tally?: (name: string, n: number) => void;
  /** The failure in the client's words, without its key. */
  failure(error: unknown): Error;
}

/**
 * `call` with the embedder's and the llm stage's retry: backoff with jitter,
 * `Retry-After` honoured (and a 429's wait shared through the limiter), a
 * warning at a request's first retry (the later ones at debug); what
 * finally fails is thrown as `failure` says it, marked `away` when the
 * service is (see isAway), which the stage runner waits out for a while
 * instead of splitting the batch into dead letters.
 */
export async function withOpenAIRetry<T>(
  call: () => Promise<T>,
  o: OpenAIRetryOptions,
): Promise<T> {
  const failure = (error: unknown): Error & RetryHint => {
    const said: Error & RetryHint = o.failure(error);
    said.message = cutShort(said.message, MAX_FAILURE);
    return said;
  };
  const askedOf = (error: unknown) =>
    error instanceof OpenAI.APIError ? retryAfterMs(error.headers, MAX_RETRY_AFTER) : undefined;
  try {
    return await retry(call, {
      signal: o.signal,
      maxAttempts: o.maxRetries + 1,
      baseMs: o.backoffBase ?? 500,
      maxMs: 20_000,
      random: o.random,
      sleep: (ms, signal) => o.clock.sleep(ms, signal),
      isRetryable: transient,
      retryAfterMs: askedOf,
      onRetry: ({ error, attempt, delayMs, asked }) => {
        if (asked && error instanceof OpenAI.APIError && error.status === 429) {
          o.limiter?.pause(delayMs);
        }
        o.stats.retries++;
        o.tally?.("request retries", 1);
        // A warning for a request's first retry; the next ones of the same request only
        // under --log-level debug: a service down for every request wrote one line per
        // retry, five per request, a wall of them for a handful of items.
        const now = o.clock.now();
        const fresh = attempt === 1 &&
          (o.said?.at === undefined || now - o.said.at >= SAY_EVERY_MS);
        if (fresh && o.said) o.said.at = now;
        const say = fresh ? o.log?.warn : o.log?.debug;
        say?.call(o.log, `${failure(error).message}; retrying`, {
          attempt,
          of: o.maxRetries,
          waitMs: Math.round(delayMs),
        });
      },
    });
  } catch (error) {
    o.signal.throwIfAborted();
    const failed = failure(error);
    if (isAway(error)) failed.away = true;
    // The last attempt's Retry-After: a 429's holds back the stage's other requests, as at
    // every retry, and the stage's next try of the batch (or of its halves) waits for it.
    // Dropped, the next request went out within milliseconds of the server asking for seconds.
    const asked = askedOf(error);
    if (asked !== undefined && asked > 0) {
      if (error instanceof OpenAI.APIError && error.status === 429) o.limiter?.pause(asked);
      failed.retryAfterMs = asked;
    }
    throw failed;
  }
}

/**
 * A 200 whose body is not the answer the API gives (a proxy's page, an
 * error object, nothing): the SDK hands such a body on as it is, unparsed
 * text or undefined. Thrown by a client from inside its call, it is tried
 * again like a reply that never came (transient), not read as the model
 * answering nothing, which sent every item of the batch to dead letters.
 */
export class MalformedReplyError extends Error {
  constructor(what: string, body: unknown) {
    const text = typeof body === "string" ? body : JSON.stringify(body) ?? "nothing";
    super(`answered with a body that is not ${what}: ${JSON.stringify(cutShort(text, 200))}`);
    this.name = "MalformedReplyError";
  }
}

/**
 * Whether the service is away rather than the request bad (RetryHint.away):
 * it answered one of AWAY_STATUSES, or no connection was made. A timeout
 * is not counted: a long input can be what keeps a server from answering;
 * nor is a connection dropped once the request was sent (neverConnected):
 * a server that crashes on one input was asked again twice a second for
 * ten minutes per batch, never splitting the input out.
 */
function isAway(error: unknown): boolean {
  if (error instanceof OpenAI.APIError && error.status !== undefined) {
    return AWAY_STATUSES.has(error.status);
  }
  return error instanceof OpenAI.APIConnectionError &&
    !(error instanceof OpenAI.APIConnectionTimeoutError) && !overCap(error) &&
    neverConnected(error);
}

/**
 * Why a connection failed, in the words that say it: Deno's fetch error
 * names both ends and the URL before its reason ("error sending request
 * from 127.0.0.1:59158 for http://…/v1/embeddings (127.0.0.1:8080): client
 * error (SendRequest): connection closed before message completed"), and a
 * client's failure names the endpoint already, so only the reason is kept.
 */
export function connectionWhy(cause: unknown): string {
  return errorMessage(cause).replace(DENO_FETCH_PREFIX, "");
}

const DENO_FETCH_PREFIX =
  /^(?:fetch failed: )?error sending request (?:from \S+ )?for (?:url \(\S+\)|\S+ \(\S+\)): (?:client error \(\w+\): )?/;

/** Whether a connection error left the request unsent (refused, no such host): see neverConnected. */
export function unsent(error: unknown): boolean {
  return error instanceof OpenAI.APIConnectionError && neverConnected(error);
}

/**
 * Whether the same request is worth sending again: on 429, 5xx, timeouts,
 * connection errors, and a reply that is not JSON (the server may be
 * restarting).
 */
function transient(error: unknown): boolean {
  if (error instanceof OpenAI.APIError && error.status !== undefined) {
    return TRANSIENT.has(error.status) && !endsRunFor(error);
  }
  if (overCap(error) || redirected(error)) return false;
  return error instanceof OpenAI.APIConnectionError || error instanceof SyntaxError ||
    error instanceof MalformedReplyError;
}

/** A reply over the capped fetch's limit, as the SDK passes it on: it would come again. */
export function overCap(error: unknown): boolean {
  return error instanceof OpenAI.APIConnectionError && error.cause instanceof ReplyTooLargeError;
}

/**
 * A redirect the capped fetch refused, as the SDK passes it on: every
 * request would be sent there, so the run ends (RetryHint.endsRun) saying
 * where it points, rather than "Connection error." or the "no API key" of
 * the other address a followed redirect reached without the key.
 */
export function redirected(error: unknown): boolean {
  return error instanceof OpenAI.APIConnectionError && error.cause instanceof RedirectError;
}

/**
 * Error codes of OpenAI's API that refuse every request alike, whatever
 * the items: a spent quota (a 429 that waiting does not mend), a parameter
 * or model the server does not take (a 400 or 404).
 */
const ENDING_CODES: ReadonlySet<string> = new Set([
  "insufficient_quota",
  "unsupported_parameter",
  "unsupported_value",
  "model_not_found",
  "invalid_api_key",
]);

/**
 * Whether an API error ends the run (RetryHint.endsRun): a 401, 403 or 404,
 * or one of ENDING_CODES. Taken for a batch's fault, a spent quota went
 * through every retry and split, and dead-lettered every item of the run
 * (240 requests for 40 items), where a wrong key ends it at once.
 */
export function endsRunFor(error: unknown): boolean {
  if (!(error instanceof OpenAI.APIError)) return false;
  if (endsRunAt(error.status)) return true;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && ENDING_CODES.has(code);
}
