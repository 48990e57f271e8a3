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

/** Waits `ms`; resolves early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
