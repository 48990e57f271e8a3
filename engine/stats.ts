/** A stage's counters as the run report and `--json` give them. */
export interface StageStatsJson {
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
}

/** A source's counters as the run report and `--json` give them. */
export interface SourceStatsJson {
  name: string;
  kind: string;
  emitted: number;
  reads: number;
  errors: number;
  lastError?: string;
}

/** Live counters of one stage; the progress display reads them while the flow runs. */
export class StageStats {
  received = 0;
  emitted = 0;
  /** Items filtered on purpose, by reason. */
  readonly dropped: Map<string, number> = new Map();
  /** Bad items sent to dead letters, by reason. */
  readonly rejected: Map<string, number> = new Map();
  /** Items that kept failing and went to dead letters. */
  failed = 0;
  retries = 0;
  batches = 0;
  /** Time spent inside handle(), ms. */
  busyMs = 0;

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

  toJSON(): StageStatsJson {
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
  constructor(readonly name: string, readonly kind: string) {}
  toJSON(): SourceStatsJson {
    const { name, kind, emitted, reads, errors, lastError } = this;
    return { name, kind, emitted, reads, errors, ...(lastError ? { lastError } : {}) };
  }
}

function sum(map: Map<string, number>): number {
  let n = 0;
  for (const v of map.values()) n += v;
  return n;
}
