import { backoffDelay, sleep as wait } from "./backoff.ts";
import { isRetryable as retryableByDefault } from "./errors.ts";

/** What `retry` tells `onRetry` before it waits. */
export interface RetryEvent {
  error: unknown;
  /** The attempt that failed, from 1. */
  attempt: number;
  maxAttempts: number;
  /** How long it waits before the next attempt, in ms. */
  delayMs: number;
  /** True when the delay is the one the server asked for (`retryAfterMs`). */
  asked: boolean;
}

export interface RetryOptions {
  /** Aborts the wait between attempts; `retry` then throws the signal's reason. */
  signal?: AbortSignal;
  /** Calls of `fn` in all, the first among them; default 5. */
  maxAttempts?: number;
  /** Longest wait after the first failure, in ms; doubles per attempt; default 100. */
  baseMs?: number;
  /** Cap of the backoff, in ms; default 10000. */
  maxMs?: number;
  /** False for an error another try cannot mend: it is thrown at once. Default: errors.ts `isRetryable`. */
  isRetryable?: (error: unknown) => boolean;
  /** The wait a failure asks for (a 429's Retry-After), in ms; undefined for the backoff's. */
  retryAfterMs?: (error: unknown) => number | undefined;
  /** Called after a failure that will be retried, before the wait (to log or count it). */
  onRetry?: (event: RetryEvent) => void;
  /** Jitter source, for tests; default Math.random. */
  random?: () => number;
  /** Waits ms or until signal aborts, for tests; default a timer. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Calls `fn` until it returns, it throws an error `isRetryable` refuses, or
 * `maxAttempts` calls have failed; then throws the last error. Between
 * attempts it waits what the failure asked for (`retryAfterMs`), else an
 * exponential backoff with full jitter (engine/backoff.ts), so many workers
 * that failed together do not knock again in step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { retry } from "./retry.ts";
 *
 * let calls = 0;
 * const answer = await retry(() => {
 *   if (++calls < 3) throw new Error("busy");
 *   return Promise.resolve(42);
 * }, { baseMs: 1, maxAttempts: 5 });
 * assert.equal(answer, 42);
 * assert.equal(calls, 3);
 * ```
 */
export async function retry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const { signal, maxAttempts = 5, baseMs = 100, maxMs = 10_000, onRetry } = options;
  const isRetryable = options.isRetryable ?? retryableByDefault;
  const sleep = options.sleep ?? wait;
  if (!(maxAttempts >= 1)) {
    throw new RangeError(`maxAttempts must be at least 1, got ${maxAttempts}`);
  }
  for (let attempt = 1;; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (error) {
      signal?.throwIfAborted();
      if (attempt >= maxAttempts || !isRetryable(error)) throw error;
      const asked = options.retryAfterMs?.(error);
      const delayMs = asked ?? backoffDelay(attempt - 1, baseMs, maxMs, options.random);
      onRetry?.({ error, attempt, maxAttempts, delayMs, asked: asked !== undefined });
      await sleep(delayMs, signal);
    }
  }
}

/**
 * The wait a reply asks for, in ms: `retry-after-ms` (OpenAI's), else
 * `Retry-After` as seconds or as an HTTP date (against `now`), at most
 * `capMs`. Undefined when there is none or it makes no sense.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { retryAfterMs } from "./retry.ts";
 *
 * assert.equal(retryAfterMs(new Headers({ "retry-after": "2" }), 60_000), 2000);
 * assert.equal(retryAfterMs(new Headers({ "retry-after-ms": "250" }), 60_000), 250);
 * assert.equal(retryAfterMs(new Headers({ "retry-after": "3600" }), 60_000), 60_000);
 * assert.equal(retryAfterMs(new Response(null, { status: 429 }), 60_000), undefined);
 * ```
 */
export function retryAfterMs(
  reply: Headers | Response | undefined,
  capMs: number,
  now = Date.now(),
): number | undefined {
  const headers = reply instanceof Response ? reply.headers : reply;
  const ms = Number(headers?.get("retry-after-ms")?.trim() || NaN);
  if (Number.isFinite(ms) && ms >= 0) return Math.min(ms, capMs);
  const value = headers?.get("retry-after")?.trim();
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds >= 0 ? Math.min(seconds * 1000, capMs) : undefined;
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.min(Math.max(0, date - now), capMs);
}
