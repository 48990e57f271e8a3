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
  /** Tokens sent to a paid API (the embed stage's), as the actor reports them. */
  tokens = 0;
  /**
   * Told of each batch `handle` took (items, ms): the hook metrics hang
   * their histograms on (cli/metrics.ts), set before the flow's first batch.
   */
  onBatch?: (items: number, ms: number) => void;

  constructor(readonly id: string, readonly kind: string) {}

  count(map: Map<string, number>, reason: string): void {
    map.set(reason, (map.get(reason) ?? 0) + 1);
  }

  get droppedTotal(): number {
    return sum(this.dropped);
  }
  get rejectedTotal(): number {
    return sum(this.rejected);
  }

  toJSON() {
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
    };
  }
}

/** Live counters of one source. */
export class SourceStats {
  emitted = 0;
  reads = 0;
  errors = 0;
  lastError?: string;
  /** When the last read began (epoch ms), and whether one is under way: the dashboard's source state. */
  lastRead?: number;
  reading = false;
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
