import type { Envelope, RawItem } from "./item.ts";

/**
 * Where published items land. `write` must be idempotent by envelope id: a
 * redelivered item is written again and must not appear twice.
 */
export interface Sink {
  /**
   * Called once before the first write: connect, create what is missing; throwing stops the flow
   * before it starts.
   */
  open?(): void | Promise<void>;
  /**
   * Stores the batch, idempotent by id; throws to have it retried. `signal` aborts when the flow is
   * killed.
   */
  write(batch: readonly Envelope<RawItem>[], signal: AbortSignal): Promise<void>;
  /**
   * Removes what the sink holds of items first seen before `before` (epoch
   * ms), for a publish stage's `retention`; returns how many it removed when
   * the store says so. Optional: a sink that cannot remove (an append-only
   * file) leaves it out and keeps everything. Must be safe to call again.
   */
  expire?(before: number, signal: AbortSignal): Promise<number | undefined>;
  /** Called once after the last write, also on shutdown. */
  close?(): void | Promise<void>;
}
