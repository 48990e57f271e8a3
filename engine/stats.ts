/** A stage's counters as the run report and `--json` give them. */
export interface StageStatsJson {
  /** The stage id. */
  id: string;
  /** The stage kind. */
  kind: string;
  /** Items the stage was handed. */
  received: number;
  /** Items it passed on. */
  emitted: number;
  /** Items filtered on purpose, by reason. */
  dropped: Record<string, number>;
  /** Bad items sent to dead letters, by reason. */
  rejected: Record<string, number>;
  /** Items that kept failing and went to dead letters (merge updates among them: failedUpdates). */
  failed: number;
  /** Of `failed`, merge updates (news of a story, not items); only when some were. */
  failedUpdates?: number;
  /** Retries of failed batches. */
  retries: number;
  /** Batches handled. */
  batches: number;
  /** What the stage spent on outside services (tokens, requests, cached); only when it spent. */
  usage?: Record<string, number>;
  /** Ms spent inside `handle`, rounded. */
  busyMs: number;
}

/** A source's counters as the run report and `--json` give them. */
export interface SourceStatsJson {
  /** The source name in the flow file. */
  name: string;
  /** The source kind. */
  kind: string;
  /** Items it emitted. */
  emitted: number;
  /** Reads (polls) made. */
  reads: number;
  /** Reads that failed. */
  errors: number;
  /** What the last failed read said. */
  lastError?: string;
  /** The last read failed: the source was failing when the report was made. */
  failing?: true;
  /**
   * Of the items it emitted, those dead-lettered before any stage saw them
   * (over Redis: items JSON cannot hold); absent when none were.
   */
  deadLettered?: number;
}

/** How many different reasons a stage's drops, and its rejects, are counted by (StageStats.count). */
export const MAX_REASONS = 20;
/** What the reasons past MAX_REASONS are counted as. */
export const OTHER_REASONS = "other reasons";
/** What the usage names past MAX_REASONS (StageStats.tally) are counted as. */
export const OTHER_USAGE = "other";

/**
 * Adds `n` to `key` in `map`, or to `other` once the map holds MAX_REASONS
 * other keys (never, without `other`); whether it went to `other`.
 */
function addCapped(map: Map<string, number>, key: string, n: number, other?: string): boolean {
  const had = map.get(key);
  if (had !== undefined) return (map.set(key, had + n), false);
  const folded = other !== undefined && map.size >= MAX_REASONS && key !== other;
  const counted = folded ? other : key;
  map.set(counted, (map.get(counted) ?? 0) + n);
  return folded;
}

/** Live counters of one stage; the progress display reads them while the flow runs. */
export class StageStats {
  /** Items the stage was handed. */
  received = 0;
  /** Items it passed on. */
  emitted = 0;
  /** Items filtered on purpose, by reason. */
  readonly dropped: Map<string, number> = new Map();
  /** Bad items sent to dead letters, by reason. */
  readonly rejected: Map<string, number> = new Map();
  /** Items that kept failing and went to dead letters (merge updates among them: failedUpdates). */
  failed = 0;
  /** Of `failed`, merge updates: a publish stage's in counts items only, its dead both. */
  failedUpdates = 0;
  /** Retries of failed batches. */
  retries = 0;
  /** Batches handled. */
  batches = 0;
  /** Time spent inside handle(), ms. */
  busyMs = 0;
  /**
   * What the stage spent on outside services, by name (tokens, requests,
   * cached): told by its actor through `StageContext.tally`.
   */
  readonly usage: Map<string, number> = new Map();
  /** Tokens sent to a paid API (or, by the local embedder, that would be), as the actor tallies them. */
  get tokens(): number {
    return this.usage.get("tokens") ?? 0;
  }
  /**
   * Told of each batch `handle` took (items, ms): the hook metrics hang
   * their histograms on (cli/metrics.ts), set before the flow's first batch.
   */
  onBatch?: (items: number, ms: number) => void;

  /** Counters of stage `id`, of kind `kind`, all at zero. */
  constructor(readonly id: string, readonly kind: string) {}

  /**
   * Adds `n` (one by default) to `reason` in `map` (`dropped` or `rejected`),
   * or to OTHER_REASONS once the map holds MAX_REASONS others: a stage that
   * writes each item's own text as its reason ("price missing for <url>")
   * would otherwise keep a counter per item for the life of a polled flow,
   * and its summary row and metrics would grow with them.
   * The engine's own reasons (`not passed on`) say `own` and are always
   * counted apart.
   * @returns whether the reason was counted as OTHER_REASONS.
   */
  count(map: Map<string, number>, reason: string, n = 1, own = false): boolean {
    return addCapped(map, reason, n, own ? undefined : OTHER_REASONS);
  }

  /**
   * Adds `n` to the usage counter `name`, or to OTHER_USAGE once MAX_REASONS
   * others are counted: each name is a metrics series and a part of the
   * summary's row, so a name written per item (a host and an id) would grow
   * them for as long as a polled flow runs, as a reason would (count).
   * @returns whether the name was counted as OTHER_USAGE.
   */
  tally(name: string, n: number): boolean {
    return n !== 0 && addCapped(this.usage, name, n, OTHER_USAGE);
  }

  /** Items dropped, all reasons together. */
  get droppedTotal(): number {
    return sum(this.dropped);
  }
  /** Items rejected, all reasons together. */
  get rejectedTotal(): number {
    return sum(this.rejected);
  }

  /** The counters as plain JSON, for the report. */
  toJSON(): StageStatsJson {
    return {
      id: this.id,
      kind: this.kind,
      received: this.received,
      emitted: this.emitted,
      dropped: Object.fromEntries(this.dropped),
      rejected: Object.fromEntries(this.rejected),
      failed: this.failed,
      ...(this.failedUpdates > 0 ? { failedUpdates: this.failedUpdates } : {}),
      retries: this.retries,
      batches: this.batches,
      busyMs: Math.round(this.busyMs),
      ...(this.usage.size > 0 ? { usage: Object.fromEntries(this.usage) } : {}),
    };
  }
}

/** Live counters of one source. */
export class SourceStats {
  /** Items it emitted. */
  emitted = 0;
  /** Reads (polls) made. */
  reads = 0;
  /** Reads that failed. */
  errors = 0;
  /** What the last failed read said. */
  lastError?: string;
  /** Of the items it emitted, those dead-lettered before any stage saw them. */
  deadLettered = 0;
  /** When the last read began (epoch ms): the dashboard's source state. */
  lastRead?: number;
  /** When the last read that did not fail ended (epoch ms): what an alert on a stale source reads. */
  lastOk?: number;
  /** The last read that ended failed (one cut short by a stop is no news either way). */
  failing = false;
  /** Whether a read is under way. */
  reading = false;
  /** Counters of source `name`, of kind `kind`, all at zero. */
  constructor(readonly name: string, readonly kind: string) {}
  /** The counters as plain JSON, for the report. */
  toJSON(): SourceStatsJson {
    const { name, kind, emitted, reads, errors, lastError, deadLettered, failing } = this;
    return {
      name,
      kind,
      emitted,
      reads,
      errors,
      ...(lastError ? { lastError } : {}),
      ...(failing ? { failing: true as const } : {}),
      ...(deadLettered ? { deadLettered } : {}),
    };
  }
}

function sum(map: Map<string, number>): number {
  let n = 0;
  for (const v of map.values()) n += v;
  return n;
}
