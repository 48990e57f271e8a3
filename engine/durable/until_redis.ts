import { backoffDelay, sleep } from "../backoff.ts";
import type { Logger } from "../log.ts";
import { errorMessage } from "../stage_runner.ts";

/**
 * Runs a Redis call until Redis answers it. A dropped connection rejects
 * the command that was in flight (adapters/redis_connection.ts never
 * resends it), so a caller without a retry of its own would end on the
 * first network blip. Meant for calls that are safe to run twice. While
 * Redis is away it waits, says so once and once more when Redis answers
 * again; only `signal` ends the wait, by throwing its reason.
 */
export async function untilRedis<T>(
  call: () => Promise<T>,
  { who, log, signal }: { who: string; log: Logger; signal: AbortSignal },
): Promise<T> {
  for (let attempt = 0;; attempt++) {
    signal.throwIfAborted();
    try {
      const result = await call();
      if (attempt > 0) log.info(`${who}: Redis answers again, resumed`);
      return result;
    } catch (error) {
      signal.throwIfAborted();
      if (attempt === 0) {
        log.warn(`${who}: Redis not answering, retrying`, { error: errorMessage(error) });
      }
      await sleep(backoffDelay(Math.min(attempt, 5), 100, 2000), signal);
    }
  }
}
