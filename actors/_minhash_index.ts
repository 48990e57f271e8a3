import { SIGNATURE_LENGTH, similarity } from "./_minhash.ts";

/** An item remembered for near-duplicate lookups. */
export interface NearEntry {
  /** Envelope id of the item: what a later near duplicate is reported as a copy of. */
  readonly id: string;
  /** The ingestion event that recorded it: a redelivery of that event is not its own copy. */
  readonly event: string;
  readonly signature: Uint32Array;
  readonly expires: number;
  /** Insertion number: among several matches the earliest wins. */
  readonly seq: number;
  /** The last lookup that compared against this entry, so one lookup compares it once. */
  visit: number;
}

/**
 * Locality-sensitive hashing over MinHash signatures: the signature is cut
 * into `bands` bands of `rows` values, and two items become candidates when
 * any band is equal in both. With 16 bands of 4 rows, a pair of Jaccard
 * similarity 0.8 becomes a candidate with probability 1 - (1 - 0.8⁴)¹⁶ ≈
 * 0.9998, one of 0.5 with 0.64, one of 0.2 with 0.03; candidates are then
 * confirmed by their estimated similarity, so the banding only decides how
 * few comparisons a lookup makes, not what counts as a match. Thresholds
 * below about 0.6 lose recall with this banding.
 *
 * Entries expire: `evict` drops them oldest first, which is cheap because
 * entries are kept in insertion order and share one time to live.
 */
export class MinHashIndex {
  readonly #buckets: Map<number, NearEntry | NearEntry[]>[];
  readonly #entries = new Set<NearEntry>();
  #seq = 0;
  #visit = 0;

  constructor(readonly bands = 16, readonly rows = 4) {
    if (bands * rows > SIGNATURE_LENGTH) {
      throw new Error(`${bands} bands of ${rows} rows need more than ${SIGNATURE_LENGTH} values`);
    }
    this.#buckets = Array.from({ length: bands }, () => new Map());
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * The earliest live entry, of another event, whose estimated similarity to
   * `signature` is at least `threshold`.
   */
  find(
    signature: Uint32Array,
    threshold: number,
    now: number,
    event: string,
  ): NearEntry | undefined {
    const visit = ++this.#visit;
    let best: NearEntry | undefined;
    for (let b = 0; b < this.bands; b++) {
      const bucket = this.#buckets[b].get(this.#bandKey(signature, b));
      if (bucket === undefined) continue;
      for (const entry of Array.isArray(bucket) ? bucket : [bucket]) {
        if (entry.visit === visit) continue;
        entry.visit = visit;
        if (entry.expires <= now || entry.event === event) continue;
        if (best !== undefined && best.seq < entry.seq) continue;
        if (similarity(signature, entry.signature) >= threshold) best = entry;
      }
    }
    return best;
  }

  add(id: string, event: string, signature: Uint32Array, expires: number): void {
    const entry: NearEntry = { id, event, signature, expires, seq: this.#seq++, visit: 0 };
    this.#entries.add(entry);
    for (let b = 0; b < this.bands; b++) {
      const map = this.#buckets[b];
      const key = this.#bandKey(signature, b);
      const bucket = map.get(key);
      if (bucket === undefined) map.set(key, entry);
      else if (Array.isArray(bucket)) bucket.push(entry);
      else map.set(key, [bucket, entry]);
    }
  }

  /** Drops entries that expired at or before `now`, oldest first; returns how many. */
  evict(now: number): number {
    let evicted = 0;
    for (const entry of this.#entries) {
      if (entry.expires > now) break;
      this.#remove(entry);
      evicted++;
    }
    return evicted;
  }

  #remove(entry: NearEntry): void {
    this.#entries.delete(entry);
    for (let b = 0; b < this.bands; b++) {
      const map = this.#buckets[b];
      const key = this.#bandKey(entry.signature, b);
      const bucket = map.get(key);
      if (bucket === entry) map.delete(key);
      else if (Array.isArray(bucket)) {
        const rest = bucket.filter((e) => e !== entry);
        map.set(key, rest.length === 1 ? rest[0] : rest);
      }
    }
  }

  /** The rows of band `b` folded into one 32-bit key. */
  #bandKey(signature: Uint32Array, b: number): number {
    let h = b + 1;
    const start = b * this.rows;
    for (let r = start; r < start + this.rows; r++) {
      h = Math.imul(h ^ signature[r], 0x9e3779b1);
      h ^= h >>> 15;
    }
    return h;
  }
}
