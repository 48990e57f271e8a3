import { retry } from "../retry.ts";
import type { Logger } from "../log.ts";
import { errorMessage } from "../errors.ts";
import { untilAborted } from "../until_aborted.ts";
import { isNoPermission, RedisRefusedError } from "./no_permission.ts";
import { isRefusedForNow, isScriptFault } from "./redis_script.ts";

/**
 * Runs a Redis call until Redis answers it. A dropped connection rejects
 * the command that was in flight (engine/redis/connection.ts never
 * resends it), so a caller without a retry of its own would end on the
 * first network blip. Meant for calls that are safe to run twice. While
 * Redis is away it waits, says so once and once more when Redis answers
 * again; only `signal` ends the wait, by throwing its reason, also while a
 * call is in flight: a command sent while Redis is away sits in the
 * client's queue until it is back, and a hard stop must not wait for that.
 */
export async function untilRedis<T>(
  call: () => Promise<T>,
  { who, what, log, signal, isRetryable, paused = { said: false } }: {
    who: string;
    what: string;
    log: Logger;
    signal: AbortSignal;
    /**
     * Whether `who` said it is pausing and has not yet said it resumes:
     * shared by the calls of one step, so that a pause one call said is
     * ended by the next call that succeeds (a commit its caller starts
     * again after a dropped connection said none), and calls failing at
     * once during one outage say it once.
     */
    paused?: { said: boolean };
    /**
     * False for an error that another try cannot mend: it is thrown at
     * once. A fault of this process's own code (a TypeError, a RangeError:
     * a value JSON cannot encode, a reply that cannot be read) or of a
     * script's is never waited out, whatever this says: waiting would hang
     * the flow behind a log line blaming Redis.
     */
    isRetryable?: (error: unknown) => boolean;
  },
): Promise<T> {
  const result = await retry(() => untilAborted(call(), signal), {
    signal,
    maxAttempts: Infinity,
    baseMs: 100,
    maxMs: 2000,
    isRetryable: (error) =>
      !isOwnFault(error) && !isLostFlow(error) && !isNoPermission(error) &&
      (isRetryable?.(error) ?? true),
    onRetry: ({ error, attempt }) => {
      if (attempt > 1) return;
      // Redis answering "not now" (full memory, a disk it cannot write) is not Redis away.
      const said = isRefusedForNow(error)
        ? `${who}: ${what} refused by Redis for now, trying again until it takes it`
        : `${who}: ${what} failed, pausing until Redis answers`;
      // Said once per pause of `who`; its other calls that fail meanwhile, at debug.
      const say = paused.said ? log.debug : log.warn;
      paused.said = true;
      say?.call(log, said, { error: errorMessage(error) });
    },
  }).catch((error) => {
    if (isNoPermission(error)) {
      // Named by this call, which says more than a script's own (RedisScript) can.
      const cause = error instanceof RedisRefusedError ? error.cause : error;
      throw new RedisRefusedError(what, cause, who);
    }
    throw isLostFlow(error) && !(error instanceof RedisLostFlowError)
      ? new RedisLostFlowError(who, error)
      : error;
  });
  if (paused.said) {
    paused.said = false;
    log.info(`${who}: Redis is back, resuming`);
  }
  return result;
}

/**
 * Redis no longer holds a stream or consumer group the flow made when it
 * started: it came back from a restart without persistence, was flushed,
 * is another server, or the flow was reset under the running process.
 * What the streams held is gone from Redis, and no wait brings it back, so
 * the run ends with this error rather than pausing for ever (while its
 * /readyz said ready).
 */
export class RedisLostFlowError extends Error {
  /** Names the error in a stack and in `error:` lines. */
  override name = "RedisLostFlowError";

  constructor(who: string, cause: unknown) {
    super(
      `${who}: Redis no longer holds this flow's streams and consumer groups (${
        errorMessage(cause).split("\n")[0]
      }): it restarted without persistence, was flushed or reset, evicted them (a ` +
        `maxmemory-policy other than noeviction), or is another server. ` +
        `The entries those streams held are gone from Redis; stopping. Run the flow again to ` +
        `make them anew: sources go on from the positions Redis still holds (from their start ` +
        `when it holds none), and sinks write by item id, so nothing published is written twice`,
      { cause },
    );
  }
}

/** Redis's answer when a stream or consumer group is missing: see RedisLostFlowError. */
export function isLostFlow(error: unknown): boolean {
  return error instanceof RedisLostFlowError || /^NOGROUP\b/.test(errorMessage(error));
}

/**
 * Errors no wait for Redis mends: JavaScript's own (thrown by code on this
 * side, not by the client, whose connection errors are plain Errors) and a
 * script's fault (redis_script.ts).
 */
export function isOwnFault(error: unknown): boolean {
  return error instanceof TypeError || error instanceof RangeError ||
    error instanceof SyntaxError || error instanceof ReferenceError || isScriptFault(error);
}
