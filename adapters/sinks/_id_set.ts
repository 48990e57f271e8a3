import { hexWords, isHex128, mix128 } from "../../engine/hash.ts";

/**
 * The ids a line-per-item sink has written, held compactly: an id that is
 * 32 lower-case hex digits (every id millrace makes: a 128-bit hash) takes
 * 16 bytes in a typed open-addressing table (kept between 3/8 and 3/4 full:
 * at 1M ids, 2^21 slots, 33.5 bytes per id), where a string in a Set took
 * about 69 bytes (README, "Speed": Memory). Any other key (a merge
 * update's `<id>:r<n>`, a tombstone's, an id a source chose) goes to a
 * plain Set. A JSONL sink keeps one id per line
 * of its file for good, so this is what a long run's memory grows by.
 */
export class IdSet {
  #hex = new HexIds();
  readonly #other = new Set<string>();

  get size(): number {
    return this.#hex.size + this.#other.size;
  }

  has(id: string): boolean {
    return isHex128(id) ? this.#hex.has(id) : this.#other.has(id);
  }

  add(id: string): this {
    if (isHex128(id)) this.#hex.add(id);
    else this.#other.add(id);
    return this;
  }

  delete(id: string): boolean {
    return isHex128(id) ? this.#hex.delete(id) : this.#other.delete(id);
  }

  clear(): void {
    this.#hex = new HexIds();
    this.#other.clear();
  }
}

const WORDS = 4;
const key = new Uint32Array(WORDS);

/** Reads a hex id into `key`, 8 digits per word. */
function read(id: string): void {
  hexWords(id, key, 0);
}

/**
 * 128-bit keys in linear probing over one Uint32Array (4 words a slot).
 * The all-zero key marks an empty slot, so that one id is a flag of its
 * own. Deletion shifts the following run back (no tombstones), which keeps
 * lookups as short as if the key had never been added.
 */
class HexIds {
  #slots = new Uint32Array(1024 * WORDS);
  #mask = 1023;
  #count = 0;
  #zero = false;

  get size(): number {
    return this.#count + (this.#zero ? 1 : 0);
  }

  has(id: string): boolean {
    read(id);
    if (isZero()) return this.#zero;
    return this.#find() >= 0;
  }

  add(id: string): void {
    read(id);
    if (isZero()) return void (this.#zero = true);
    if (this.#find() >= 0) return;
    if ((this.#count + 1) * 4 > (this.#mask + 1) * 3) this.#grow();
    this.#put(this.#slots);
    this.#count++;
  }

  delete(id: string): boolean {
    read(id);
    if (isZero()) {
      const had = this.#zero;
      this.#zero = false;
      return had;
    }
    let at = this.#find();
    if (at < 0) return false;
    const s = this.#slots, mask = this.#mask;
    // Backward shift: move later keys of the run into the hole when their home allows it.
    for (let next = (at + 1) & mask; !emptyAt(s, next); next = (next + 1) & mask) {
      const home = homeOf(s, next * WORDS) & mask;
      const between = at <= next ? home > at && home <= next : home > at || home <= next;
      if (between) continue;
      s.copyWithin(at * WORDS, next * WORDS, next * WORDS + WORDS);
      at = next;
    }
    s.fill(0, at * WORDS, at * WORDS + WORDS);
    this.#count--;
    return true;
  }

  /** The slot holding `key`, or -1. */
  #find(): number {
    const s = this.#slots, mask = this.#mask;
    for (let at = homeOf(key, 0) & mask;; at = (at + 1) & mask) {
      if (emptyAt(s, at)) return -1;
      const o = at * WORDS;
      if (s[o] === key[0] && s[o + 1] === key[1] && s[o + 2] === key[2] && s[o + 3] === key[3]) {
        return at;
      }
    }
  }

  /** Puts `key` in the first empty slot of its run in `s`. */
  #put(s: Uint32Array): void {
    const mask = s.length / WORDS - 1;
    let at = homeOf(key, 0) & mask;
    while (!emptyAt(s, at)) at = (at + 1) & mask;
    s.set(key, at * WORDS);
  }

  #grow(): void {
    const adding = key.slice(); // the key being added, which re-placing the others overwrites
    const old = this.#slots;
    const s = new Uint32Array(old.length * 2);
    for (let o = 0; o < old.length; o += WORDS) {
      if (old[o] === 0 && old[o + 1] === 0 && old[o + 2] === 0 && old[o + 3] === 0) continue;
      for (let w = 0; w < WORDS; w++) key[w] = old[o + w];
      this.#put(s);
    }
    this.#slots = s;
    this.#mask = s.length / WORDS - 1;
    key.set(adding);
  }
}

function isZero(): boolean {
  return key[0] === 0 && key[1] === 0 && key[2] === 0 && key[3] === 0;
}

function emptyAt(s: Uint32Array, at: number): boolean {
  const o = at * WORDS;
  return s[o] === 0 && s[o + 1] === 0 && s[o + 2] === 0 && s[o + 3] === 0;
}

/** Where a key's run starts: its four words mixed, as an id a source chose may not be a hash. */
function homeOf(words: Uint32Array, at: number): number {
  return mix128(words[at], words[at + 1], words[at + 2], words[at + 3]);
}
