import type { DeadLetter } from "./dead_letters.ts";
import type { Envelope } from "./item.ts";

/** Any item, whatever its payload: edges and windows carry them as they are. */
export type Item = Envelope<unknown>;

/**
 * One read from an edge: a batch of items and, kept by the edge that made
 * it, what acknowledges them (nothing in memory; a stream entry's id over
 * Redis).
 */
export interface Delivery {
  /** The items, in the order they were sent. */
  readonly items: Item[];
  /** From a `priority: high` source: handled at once, ahead of the window. */
  readonly urgent?: boolean;
  /**
   * Redelivered after its process died (or half of such a delivery): it
   * runs alone, through `Edge.alone`, so a crash is charged to it only.
   */
  readonly alone?: boolean;
}

/** What one batch became, handed back to the edge it was read from. */
export interface Commit<D extends Delivery = Delivery> {
  /** The deliveries this commit acknowledges. */
  deliveries: readonly D[];
  /** Items for the next stage. */
  out: Item[];
  /** Items that go to dead letters instead, written with the commit. */
  letters: DeadLetter[];
  /**
   * The delivery the batch ended in the middle of, and how many of its
   * items this and the batches before it held (Batch.partial): not
   * acknowledged yet. An edge that can be read again after a crash
   * records the progress with the commit, so the delivery resumes after
   * them; in memory there is nothing to record.
   */
  partial?: { delivery: D; upTo: number };
}

/**
 * Keeps the items whose deliveries are still held, with no promise when
 * nothing changed since the read. Over Redis a delivery can vanish under
 * the batch that holds it: Redis came back from a crash without its last
 * writes (`appendfsync everysec`), the entry or its delivery with them, and
 * the source sends those items again. A stage run on the vanished copy
 * would leave its side effects behind (a Deduper's claim), and the real
 * copy would then look like a duplicate of itself.
 */
export type Fence = (items: Item[]) => Item[] | Promise<Item[]>;

/**
 * The seam between the one runtime and where items wait: a stage reads
 * deliveries from its edge and commits each batch's outputs, dead letters
 * and acknowledgement back to it as one operation. In memory that sends to
 * the next channel; over Redis it is one script (XADD next, XADD dead
 * letters, XACK). Everything else (windows, concurrency, retries, splitting,
 * drain) is the stage loop's, the same for every edge.
 */
export interface Edge<D extends Delivery = Delivery> {
  /** Deliveries ready now, without waiting; undefined when there are none. */
  tryRead?(): D[] | undefined;
  /**
   * The next deliveries, waiting for them; "timeout" when `timeoutMs`
   * passed first (a window's maxWait is due); undefined once the edge is
   * closed (memory) or the flow stops (Redis) and nothing is left to read.
   */
  read(timeoutMs?: number): Promise<D[] | "timeout" | undefined>;
  /** Commits a batch: outputs on, dead letters out, deliveries acknowledged. */
  commit(commit: Commit<D>): void | Promise<void>;
  /**
   * For a batch read as `deliveries`: what keeps, before each try of each
   * stage, only the items of deliveries this process still holds. Absent,
   * or a fence that returns the items as they are, when nothing can be
   * lost under a batch in hand (memory). See Fence.
   */
  fence?(deliveries: readonly D[]): Fence;
  /** Runs the handling of an `alone` delivery the way the edge needs (one at a time, counted). */
  alone?(delivery: D, handle: () => Promise<void>): Promise<void>;
  /** The stage is done reading: memory closes the next channel. */
  close?(): void | Promise<void>;
}
