import type { RawItem } from "./item.ts";

/**
 * Where items come from. A source yields batches of raw items until it is
 * done or `signal` aborts; the Scraper wraps them in envelopes. A source that
 * polls (`every:` or `cron:` in a flow) is read again by the Scraper, not by
 * itself, so one-shot and polling sources share one shape. A batch may be
 * empty, to have a position that moved at the end of a read stored.
 */
export interface Source {
  /**
   * Called once before the flow starts. Throws when the source can never
   * work (a missing file, a malformed URL), so a bad flow fails before it
   * writes anything rather than half-way through.
   */
  check?(): void | Promise<void>;
  /** Yields batches until the source is done (for now, if it polls) or `signal` aborts. */
  read(signal: AbortSignal): AsyncIterable<RawItem[]>;
  /**
   * Where the source stands, as plain JSON (a feed's ETag, a listing
   * cursor, how many generated items were emitted). A durable flow stores
   * it with every batch the source emits, in the same transaction, so a
   * restarted or failed-over source resumes instead of emitting everything
   * again. Called after each batch `read` yields.
   */
  checkpoint?(): unknown;
  /**
   * Puts the source where an earlier `checkpoint()` left it, replacing all
   * it knew; `undefined` puts it back at the start. A durable flow calls it
   * before each read that follows taking the source's lease, the first
   * included: a source that lost its lease, or whose last sends Redis lost,
   * goes on from what Redis kept, not from what it remembers itself.
   */
  resume?(position: unknown): void;
  /** Called once when the flow stops reading the source. */
  close?(): void | Promise<void>;
}
