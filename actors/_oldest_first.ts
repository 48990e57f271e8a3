/**
 * A Map read oldest entry first, for state that leaves in insertion order
 * (by ttl or by a count cap). Reading a Map's first entry with a fresh
 * iterator (`map.keys().next()`) is not O(1) in V8: deleted entries stay as
 * holes at the front of its table until it is rehashed, and each fresh
 * iterator steps over all of them, so evicting one entry per insert that way
 * costs time in proportion to the map (measured: 47 s for a million inserts
 * into a 100,000-entry map). One long-lived iterator passes each hole once.
 *
 * Set a key only while it is absent (delete it first to move it to the
 * back), and to a new object each time: the identity of its value tells
 * the entry the cursor stopped at from a later one under the same key.
 */
export class OldestFirst<K, V extends object> {
  readonly map = new Map<K, V>();
  #cursor: MapIterator<[K, V]> = this.map.entries();
  /** The entry the cursor stopped at, not yet deleted through it. */
  #at: [K, V] | undefined;

  /** The oldest entry held, or undefined when the map is empty. */
  oldest(): [K, V] | undefined {
    const at = this.#at;
    if (at !== undefined && this.map.get(at[0]) === at[1]) return at;
    let next = this.#cursor.next();
    // A finished iterator stays finished even after new entries: start again.
    if (next.done) next = (this.#cursor = this.map.entries()).next();
    return this.#at = next.done ? undefined : next.value;
  }

  /** Deletes the oldest entry, if any. */
  dropOldest(): void {
    const oldest = this.oldest();
    if (oldest === undefined) return;
    this.map.delete(oldest[0]);
    this.#at = undefined;
  }
}
