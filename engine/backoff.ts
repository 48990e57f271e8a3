import { setImmediate } from "node:timers";

/**
 * Exponential backoff with full jitter: attempt 0 waits up to `base`, each
 * next attempt up to twice as long, capped at `max`. Full jitter spreads
 * retries of many workers that failed together, instead of having them
 * knock again in step.
 */
export function backoffDelay(
  attempt: number,
  base = 100,
  max = 10_000,
  random = Math.random,
): number {
  return Math.floor(random() * Math.min(max, base * 2 ** attempt));
}

/** The longest delay setTimeout keeps: a longer one fires at once. */
const MAX_TIMER = 2 ** 31 - 1;

/**
 * Waits `ms`; resolves early (without throwing) when `signal` aborts. A
 * wait past setTimeout's limit (about 24.8 days) is made of several timers:
 * given as one, `every: 30d` polled in a tight loop.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout>;
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const wait = (left: number) => {
      timer = left > MAX_TIMER
        ? setTimeout(() => wait(left - MAX_TIMER), MAX_TIMER)
        : setTimeout(done, left);
    };
    wait(ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Resolves on a later turn of the event loop, after the timers, signals and
 * I/O that are due: a loop whose awaits all resolve at once (a source and
 * sinks that do no I/O) otherwise never lets a timer run, not even the one
 * that would stop it. setImmediate, not setTimeout(0): measured here, a
 * turn cost 12 µs that way and about 2 ms the other (nested timers are
 * clamped).
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
