import type { Envelope, RawItem } from "./item.ts";

/**
 * Where published items land. `write` must be idempotent by envelope id: a
 * redelivered item is written again and must not appear twice.
 */
export interface Sink {
  /**
   * Whether the sink takes merge updates (Envelope.update: news that a
   * duplicate added a source or engagement to a story, carrying only the
   * merged fields and `payload.revision`; see the Deduper's `merge`). A sink
   * that says so applies each to what it holds of the story's id, the
   * higher revision winning. One that does not is never given them: a sink
   * that stores whole items by id would otherwise replace a story with its
   * update's few fields.
   */
  readonly updates?: boolean;
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
