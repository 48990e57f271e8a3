import type { HttpOptions, PerHost } from "./http.ts";

/**
 * A checked flow: what config/load_flow.ts makes of a YAML file and what
 * the programmatic API takes. Every component config in it has already been
 * parsed by its spec's schema, so builders never see raw YAML.
 */
export interface Flow {
  /** The flow name: in log lines, output paths (out/<name>) and Redis keys. */
  name: string;
  /**
   * Whether edges are in-memory channels or Redis streams (durable: survives crashes, shares work).
   */
  durability: "memory" | "redis";
  /** Redis URL when durability is redis. */
  redis?: string;
  /** Where local outputs go (relative paths in sinks, dead letters). Default: out/<name>. */
  outDir: string;
  /** Directory relative paths in component configs resolve against. */
  baseDir: string;
  /** The sources, in flow-file order. */
  sources: SourceEntry[];
  /** The stages, in the order items pass through them. */
  pipeline: StageEntry[];
  /** How many times a durable entry is delivered before its items are dead-lettered. */
  deadLetters: { maxDeliveries: number };
  /** Items each in-memory edge holds before `send` waits. */
  capacity: number;
  /** How durable edges behave; read only when durability is redis. */
  durable: DurableOptions;
  /** The flow's `http:` block; absent (a flow built by hand), every default. */
  http?: HttpOptions;
  /** The flow file, when the flow came from one: errors at start name it. */
  file?: string;
  /** Finds a field of the flow file (e.g. `["sources", "r", "path"]`), for errors at start. */
  locate?: Locate;
}

/** Where a field of a flow file is written: 1-based line and column, when known. */
export type Locate = (
  path: readonly PropertyKey[],
  at: "key" | "value",
) => { line: number; column: number } | undefined;

/** How a durable flow uses Redis: the flow file's `durable:` block, with defaults. */
export interface DurableOptions {
  /** First part of every Redis key of the flow. */
  prefix: string;
  /** Most items one stream entry carries. */
  entryItems: number;
  /** Most bytes of JSON one stream entry carries. */
  entryBytes: number;
  /** Ms an entry may sit pending on a silent consumer before another claims it. */
  claimAfter: number;
  /** Items waiting on an edge before the stage feeding it pauses. */
  maxBacklog: number;
  /**
   * Run consecutive stages as one step with one stream after them: `true`,
   * a windowed stage starts a step; `"all"`, the whole pipeline is one step.
   */
  fuse: boolean | "all";
}

export const DEFAULT_DURABLE: DurableOptions = {
  prefix: "millrace",
  entryItems: 100,
  entryBytes: 1_048_576,
  claimAfter: 30_000,
  maxBacklog: 50_000,
  fuse: false,
};

/** A source as the flow declares it: its kind, its schedule and its checked config. */
export interface SourceEntry {
  /** The source's name in the flow file; items carry it as `source`. */
  name: string;
  /** The registered source kind, e.g. `rss` or `generator`. */
  kind: string;
  /** Poll interval in ms, counted from the end of the last read. At most one of every and cron. */
  every?: number;
  /**
   * A cron expression (5 fields, or 6 with seconds first) whose ticks poll
   * the source, read in `tz`. Absent, with `every`, means read once.
   */
  cron?: string;
  /** IANA time zone of `cron`. Default UTC. */
  tz?: string;
  /** Most ms a poll waits past its due time, drawn at random per poll. Default 0. */
  jitter?: number;
  /** High: its items skip ahead of batch windows and normal items on every edge. */
  priority: "high" | "normal";
  /** This source's own per-host limits, over the flow's `http.perHost`. */
  perHost?: Partial<PerHost>;
  /** The source's config block, as its kind's schema parsed it. */
  config: unknown;
}

/** A stage as the flow declares it, with its checked config. */
export interface StageEntry {
  /** Unique within the flow: the kind, or kind#N when a kind repeats. */
  id: string;
  /** The registered stage kind, e.g. `dedupe`. */
  kind: string;
  /** Batches of this stage handled at once. */
  concurrency: number;
  /** Attempts of a failing batch before it is split to isolate the bad item. */
  retries: number;
  /** Web Workers that run the stage's batches (engine/worker_pool.ts); absent or 0: none. */
  workers?: number;
  /** Longest one try of a batch may take, in ms (StageWork.batchTimeout); absent: the default. */
  batchTimeout?: number;
  /** The stage's config block, as its kind's schema parsed it. */
  config: unknown;
}

/** Whether a source is read again and again (`every` or `cron`), not once. */
export function isPolling(entry: Pick<SourceEntry, "every" | "cron">): boolean {
  return entry.every !== undefined || entry.cron !== undefined;
}
