/**
 * Where an id that was ever deleted stands in an append-only sink (a JSONL
 * file, a Redis stream): whether its last record is a tombstone or an
 * item, and that record's `seenAt`. Ids never deleted have none: for them
 * the sink's once-per-id rule is all there is.
 */
export interface Standing {
  deleted: boolean;
  /** Epoch ms: when the last record's copy (or delete) was seen. */
  at: number;
}

/**
 * What a sink of records does with an item or a delete of an id, by the
 * rule the Postgres and Qdrant sinks keep with their tables of deletes:
 * the one seen last wins. An item seen after its id's delete comes back (a
 * story republished, or seen a moment after a delete that raced ahead of
 * it); one seen at or before it stays out; a delete seen at or after the
 * item that came back removes it again. Returns the id's new standing when
 * the record is to be written, `skip` when it is not, and `once` when the
 * id was never deleted and the sink's once-per-id rule decides (a delete
 * written then starts the id's standing).
 */
export function afterDelete(
  standing: Standing | undefined,
  deleted: boolean,
  seenAt: number,
): Standing | "skip" | "once" {
  if (standing === undefined) return "once";
  if (standing.deleted) return !deleted && seenAt > standing.at ? { deleted, at: seenAt } : "skip";
  // Back after a delete: its item is written (once); a later delete removes it again.
  return deleted && seenAt >= standing.at ? { deleted, at: seenAt } : "skip";
}
