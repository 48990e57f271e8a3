import type { Redis } from "ioredis";
import type { DeadLetter } from "../dead_letters.ts";
import type { DurableOptions } from "../flow.ts";
import type { Logger } from "../log.ts";
import type { StageWork } from "../stage_runner.ts";
import type { WindowOptions } from "../window.ts";
import type { StreamEntry } from "./codec.ts";
import type { FlowKeys } from "./keys.ts";

export { LANES } from "./keys.ts";

/**
 * One step of a durable flow: a stage (or several cheap ones fused) that
 * reads its input streams through its consumer group.
 */
export interface DurableStep {
  /** The id of the first stage: names the input streams and the group. */
  readonly id: string;
  readonly stages: StageWork[];
  readonly window?: WindowOptions;
  /** The id of the next step, whose input streams this step feeds; none for the last. */
  readonly next?: string;
  /** The next step's window: output entries are sized to fill it whole. */
  readonly nextWindow?: WindowOptions;
}

/** What a Redis edge needs; shared with its claim and trim loops (recovery.ts). */
export interface DurableStepRun {
  step: DurableStep;
  keys: FlowKeys;
  options: DurableOptions;
  maxDeliveries: number;
  /** Shared connection for non-blocking commands. */
  redis: Redis;
  /** A connection of the step's own, for XREADGROUP BLOCK. */
  reader: Redis;
  consumer: string;
  /** Graceful stop: reads end, what is held is finished and acknowledged. */
  stop: AbortSignal;
  /** Hard stop: abandon work in hand (it stays pending and is claimed later). */
  kill: AbortSignal;
  log: Logger;
  /**
   * Shared by every step of the process: runs redelivered entries one at a
   * time, so a crash is charged to the one entry that was running.
   */
  alone: Serial;
  /**
   * The entries this step has read or claimed and not yet committed, as
   * "<lane> <id>". The claim loop leaves these alone, but not the rest of
   * what Redis says this consumer holds: an XREADGROUP whose reply was lost
   * with the connection delivered entries this process never saw. Each
   * with its number of items: what a hard stop reports in flight.
   */
  held: Map<string, number>;
  /**
   * How many times a connection of this process to Redis has dropped, shared
   * by every step: a delivery read before the last drop is checked before a
   * stage runs on it again (RedisEdge.fence).
   */
  drops: { count: number };
}

/** Runs the tasks given to it one after another. */
export type Serial = <T>(task: () => Promise<T>) => Promise<T>;

export function serial(): Serial {
  let last: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const run = last.then(task, task);
    last = run.catch(() => {});
    return run;
  };
}

export function unparsable(stage: string, entry: StreamEntry): DeadLetter {
  return {
    stage,
    reason: `unreadable entry ${entry.id}: ${entry.error}`,
    attempts: 0,
    item: { id: entry.id, event: "", source: "", seenAt: 0, attempts: 0, payload: entry.raw },
  };
}
