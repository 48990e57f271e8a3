/** Live counters of one stage; the progress display reads them while the flow runs. */
export class StageStats {
  received = 0;
  emitted = 0;
  /** Items filtered on purpose, by reason. */
  readonly dropped = new Map<string, number>();
  /** Bad items sent to dead letters, by reason. */
  readonly rejected = new Map<string, number>();
  /** Items that kept failing and went to dead letters. */
  failed = 0;
  retries = 0;
  batches = 0;
  /** Time spent inside handle(), ms. */
  busyMs = 0;
  /**
   * What the stage spent on outside services, by name (tokens, requests,
   * cached): told by its actor through `StageContext.tally`.
   */
  readonly usage = new Map<string, number>();

  constructor(readonly id: string, readonly kind: string) {}

  count(map: Map<string, number>, reason: string): void {
    map.set(reason, (map.get(reason) ?? 0) + 1);
  }

  /** Adds `n` to the usage counter `name`. */
  tally(name: string, n: number): void {
    if (n !== 0) this.usage.set(name, (this.usage.get(name) ?? 0) + n);
  }

  get droppedTotal(): number {
    return sum(this.dropped);
  }
  get rejectedTotal(): number {
    return sum(this.rejected);
  }

  toJSON(): StageStatsJSON {
    return {
      id: this.id,
      kind: this.kind,
      received: this.received,
      emitted: this.emitted,
      dropped: Object.fromEntries(this.dropped),
      rejected: Object.fromEntries(this.rejected),
      failed: this.failed,
      retries: this.retries,
      batches: this.batches,
      busyMs: Math.round(this.busyMs),
      ...(this.usage.size > 0 ? { usage: Object.fromEntries(this.usage) } : {}),
    };
  }
}

/** A stage's counters as a report holds them. */
export interface StageStatsJSON {
  id: string;
  kind: string;
  received: number;
  emitted: number;
  dropped: Record<string, number>;
  rejected: Record<string, number>;
  failed: number;
  retries: number;
  batches: number;
  busyMs: number;
  /** Only when the stage spent something (tokens, requests). */
  usage?: Record<string, number>;
}

/** Live counters of one source. */
export class SourceStats {
  emitted = 0;
  reads = 0;
  errors = 0;
  lastError?: string;
  constructor(readonly name: string, readonly kind: string) {}
  toJSON() {
    const { name, kind, emitted, reads, errors, lastError } = this;
    return { name, kind, emitted, reads, errors, ...(lastError ? { lastError } : {}) };
  }
}

function sum(map: Map<string, number>): number {
  let n = 0;
  for (const v of map.values()) n += v;
  return n;
}
