/**
 * Where an id that was ever deleted stands in an append-only sink (a JSONL
 * file, a Redis stream): whether its last record is a tombstone or an
 * item, and when: the latest delete's `seenAt` (Postgres keeps the latest
 * too), or the `seenAt` of the item that came back. Ids never deleted have
 * none: for them the sink's once-per-id rule is all there is.
 */
export interface Standing {
  deleted: boolean;
  /** Epoch ms. */
  at: number;
}

/**
 * What a sink of records does with an item or a delete of an id, by the
 * rule the Postgres and Qdrant sinks keep with their tables of deletes: an
 * item seen after its id's latest delete comes back (a story republished,
 * or seen a moment after a delete that raced ahead of it); one seen at or
 * before it stays out; a delete seen at or after the item that came back
 * removes it again, and a later delete of an id deleted moves the delete's
 * time on: written again, so that another writer of the file, or a sink
 * reading it after a restart, learns it (a stream keeps it in a hash of
 * its own instead). Returns whether to write the record and the id's
 * standing after it, or `once` when the id was never deleted and the
 * sink's once-per-id rule decides (a delete written then starts the id's
 * standing).
 */
export function afterDelete(
  standing: Standing | undefined,
  deleted: boolean,
  seenAt: number,
): { write: boolean; standing: Standing } | "once" {
  if (standing === undefined) return "once";
  if (standing.deleted) {
    if (deleted) {
      return seenAt > standing.at
        ? { write: true, standing: { deleted, at: seenAt } }
        : { write: false, standing };
    }
    return seenAt > standing.at
      ? { write: true, standing: { deleted, at: seenAt } }
      : { write: false, standing };
  }
  // Back after a delete: its item is written (once); a later delete removes it again.
  return deleted && seenAt >= standing.at
    ? { write: true, standing: { deleted, at: seenAt } }
    : { write: false, standing };
}
