/** What a chaos scenario is: a name, what it does, and how it runs its faults. */
import type { Cluster } from "./_cluster.ts";

export interface Mode {
  /** The CI-sized run: small item counts, few faults. */
  short: boolean;
  /** Every flow with `durable.fuse`: two steps instead of five ("all": one), under the same faults. */
  fuse?: boolean | "all";
}

/** What a run hands back beyond the cluster's own measurements. */
export interface RunExtras {
  /** Ids a second sink (Postgres) holds once the flow drained. */
  secondSink?: () => Promise<Set<string>>;
}

export interface Scenario {
  name: string;
  /** One line for --help and the README. */
  about: string;
  needsPostgres?: boolean;
  /**
   * Why a copy of a deduplicated item may be published beside the item in
   * this scenario (what its fault lets the Deduper forget); such copies are
   * then reported in the notes, not counted as duplicates. Every other
   * duplicate still fails the scenario.
   */
  copiesMayRepeat?: string;
  /**
   * Starts the cluster and injects the faults; returns when the last fault
   * ended (the runner then waits for the flow to drain).
   */
  run(c: Cluster, mode: Mode): Promise<RunExtras | void>;
}

/** `short` in short mode, `long` otherwise. */
export function size<T>(mode: Mode, short: T, long: T): T {
  return mode.short ? short : long;
}
