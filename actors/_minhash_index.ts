import { SIGNATURE_LENGTH } from "./_minhash.ts";

/** How a signature is cut for lookup: `bands` bands of `rows` positions each. */
export interface Banding {
  bands: number;
  rows: number;
}

/**
 * The banding at the default threshold (0.8), which both near indexes use:
 * 10 bands of 4 signature positions. On the labelled set
 * (tests/actors/near_recall_test.ts) 10x3, 12x4 and 16x4 catch the same
 * copies; 10x4 offers the fewest chance candidates among generated texts
 * that share a vocabulary (a Redis lookup half as long as with 10x3) and
 * the fewest chain links per item.
 */
export const DEFAULT_BANDING: Banding = { bands: 10, rows: 4 };

/**
 * The banding for a threshold: 10x4 from 0.74 up, 21x3 from 0.54, 32x2
 * below. Each makes a pair at exactly the threshold a candidate with
 * probability 0.97 or more (1 - (1 - J^rows)^bands) down to 0.3, with the
 * fewest bands that do. With 10x4 at every threshold, a pair of Jaccard
 * 0.5 was a candidate about half the time and one of 0.375 a fifth, so
 * `threshold: 0.4` missed most of the copies it asked for. Below 0.3 even
 * 32x2 falls short (0.95 at 0.3); one row per band would crowd 256 buckets
 * per band. The steps are fixed, not computed, since a durable flow's Redis
 * keys name the banding.
 */
export function bandingFor(threshold: number): Banding {
  if (threshold >= 0.74) return DEFAULT_BANDING;
  return threshold >= 0.54 ? { bands: 21, rows: 3 } : { bands: 32, rows: 2 };
}

/**
 * Entries compared per band at most, newest first. Texts that share a band
 * without being near duplicates (boilerplate, templated posts) would
 * otherwise make every lookup walk all of them; a near duplicate shares
 * several bands with its original, so one crowded band rarely hides it.
 */
export const BAND_CANDIDATES = 32;

/** Bytes of an id kept as its 128 bits when it is 32 hex digits (the Deduper's ids). */
const ID_BYTES = 16;

/**
 * Equal stored positions (of SIGNATURE_LENGTH) a match needs for an
 * estimated Jaccard similarity at or above `threshold`. Positions are kept
 * as their low 8 bits (b-bit MinHash), so two different minima agree by
 * chance 1 time in 256: P(equal) = J + (1 - J) / 256, solved for J.
 */
export function positionsNeeded(threshold: number): number {
  const p = threshold + (1 - threshold) / 256;
  return Math.max(1, Math.ceil(p * SIGNATURE_LENGTH - 1e-9));
}

/** A 64-bit hash of an event id as two 32-bit halves (FNV-1a, two offset bases). */
export function eventHash(event: string, out: Uint32Array, at: number): void {
  let a = 0x811c9dc5, b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < event.length; i++) {
    const c = event.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 13);
  }
  out[at] = a >>> 0;
  out[at + 1] = b >>> 0;
}

/**
 * Near-duplicate memory in flat typed arrays: about 170 bytes per item
 * where objects, strings and Maps cost over 1 KB (measured at 200,000
 * items, see README "Dedupe"). Per item it keeps the signature's 64
 * positions as bytes (b-bit MinHash), the id's 16 bytes, a 64-bit hash of
 * the event, the expiry time, and one chain link per band.
 *
 * Items sit in a ring in insertion order and leave oldest first, by expiry
 * (`evict`) or when `maxItems` are held, so eviction touches no bucket: a
 * chain runs newest to oldest, and a walk stops where a link reaches an
 * item already gone (its slot was reused by a newer item, so it is not older
 * than the link before it). The ring grows by half again up to `maxItems`, so
 * at most a third of it is ever empty.
 *
 * Lookup is LSH: a candidate shares all the positions of some band. With
 * 10 bands of 4 rows, a pair of Jaccard similarity 0.8 becomes a candidate
 * with probability 1 - (1 - 0.8⁴)¹⁰ ≈ 0.995, one of 0.9 with 0.99999, one
 * of 0.5 with 0.48, so a lower threshold bands finer (bandingFor);
 * candidates are confirmed on all 64 positions, so the banding decides how
 * few comparisons a lookup makes, and at 0.97 or more how likely a copy at
 * the threshold is to be looked at.
 */
export class MinHashIndex {
  readonly maxItems: number;
  #capacity = 0;
  /** Ring position of the oldest item, and how many items are held. */
  #first = 0;
  #count = 0;
  #sigs = new Uint8Array(0);
  #ids = new Uint8Array(0);
  /** Ids that are not 32 hex digits, by slot (the Deduper never makes one). */
  readonly #otherIds = new Map<number, string>();
  #events = new Uint32Array(0);
  #expires = new Float64Array(0);
  /** Per slot and band: the next older slot in the same bucket chain, -1 at the end. */
  #next = new Int32Array(0);
  /** Bucket heads: the newest slot of each chain, -1 when empty. */
  #heads = new Int32Array(0);
  #perBand = 0;
  readonly #query = new Uint32Array(2);

  readonly #bands: number;
  readonly #rows: number;

  constructor(options: { maxItems?: number; banding?: Banding } = {}) {
    ({ bands: this.#bands, rows: this.#rows } = options.banding ?? DEFAULT_BANDING);
    this.maxItems = options.maxItems ?? 1_000_000;
    if (!(this.maxItems >= 1)) throw new Error(`maxItems must be 1 or more, got ${this.maxItems}`);
    this.#resize(Math.min(1024, this.maxItems));
  }

  get size(): number {
    return this.#count;
  }

  /** Bytes held in the index's arrays: what its items cost, counted, not sampled from the heap. */
  get storedBytes(): number {
    let other = 0;
    for (const id of this.#otherIds.values()) other += 2 * id.length + 24;
    return this.#sigs.byteLength + this.#ids.byteLength + this.#events.byteLength +
      this.#expires.byteLength + this.#next.byteLength + this.#heads.byteLength + other;
  }

  /**
   * The id of the earliest live item, of another event, with at least
   * `need` equal positions (see positionsNeeded); null when `event` itself
   * is held (a redelivery: it matches nothing and is not added again);
   * undefined when nothing matches.
   */
  find(
    signature: Uint32Array,
    need: number,
    now: number,
    event: string,
  ): string | null | undefined {
    eventHash(event, this.#query, 0);
    const q0 = this.#query[0], q1 = this.#query[1];
    const sigs = this.#sigs, events = this.#events, next = this.#next, heads = this.#heads;
    // Age: position from the oldest held item (0). A chain runs newest first, so ages fall.
    let best = -1, bestAge = Infinity;
    const bands = this.#bands;
    for (let b = 0; b < bands; b++) {
      let slot = heads[this.#bucket(signature, b)];
      let lastAge = Infinity;
      for (let seen = 0; slot >= 0 && seen < BAND_CANDIDATES; seen++) {
        const age = this.#ageOf(slot);
        if (age >= this.#count || age >= lastAge) break;
        lastAge = age;
        const s = slot;
        slot = next[s * bands + b];
        if (age >= bestAge || !this.#bandEquals(signature, s, b)) continue;
        if (this.#expires[s] <= now) continue;
        if (events[2 * s] === q0 && events[2 * s + 1] === q1) return null;
        let same = 0;
        const at = s * SIGNATURE_LENGTH;
        for (let i = 0; i < SIGNATURE_LENGTH; i++) {
          if (sigs[at + i] === (signature[i] & 0xff)) same++;
        }
        if (same >= need) {
          best = s;
          bestAge = age;
        }
      }
    }
    return best < 0 ? undefined : this.#idAt(best);
  }

  /** Remembers an item until `expires`; the oldest one goes first when `maxItems` are held. */
  add(id: string, event: string, signature: Uint32Array, expires: number): void {
    if (this.#count === this.maxItems) this.#dropOldest();
    else if (this.#count === this.#capacity) {
      this.#resize(Math.min(Math.ceil(1.5 * this.#capacity), this.maxItems));
    }
    const slot = (this.#first + this.#count) % this.#capacity;
    this.#count++;
    this.#write(slot, signature, expires);
    this.#setId(slot, id);
    eventHash(event, this.#events, 2 * slot);
  }

  /** Drops items that expired at or before `now`, oldest first; returns how many. */
  evict(now: number): number {
    let evicted = 0;
    while (this.#count > 0 && this.#expires[this.#first] <= now) {
      this.#dropOldest();
      evicted++;
    }
    return evicted;
  }

  #dropOldest(): void {
    this.#otherIds.delete(this.#first);
    this.#first = (this.#first + 1) % this.#capacity;
    this.#count--;
  }

  /** Writes signature bytes and expiry into `slot` and links it at the head of its chains. */
  #write(slot: number, signature: ArrayLike<number>, expires: number): void {
    const at = slot * SIGNATURE_LENGTH;
    for (let i = 0; i < SIGNATURE_LENGTH; i++) this.#sigs[at + i] = signature[i] & 0xff;
    this.#expires[slot] = expires;
    for (let b = 0; b < this.#bands; b++) {
      const h = this.#bucket(signature, b);
      this.#next[slot * this.#bands + b] = this.#heads[h];
      this.#heads[h] = slot;
    }
  }

  #ageOf(slot: number): number {
    const age = slot - this.#first;
    return age < 0 ? age + this.#capacity : age;
  }

  #bandEquals(signature: ArrayLike<number>, slot: number, b: number): boolean {
    const rows = this.#rows;
    const at = slot * SIGNATURE_LENGTH + b * rows;
    for (let r = 0; r < rows; r++) {
      if (this.#sigs[at + r] !== (signature[b * rows + r] & 0xff)) return false;
    }
    return true;
  }

  /** The bucket of band `b`: its rows' low bytes and the band number, mixed. */
  #bucket(signature: ArrayLike<number>, b: number): number {
    let h = Math.imul(b + 1, 0x9e3779b1);
    for (let r = b * this.#rows; r < (b + 1) * this.#rows; r++) {
      h = Math.imul(h ^ (signature[r] & 0xff), 0x01000193);
    }
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    // Each band has its own range of heads: a chain links one band's pointers only.
    return b * this.#perBand + ((h ^ (h >>> 12)) & (this.#perBand - 1));
  }

  #setId(slot: number, id: string): void {
    const at = slot * ID_BYTES;
    if (id.length === 2 * ID_BYTES && /^[0-9a-f]+$/.test(id)) {
      for (let i = 0; i < ID_BYTES; i++) {
        this.#ids[at + i] = parseInt(id.slice(2 * i, 2 * i + 2), 16);
      }
      this.#otherIds.delete(slot);
    } else this.#otherIds.set(slot, id);
  }

  #idAt(slot: number): string {
    const other = this.#otherIds.get(slot);
    if (other !== undefined) return other;
    let id = "";
    const at = slot * ID_BYTES;
    for (let i = 0; i < ID_BYTES; i++) id += HEX[this.#ids[at + i]];
    return id;
  }

  /** New arrays of `capacity` slots, the held items moved to slots 0.. in age order. */
  #resize(capacity: number): void {
    const old = {
      sigs: this.#sigs,
      ids: this.#ids,
      events: this.#events,
      expires: this.#expires,
      others: new Map(this.#otherIds),
      capacity: this.#capacity,
      first: this.#first,
    };
    this.#capacity = capacity;
    this.#sigs = new Uint8Array(capacity * SIGNATURE_LENGTH);
    this.#ids = new Uint8Array(capacity * ID_BYTES);
    this.#events = new Uint32Array(capacity * 2);
    this.#expires = new Float64Array(capacity);
    this.#next = new Int32Array(capacity * this.#bands);
    // Per band, buckets for half the items: two links per bucket at most on average when full.
    let perBand = 64;
    while (perBand < capacity / 2) perBand *= 2;
    this.#perBand = perBand;
    this.#heads = new Int32Array(perBand * this.#bands).fill(-1);
    this.#otherIds.clear();
    this.#first = 0;
    for (let age = 0; age < this.#count; age++) {
      const from = (old.first + age) % old.capacity;
      this.#write(
        age,
        old.sigs.subarray(from * SIGNATURE_LENGTH, (from + 1) * SIGNATURE_LENGTH),
        old.expires[from],
      );
      this.#ids.set(old.ids.subarray(from * ID_BYTES, (from + 1) * ID_BYTES), age * ID_BYTES);
      this.#events[2 * age] = old.events[2 * from];
      this.#events[2 * age + 1] = old.events[2 * from + 1];
      const other = old.others.get(from);
      if (other !== undefined) this.#otherIds.set(age, other);
    }
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
