import { FRESH, pauseUntil, reserve } from "./gcra.ts";
import type { Clock } from "./rate_limiter.ts";

/**
 * The request buckets of every host a run talks to, one per host
 * (`example.com`, `example.com:8080`). A caller passes its own interval and
 * burst on each call, so sources with different `perHost` limits share a
 * host's one bucket, each request spaced at its own source's rate.
 */
export interface HostBuckets {
  /** Reserves the host's next request; resolves to the ms to wait before sending it. */
  take(host: string, interval: number, burst: number): Promise<number>;
  /** Holds every request to the host for `ms` from now (a Retry-After). */
  pause(host: string, ms: number, interval: number, burst: number): Promise<void>;
  /**
   * Ms left of the host's pause, 0 when none: asked again just before a
   * request goes, since one that got its turn before the pause (in another
   * flow, or another process) would go out in the middle of it.
   */
  pausedFor(host: string): Promise<number>;
}

/** Hosts kept before idle ones (their bucket full again) are forgotten. */
const PRUNE_AT = 10_000;

/** The buckets of a flow run in one process (durability: memory). */
export class MemoryHostBuckets implements HostBuckets {
  readonly #tat = new Map<string, number>();
  /** Each paused host, until when (the clock's ms). */
  readonly #paused = new Map<string, number>();
  /** Longest interval seen, so pruning never forgets a bucket that still holds a wait. */
  #longest = 0;

  constructor(private readonly clock: Clock) {}

  take(host: string, interval: number, burst: number): Promise<number> {
    const now = this.clock.now();
    this.#prune(now);
    const slot = reserve(this.#tat.get(host) ?? FRESH, now, interval, burst);
    this.#tat.set(host, slot.tat);
    this.#longest = Math.max(this.#longest, interval * burst);
    return Promise.resolve(slot.start - now);
  }

  pause(host: string, ms: number, interval: number, burst: number): Promise<void> {
    const until = this.clock.now() + ms;
    this.#tat.set(host, pauseUntil(this.#tat.get(host) ?? FRESH, until, interval, burst));
    this.#paused.set(host, Math.max(this.#paused.get(host) ?? 0, until));
    return Promise.resolve();
  }

  pausedFor(host: string): Promise<number> {
    const left = (this.#paused.get(host) ?? 0) - this.clock.now();
    if (left <= 0) this.#paused.delete(host);
    return Promise.resolve(Math.max(0, left));
  }

  /** A crawl of many hosts keeps memory bounded: a bucket idle past its depth is as good as new. */
  #prune(now: number): void {
    if (this.#tat.size < PRUNE_AT) return;
    for (const [host, tat] of this.#tat) {
      if (tat + this.#longest < now) this.#tat.delete(host);
    }
  }
}
