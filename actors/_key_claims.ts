import { hash128, hexWords, isHex128, mix128 } from "../engine/hash.ts";
import { eventHash } from "./_minhash_index.ts";

/** Seed of hash128 for keys that are not 32 hex digits. */
const OTHER_KEYS = 0x6b657973;

/** Ring slot fields: the key's 4 words, the event's 64-bit hash as 2. */
const KEY = 4, EVENT = 2;

/** Scratch: the key and event being looked up. */
const key = new Uint32Array(KEY);
const event = new Uint32Array(EVENT);

/**
 * Which ingestion event claimed which key, until when, in flat typed arrays:
 * 48 to 72 bytes a claim as the arrays grow by half (64 at 100,000), where
 * a Map of strings to objects took about 210 (tests/actors/key_claims_test.ts
 * holds it under 80). A key is kept as its 128 bits (the Deduper's keys are
 * 32 hex digits; any other key is hashed to that first, with a seed of its
 * own) and an event as a 64-bit hash, so two events are told apart unless
 * their hashes collide, one chance in 2^64.
 *
 * Claims sit in a ring in the order they were made. All share one ttl, so
 * they expire in that order too and leave from the front, as they do past a
 * count cap. A claim deleted out of order (released, or re-made after it
 * expired) leaves a dead slot that the front skips; a ring full of slots is
 * compacted when a quarter or more are dead, else grown by half.
 *
 * The index is linear probing over ring positions (plus one; 0 is empty),
 * kept at most half full, with backward-shift deletion: no tombstones, so
 * a lookup is as short as if deleted keys had never been added.
 */
export class KeyClaims {
  #capacity = 0;
  /** Ring position of the oldest slot, and slots in use (dead ones included). */
  #first = 0;
  #used = 0;
  #live = 0;
  #keys = new Uint32Array(0);
  #events = new Uint32Array(0);
  /** Expiry (epoch ms) per slot. */
  #expires = new Float64Array(0);
  /** 1 marks a dead slot (a flag of its own: any expiry, NaN too, is a live claim's). */
  #dead = new Uint8Array(0);
  #index = new Int32Array(0);
  #mask = 0;

  constructor() {
    this.#resize(1024);
  }

  /** Claims held, expired ones not yet evicted included. */
  get size(): number {
    return this.#live;
  }

  /** Ring slots allocated (live, dead and free): what the arrays are sized for. */
  get slots(): number {
    return this.#capacity;
  }

  /**
   * The claim on `k`: its expiry, and whether event `e` made it; or
   * undefined when none is held.
   */
  get(k: string, e: string): { expires: number; same: boolean } | undefined {
    const at = this.#find(k);
    return at < 0 ? undefined : { expires: this.#expires[at], same: this.#madeBy(at, e) };
  }

  /**
   * What the Deduper asks, in one lookup: a claim on `k` still live at `now`
   * answers whether event `e` made it; else `k` is claimed for `e` until
   * `expires` (as the newest claim) and is "new".
   */
  claim(k: string, e: string, now: number, expires: number): "new" | "same-event" | "duplicate" {
    const at = this.#find(k);
    if (at >= 0) {
      if (this.#expires[at] > now) return this.#madeBy(at, e) ? "same-event" : "duplicate";
      this.#delete(at);
    }
    this.#append(e, expires);
    return "new";
  }

  /** Claims `k` for event `e` until `expires`, as the newest claim; deletes any claim on `k` first. */
  set(k: string, e: string, expires: number): void {
    const held = this.#find(k);
    if (held >= 0) this.#delete(held);
    this.#append(e, expires);
  }

  /** Appends a claim on the key #find last read, for event `e`. */
  #append(e: string, expires: number): void {
    if (this.#used === this.#capacity) {
      this.#resize(
        this.#capacity - this.#live >= this.#capacity / 4
          ? this.#capacity
          : Math.ceil(this.#capacity * 1.5),
      );
    }
    const at = (this.#first + this.#used) % this.#capacity;
    // First, as it throws for an event that is no string: counted and unplaced, the slot sent
    // the next eviction probing for it for ever.
    eventHash(e, this.#events, at * EVENT);
    this.#used++;
    this.#live++;
    this.#keys.set(key, at * KEY);
    this.#expires[at] = expires;
    this.#dead[at] = 0;
    this.#place(at);
  }

  /** Whether event `e` made the claim in slot `at`. */
  #madeBy(at: number, e: string): boolean {
    eventHash(e, event, 0);
    const o = at * EVENT;
    return this.#events[o] === event[0] && this.#events[o + 1] === event[1];
  }

  /** Deletes the claim on `k` if event `e` made it; returns whether it did. */
  release(k: string, e: string): boolean {
    const at = this.#find(k);
    if (at < 0 || !this.#madeBy(at, e)) return false;
    this.#delete(at);
    return true;
  }

  /** Deletes claims from the oldest while they expire at or before `now`. */
  evict(now: number): void {
    while (this.#live > 0) {
      this.#skipDead();
      if (!(this.#expires[this.#first] <= now)) return;
      this.#delete(this.#first);
    }
  }

  /** Deletes the oldest claim, if any. */
  dropOldest(): void {
    if (this.#live === 0) return;
    this.#skipDead();
    this.#delete(this.#first);
  }

  /** Moves the front past dead slots. */
  #skipDead(): void {
    while (this.#used > 0 && this.#dead[this.#first] === 1) {
      this.#first = (this.#first + 1) % this.#capacity;
      this.#used--;
    }
  }

  /** Reads `k` into `key` and returns its ring slot, or -1. */
  #find(k: string): number {
    if (isHex128(k)) hexWords(k, key, 0);
    // Seeded apart from the Deduper's own hashes, so a plain key and its hash128 stay two keys.
    else hexWords(hash128(k, OTHER_KEYS), key, 0);
    const index = this.#index, keys = this.#keys, mask = this.#mask;
    for (let i = home(key, 0) & mask;; i = (i + 1) & mask) {
      const slot = index[i] - 1;
      if (slot < 0) return -1;
      const o = slot * KEY;
      if (
        keys[o] === key[0] && keys[o + 1] === key[1] && keys[o + 2] === key[2] &&
        keys[o + 3] === key[3]
      ) {
        return slot;
      }
    }
  }

  /** Indexes ring slot `at` by its key. */
  #place(at: number): void {
    const index = this.#index, keys = this.#keys, mask = this.#mask;
    let i = home(keys, at * KEY) & mask;
    while (index[i] !== 0) i = (i + 1) & mask;
    index[i] = at + 1;
  }

  /** Marks ring slot `at` dead and takes it out of the index (backward shift). */
  #delete(at: number): void {
    const index = this.#index, keys = this.#keys, mask = this.#mask;
    let i = home(keys, at * KEY) & mask;
    while (index[i] !== at + 1) i = (i + 1) & mask;
    for (let next = (i + 1) & mask; index[next] !== 0; next = (next + 1) & mask) {
      const s = index[next] - 1;
      const h = home(keys, s * KEY) & mask;
      const between = i <= next ? h > i && h <= next : h > i || h <= next;
      if (between) continue;
      index[i] = index[next];
      i = next;
    }
    index[i] = 0;
    this.#dead[at] = 1;
    this.#live--;
    if (at === this.#first) this.#skipDead();
  }

  /** Copies the live slots, oldest first, into a ring of `capacity` and indexes them again. */
  #resize(capacity: number): void {
    const keys = new Uint32Array(capacity * KEY);
    const events = new Uint32Array(capacity * EVENT);
    const expires = new Float64Array(capacity);
    let n = 0;
    for (let k = 0; k < this.#used; k++) {
      const at = (this.#first + k) % this.#capacity;
      if (this.#dead[at] === 1) continue;
      keys.set(this.#keys.subarray(at * KEY, at * KEY + KEY), n * KEY);
      events.set(this.#events.subarray(at * EVENT, at * EVENT + EVENT), n * EVENT);
      expires[n++] = this.#expires[at];
    }
    [this.#keys, this.#events, this.#expires] = [keys, events, expires];
    this.#dead = new Uint8Array(capacity);
    [this.#capacity, this.#first, this.#used, this.#live] = [capacity, 0, n, n];
    let size = 2;
    while (size < capacity * 2) size *= 2;
    this.#index = new Int32Array(size);
    this.#mask = size - 1;
    for (let at = 0; at < n; at++) this.#place(at);
  }
}

/** Where a key's run starts: its four words mixed, so keys alike in some words (not hashes) still spread. */
function home(words: Uint32Array, at: number): number {
  return mix128(words[at], words[at + 1], words[at + 2], words[at + 3]);
}
