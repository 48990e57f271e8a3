import type { Clock } from "../../../adapters/http/rate_limiter.ts";

/**
 * A clock whose sleeps return at once, time moving to where the sleeper
 * wanted to wake: one caller at a time sees exact times, so spacing is
 * asserted on this clock, never on the wall's.
 */
export function fakeClock(): Clock & { advance(ms: number): void } {
  let t = 0;
  return {
    now: () => t,
    sleep(ms) {
      t += Math.max(0, ms);
      return Promise.resolve();
    },
    advance(ms) {
      t += ms;
    },
  };
}

/** Most of `times` (ms, sorted or not) that fall in any half-open window [t, t + width). */
export function mostInWindow(times: readonly number[], width: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  let first = 0;
  for (let last = 0; last < sorted.length; last++) {
    while (sorted[last] - sorted[first] >= width) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}
