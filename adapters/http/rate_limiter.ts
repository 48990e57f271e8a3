import { sleep } from "../../engine/backoff.ts";

/** Time as the limiter sees it; tests pass a fake one and never wait real minutes. */
export interface Clock {
  /** Milliseconds on a monotonic scale. */
  now(): number;
  /** Waits `ms`; may resolve early when `signal` aborts (the caller checks it). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = { now: () => performance.now(), sleep };

export interface RateLimits {
  /** Requests per minute; absent: no limit. */
  rpm?: number;
  /** Tokens per minute, summed over a request's inputs; absent: no limit. */
  tpm?: number;
}

/**
 * Requests-per-minute and tokens-per-minute budgets shared by every call of
 * one client, so batches in flight at once draw on one budget.
 *
 * Two token buckets of depth one (the GCRA form): each request reserves the
 * next free slot of both, at its call, in call order, then waits for it; a
 * request of n tokens pushes the next slot back by n / tpm minutes. Requests
 * are spaced evenly rather than sent in a burst and then starved, because
 * providers enforce per-minute limits over sub-minute slices ("600 rpm" is
 * 10 per second), and a burst earns 429s there. A request bigger than a
 * minute's tokens is not refused: it goes, and the ones after it wait.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "./rate_limiter.ts";
 *
 * let t = 0;
 * const clock = { now: () => t, sleep: (ms: number) => Promise.resolve(void (t += ms)) };
 * const limiter = new RateLimiter({ rpm: 60 }, clock);
 * const starts = [await limiter.acquire(0), await limiter.acquire(0), await limiter.acquire(0)];
 * if (starts.join() !== "0,1000,2000") throw new Error("one request a second");
 * ```
 */
export class RateLimiter {
  readonly #msPerRequest: number;
  readonly #msPerToken: number;
  readonly #clock: Clock;
  #nextRequest = -Infinity;
  #nextTokens = -Infinity;

  constructor(limits: RateLimits, clock: Clock = realClock) {
    for (const [name, value] of Object.entries(limits)) {
      if (value !== undefined && !(value > 0)) {
        throw new RangeError(`rate limit ${name} must be above 0, got ${value}`);
      }
    }
    this.#msPerRequest = limits.rpm ? 60_000 / limits.rpm : 0;
    this.#msPerToken = limits.tpm ? 60_000 / limits.tpm : 0;
    this.#clock = clock;
  }

  /** Whether it limits tokens (tpm): a caller need not count them otherwise. */
  get countsTokens(): boolean {
    return this.#msPerToken > 0;
  }

  /**
   * Waits for the budget of one request of `tokens` tokens and takes it.
   * Resolves to the time the request may start. A caller that aborts while
   * waiting leaves its slot unused rather than reshuffle the queue.
   */
  async acquire(tokens: number, signal?: AbortSignal): Promise<number> {
    const now = this.#clock.now();
    const start = Math.max(now, this.#nextRequest, this.#nextTokens);
    this.#nextRequest = start + this.#msPerRequest;
    this.#nextTokens = start + tokens * this.#msPerToken;
    if (start > now) await this.#clock.sleep(start - now, signal);
    signal?.throwIfAborted();
    return start;
  }

  /**
   * Holds every request for `ms` from now: a 429's Retry-After speaks for
   * the whole API key, not only for the request that got it.
   */
  pause(ms: number): void {
    const until = this.#clock.now() + ms;
    this.#nextRequest = Math.max(this.#nextRequest, until);
  }
}
