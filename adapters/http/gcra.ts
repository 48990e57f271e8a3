/**
 * The per-host request bucket as pure arithmetic (GCRA, the generic cell
 * rate algorithm): the whole state of a bucket is one number, the
 * theoretical arrival time `tat` of the next request at the sustained rate.
 * One number is what makes the bucket cheap to share through Redis (one
 * key, one script call per request; see redis_host_buckets.ts), and the
 * same function runs in memory.
 *
 * It is a token bucket of depth `burst` refilled every `interval` ms: after
 * a quiet spell `burst` requests go at once, then one per `interval`. In any
 * half-open window of `w` ms at most `burst - 1 + ceil(w / interval)`
 * requests start, so with burst 1 and a whole rps r no 1 s window holds more than r.
 */

/** A reserved request: when it may start, and the bucket after it. */
export interface Slot {
  /** Time (ms, the caller's clock) the request may start; `now` or later. */
  start: number;
  /** The bucket's state after the reservation. */
  tat: number;
}

/** The state of a bucket nobody has used: any time in the past will do. */
export const FRESH = Number.NEGATIVE_INFINITY;

/**
 * Reserves the next request of a bucket at `now`. Reservations are taken
 * in call order and never refused: a caller gets a start time in the future
 * and waits for it, so requests queue rather than fail.
 *
 * @example
 * ```ts
 * import { FRESH, reserve } from "./gcra.ts";
 *
 * let tat = FRESH;
 * const starts = [];
 * for (let i = 0; i < 4; i++) {
 *   const slot = reserve(tat, 0, 1000, 2); // 1 rps, burst 2, all asked at t=0
 *   tat = slot.tat;
 *   starts.push(slot.start);
 * }
 * if (starts.join() !== "0,0,1000,2000") throw new Error("two at once, then one a second");
 * ```
 */
export function reserve(tat: number, now: number, interval: number, burst: number): Slot {
  return {
    start: Math.max(now, tat - (burst - 1) * interval),
    tat: Math.max(tat, now) + interval,
  };
}

/**
 * The bucket after the host asked for a pause (Retry-After): nothing starts
 * before `until`, and the bucket is empty then, so the first request after
 * the pause goes alone rather than with a burst behind it.
 */
export function pauseUntil(tat: number, until: number, interval: number, burst: number): number {
  return Math.max(tat, until + (burst - 1) * interval);
}

/**
 * How much wider than `1 / rps` requests are spaced. A server counts
 * arrivals, not our start times, and two requests started one interval
 * apart can arrive closer (the earlier one slowed by its connect or a busy
 * event loop). At 10% a second at the server holds more than `rps`
 * requests only when one arrives later than the next `rps` by more than a
 * tenth of a second (100 ms at any rate); `rps` is a ceiling, not a target.
 */
export const SPACING_SLACK = 0.1;

/** Ms between requests at `rps` requests per second, with the slack. */
export function intervalOf(rps: number): number {
  return (1000 / rps) * (1 + SPACING_SLACK);
}
