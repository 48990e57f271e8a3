import { maskUrlsIn } from "./mask_url.ts";

/**
 * How millrace speaks of failure: an error's message for a log line, and
 * whether another try of the same call can succeed. The stage runner and
 * `retry` (engine/retry.ts) read the second through `isRetryable`, so an
 * adapter says it once, on the error it throws.
 */

/**
 * The message of an Error, or the thrown value as text: a plain object as
 * its JSON (`{"code":42}`, not `[object Object]`), with the values of keys
 * that name a secret (authorization, token, password, cookie, key…) as
 * `***`, since SDKs reject with objects holding their request's headers.
 * Never throws, whatever was thrown (an object with no prototype, or whose
 * toString or message getter throws, made it throw, and the run with it).
 */
export function errorMessage(error: unknown): string {
  try {
    if (error instanceof Error) {
      const message = String(error.message);
      // Deno's fetch says only "fetch failed"; why (refused, DNS, TLS), and for which URL,
      // is in its cause. Our own adapters say it themselves; a step module's fetch does not.
      if (message === "fetch failed" && error.cause instanceof Error) {
        return `${message}: ${maskUrlsIn(String(error.cause.message))}`;
      }
      return message;
    }
    if (typeof error === "string") return error;
    if (typeof error === "object" && error !== null) {
      const proto = Object.getPrototypeOf(error);
      if (proto === null || proto === Object.prototype) {
        const json = JSON.stringify(error, (key, value) => SECRET_KEY.test(key) ? "***" : value);
        return json.length > MAX_SHOWN ? json.slice(0, MAX_SHOWN) + "…" : json;
      }
    }
    return String(error);
  } catch {
    try {
      return Object.prototype.toString.call(error);
    } catch {
      return "(a thrown value that cannot be shown)";
    }
  }
}

/** The errors JavaScript itself throws at a mistake in code, rather than ones code throws on purpose. */
const CODE_ERRORS = new Set(["TypeError", "ReferenceError", "RangeError", "SyntaxError"]);

/**
 * Where a mistake in a stage's own code happened, as ` (at path:line:column)`
 * (the path from the working directory when under it), for a TypeError and
 * its kin thrown in a local file; "" for anything else. Its message alone
 * ("Cannot read properties of undefined") does not say which line of a step
 * module to look at, and a dead letter is all a user may have.
 */
export function thrownAt(error: unknown): string {
  if (!(error instanceof Error) || !CODE_ERRORS.has(error.name)) return "";
  const at = fileFrame(error);
  return at ? ` (at ${at})` : "";
}

/**
 * `path:line:column` of the local file's line that threw (a path from the
 * working directory when under it, without the URL's query): the first
 * frame in a file, past the built-ins it called (`[].reduce`, `new URL`,
 * `JSON.parse`, which throw for the line that called them). Undefined when
 * the error came back through an await from elsewhere (a fetch's TypeError,
 * thrown in Deno's own code: the line that awaited it made no mistake).
 */
export function fileFrame(error: Error): string | undefined {
  let frame: RegExpExecArray | null = null;
  for (const at of (error.stack ?? "").matchAll(/\n\s+at (.*)/g)) {
    if (at[1].startsWith("async ")) return undefined;
    // Deno writes a path decoded (`sp ace`) unless it is under the working directory's
    // own folder: the path runs to the last `:line:column`, spaces and all.
    frame = /^(?:.*? \()?(file:\/\/.+?):(\d+):(\d+)\)?$/.exec(at[1]);
    if (frame) break;
  }
  return frame ? shownFileLocation(`${frame[1]}:${frame[2]}:${frame[3]}`) : undefined;
}

/**
 * A `file://…:line:column` location as a person types its path: decoded
 * (`sp%20ace` is `sp ace`), without the URL's query, from the working
 * directory when under it; undefined when it is not a file URL.
 */
export function shownFileLocation(location: string): string | undefined {
  const at = /^(file:\/\/.+?):(\d+):(\d+)$/.exec(location);
  const path = at ? shownFilePath(at[1]) : undefined;
  return path === undefined ? undefined : `${path}:${at![2]}:${at![3]}`;
}

/**
 * A `file://` URL as a person types its path: decoded, without the URL's
 * query, from the working directory when under it; undefined when it is not
 * a file URL.
 */
export function shownFilePath(url: string): string | undefined {
  const u = URL.parse(url);
  if (!u || u.protocol !== "file:") return undefined;
  let path: string;
  try {
    path = decodeURIComponent(u.pathname);
  } catch {
    path = u.pathname; // a literal "%" in a name Deno wrote decoded
  }
  const cwd = (() => {
    try {
      return Deno.cwd() + "/";
    } catch {
      return undefined; // the working directory is gone: the absolute path
    }
  })();
  return cwd && path.startsWith(cwd) ? path.slice(cwd.length) : path;
}

/** Longest JSON of a thrown object that errorMessage gives whole. */
const MAX_SHOWN = 500;

/** Keys whose values errorMessage does not show. */
const SECRET_KEY =
  /auth|token|secret|passw|pwd|cookie|api[-_]?key|^key$|credential|session|signature/i;

/**
 * An error that says whether the same call, made again, can succeed.
 * `retryable: false` means no: an API's 400 for a bad input, an item the
 * sink refuses. Absent or true means it may (a timeout, a 503).
 */
export interface RetryHint {
  /** False when the same call made again cannot succeed; absent or true when it may. */
  retryable?: boolean;
  /**
   * True when the call failed because its connection to a store dropped
   * (Redis restarted, a network cut), which no item of the batch caused:
   * the stage runner then tries again until it answers, without spending
   * the batch's retries, so a run of outages cannot split good items into
   * dead letters.
   */
  outage?: boolean;
  /**
   * True when the service the call reached is away, after the client's own
   * retries: it refused the connection, or answered one of AWAY_STATUSES.
   * The stage runner waits it out as an outage for up to ten minutes per
   * batch (stage_runner.ts AWAY_MAX_MS), warning each minute; past that it
   * is an ordinary failure (retried, then split), so a wrong URL or a
   * service that never comes back does not hold a one-shot flow for ever.
   */
  away?: boolean;
  /**
   * True when the call failed for the service's sake, whatever it was
   * given: no reply in time, or an answer of 429 or 5xx after the client's
   * own retries. Only such failures, met by items alone with nothing of
   * their batch passing, make the split stop asking the service
   * (isServiceFailure, stage_runner.ts GIVE_UP_ALONE): an error a stage's
   * own code throws for a bad item says nothing of the service, and the
   * split goes on to find every bad item.
   */
  service?: boolean;
  /**
   * True when every call would fail alike, whatever the items: an API that
   * refuses the key (401, 403) or knows no such model or endpoint (404;
   * ENDING_STATUSES). The run stops with it (endingError) rather than split
   * each batch down to its items and send them all to dead letters.
   */
  endsRun?: boolean;
  /**
   * What the service asked to wait before it is called again (its last
   * answer's Retry-After), in ms: the stage runner waits at least this long
   * before it tries the batch again, or its halves.
   */
  retryAfterMs?: number;
}

/** `text`, cut to `max` characters when longer, saying how much was left out. */
export function cutShort(text: string, max: number): string {
  return text.length <= max
    ? text
    : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** RetryHint.retryAfterMs of `error`, or 0. */
export function askedWait(error: unknown): number {
  const ms = (error as RetryHint | null)?.retryAfterMs;
  return typeof ms === "number" && ms > 0 ? ms : 0;
}

/** HTTP answers that refuse every request alike (RetryHint.endsRun): a wrong key, model or url. */
const ENDING_STATUSES: ReadonlySet<number> = new Set([401, 403, 404]);

/** Whether an API's answer of `status` refuses every request alike, so it ends the run. */
export function endsRunAt(status: number | undefined): boolean {
  return status !== undefined && ENDING_STATUSES.has(status);
}

/** An API client's message for an answer of `status`, saying what to check when it ends the run. */
export function apiMessage(message: string, status: number | undefined): string {
  return endsRunAt(status)
    ? `${message} (every request would be refused alike: check apiKey, model and baseUrl)`
    : message;
}

/**
 * HTTP answers that say the service is away, not that the request is bad:
 * 502 and 503 (a gateway, or the service, down or restarting). Not 500 nor
 * 504 (a server can fail or time out on one large input), nor 429 (a quota
 * spent does not come back by waiting, and "request too large" is the
 * batch's): those are retried, then split.
 */
export const AWAY_STATUSES: ReadonlySet<number> = new Set([502, 503]);

/**
 * False only for an error that says `retryable: false`: anything else (a
 * network error, a thrown string) may pass on another try. The stage runner
 * then skips its retries and splits the batch at once to find the bad item.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isRetryable, PermanentError } from "../mod.ts";
 *
 * assert.equal(isRetryable(new Error("connection reset")), true);
 * assert.equal(isRetryable(new PermanentError("item 7 has no vector")), false);
 * assert.equal(isRetryable(Object.assign(new Error("400"), { retryable: false })), false);
 * ```
 */
export function isRetryable(error: unknown): boolean {
  return (error as RetryHint | null | undefined)?.retryable !== false;
}

/**
 * A failure no retry mends, because it lies in what was asked, not in the
 * moment: the runner splits the batch at once instead of retrying it.
 */
export class PermanentError extends Error implements RetryHint {
  /** Always false: this error is never retried. */
  readonly retryable = false;

  /** `options.cause` keeps the error underneath, as for any Error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PermanentError";
  }
}

/**
 * Whether `error`, or an error it wraps (its cause, or one of an
 * AggregateError's: several sinks failing at once), says an outage
 * (RetryHint.outage).
 */
export function isOutage(error: unknown): boolean {
  return hinted(error, "outage");
}

/** Whether `error`, or an error it wraps, says its service is away (RetryHint.away). */
export function isAway(error: unknown): boolean {
  return hinted(error, "away");
}

/**
 * Whether `error`, or an error it wraps, is the service's failure, not the
 * input's (RetryHint.service): so said, or a timeout (a TimeoutError, as
 * `AbortSignal.timeout` gives fetch), or an HTTP `status` of 429 or 5xx.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isServiceFailure } from "./errors.ts";
 *
 * assert.equal(isServiceFailure(Object.assign(new Error("500"), { status: 500 })), true);
 * assert.equal(isServiceFailure(new DOMException("timed out", "TimeoutError")), true);
 * assert.equal(isServiceFailure(new Error("bad input")), false);
 * ```
 */
export function isServiceFailure(error: unknown): boolean {
  return wraps(error, (e) => {
    const { name, status, service } = e as RetryHint & { name?: unknown; status?: unknown };
    return service === true || name === "TimeoutError" ||
      (typeof status === "number" && (status === 429 || status >= 500));
  });
}

function hinted(error: unknown, hint: "outage" | "away"): boolean {
  return wraps(error, (e) => (e as RetryHint)[hint] === true);
}

/** Whether `error`, its causes or an AggregateError's errors, holds one that passes `test`. */
function wraps(error: unknown, test: (e: object) => boolean, depth = 0): boolean {
  if (typeof error === "object" && error !== null && test(error)) return true;
  if (!(error instanceof Error) || depth > 8) return false;
  if (error instanceof AggregateError && error.errors.some((e) => wraps(e, test, depth + 1))) {
    return true;
  }
  return wraps(error.cause, test, depth + 1);
}

/**
 * A failure that ends the run, not one batch: no retry mends it and no item
 * is to blame (stdout's reader has gone: every item would fail alike, and
 * dead-lettering them would only empty the flow into its dead letters). The
 * stage runner lets it through, so the flow stops with it, and the command
 * line says what ended the run.
 */
export class FlowEndingError extends Error implements RetryHint {
  readonly retryable = false;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FlowEndingError";
  }
}

/**
 * The FlowEndingError thrown as such in `error` or its causes, not one made
 * of an `endsRun` hint: what ends a run from a source's read (a right Redis
 * refuses), where an API's answer only fails the read (a source that fails
 * to read does not end the run).
 */
export function thrownEnding(error: unknown, depth = 0): FlowEndingError | undefined {
  if (error instanceof FlowEndingError) return error;
  if (!(error instanceof Error) || depth > 8) return undefined;
  return thrownEnding(error.cause, depth + 1);
}

/**
 * The FlowEndingError in `error` or its causes (an actor may wrap what it
 * called), or one made of an error that says it ends the run
 * (RetryHint.endsRun), if any.
 */
export function endingError(error: unknown, depth = 0): FlowEndingError | undefined {
  if (error instanceof FlowEndingError) return error;
  if (!(error instanceof Error) || depth > 8) return undefined;
  if ((error as RetryHint).endsRun === true) {
    return new FlowEndingError(error.message, { cause: error });
  }
  if (error instanceof AggregateError) {
    for (const e of error.errors) {
      const found = endingError(e, depth + 1);
      if (found) return found;
    }
  }
  return endingError(error.cause, depth + 1);
}
