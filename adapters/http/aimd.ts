/**
 * How far below its configured rate each host is driven, by what it said:
 * a 429 or 503 halves the host's rate (multiplicative decrease), each
 * success gives back a twentieth of the configured rate (additive
 * increase), never above it. A host that keeps saying "too many" is slowed
 * fast; one that recovers is sped up gently, as TCP does with a congested
 * link.
 *
 * Kept per process: a shared factor would be one more Redis call per
 * request, and a process that hits 429 already pushes the shared bucket
 * back through its slower interval and the Retry-After pause it shares.
 */
export class Aimd {
  /** The share of the configured rate each slowed host is at; absent: 1. */
  readonly #factor = new Map<string, { factor: number; lastCut: number }>();

  constructor(
    /** Ms a host's rate is not cut again after a cut: one wave of 429s is one signal. */
    private readonly settleMs = 1000,
    /** Added to the factor per success: 1/20, so one halving is undone in 10 successes. */
    private readonly step = 0.05,
    /** The factor never goes below this: 1/64 of the configured rate. */
    private readonly floor = 1 / 64,
  ) {}

  /** The share (0, 1] of its configured rate `host` is at now. */
  factor(host: string): number {
    return this.#factor.get(host)?.factor ?? 1;
  }

  /** The host said 429 or 503 at `now` (ms). */
  slowDown(host: string, now: number): void {
    const state = this.#factor.get(host);
    if (state && now - state.lastCut < this.settleMs) return;
    const factor = Math.max(this.floor, (state?.factor ?? 1) / 2);
    this.#factor.set(host, { factor, lastCut: now });
  }

  /** The host answered a request well. */
  succeeded(host: string): void {
    const state = this.#factor.get(host);
    if (!state) return;
    state.factor += this.step;
    // Sums of twentieths miss 1 by a rounding error: close enough is back.
    if (state.factor >= 1 - 1e-9) this.#factor.delete(host);
  }
}
