import type { EmbeddingClient } from "./embedding_client.ts";

export interface HashingEmbedderOptions {
  /** Length of the vectors; default 256. */
  dimensions?: number;
  /** Also hash character trigrams of each word (robust to inflections and typos); default false. */
  charTrigrams?: boolean;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
/** Bigram features hash "w1 w2"; unigrams never contain a space, so the two never share a key. */
const SPACE = 0x20;
/** Trigrams hash "#tri", which no word or pair starts with. */
const TRIGRAM_MARK = 0x23;
const LT = 0x3c;
const GT = 0x3e;

/**
 * The local default embedder: feature hashing of words and word pairs, so a
 * flow embeds with no service, no model download and no cost, and the same
 * text gets the same vector in every process, for as long as the model name
 * stays the same (change the features, change the name).
 *
 * It captures shared wording, not meaning: near-duplicate titles land close
 * together, paraphrases with no words in common do not. Each feature adds
 * ±(1 + ln tf) at a hashed index; the sign comes from the hash too, so
 * colliding features cancel on average instead of piling up. Vectors are
 * L2-normalised, so a dot product is the cosine. A text with no words embeds
 * as the zero vector (cosine with it is 0, never NaN).
 *
 * @example
 * ```ts
 * import { HashingEmbedder } from "../../mod.ts";
 *
 * const embedder = new HashingEmbedder({ dimensions: 64 });
 * const [v] = await embedder.embed(["Uber suspends self-driving cars"], AbortSignal.timeout(1000));
 * if (v.length !== 64) throw new Error("dimension");
 * ```
 */
export class HashingEmbedder implements EmbeddingClient {
  /** Names the vector space in caches: `local-hashing-v1`, `+trigrams` when trigrams are on. */
  readonly model: string;
  /** Length of every vector it returns. */
  readonly dimensions: number;
  readonly #trigrams: boolean;
  readonly #counts = new FeatureCounts();
  /** Each dimension's sum for the text at hand, before normalising. */
  readonly #sums: Float64Array;

  /** Default: 256 dimensions. Needs no network and no permission. */
  constructor(options: HashingEmbedderOptions = {}) {
    const dimensions = options.dimensions ?? 256;
    if (!Number.isInteger(dimensions) || dimensions < 1) {
      throw new RangeError(
        `hashing embedder: dimensions must be a positive integer, got ${dimensions}`,
      );
    }
    this.dimensions = dimensions;
    this.#trigrams = options.charTrigrams ?? false;
    this.#sums = new Float64Array(dimensions);
    // Trigrams change every vector, so they name a different vector space.
    this.model = this.#trigrams ? "local-hashing-v1+trigrams" : "local-hashing-v1";
  }

  embed(inputs: string[], signal: AbortSignal): Promise<number[][]> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return Promise.resolve(inputs.map((input) => this.embedOne(input)));
  }

  /** The vector of one text; synchronous, for callers that have no batch. */
  embedOne(text: string): number[] {
    const counts = this.#features(text);
    const sums = this.#sums.fill(0);
    // In order of first appearance, as a Map iterates: the same sums to the last bit.
    const d = this.dimensions, mask = (d & (d - 1)) === 0 ? d - 1 : -1;
    for (let k = 0; k < counts.size; k++) {
      const hash = counts.hashAt(k), tf = counts.countAt(k);
      const sign = hash & 0x80000000 ? -1 : 1;
      // A power of two's remainder is a mask (no division); both give the same index.
      const at = mask >= 0 ? hash & mask : (hash & 0x7fffffff) % d;
      sums[at] += sign * (tf === 1 ? 1 : 1 + Math.log(tf));
    }
    let sum = 0;
    for (let i = 0; i < sums.length; i++) sum += sums[i] * sums[i];
    const inv = sum === 0 ? 0 : 1 / Math.sqrt(sum);
    // Sized at once: pushing grows the array's store 8 times on the way to 256.
    const vector = new Array<number>(sums.length);
    for (let i = 0; i < sums.length; i++) vector[i] = sums[i] * inv;
    return vector;
  }

  /**
   * Counts of each hashed feature, in one pass over the text's code units: no
   * word, pair or trigram string is built, since a pair's hash extends the
   * first word's hash state and a trigram's is hashed from the text in place.
   */
  #features(text: string): FeatureCounts {
    const counts = this.#counts.reset();
    const lower = text.toLowerCase();
    const isWord = wordChars();
    let start = -1;
    let state = FNV_OFFSET;
    let previous = -1;
    for (let i = 0; i <= lower.length; i++) {
      const code = i < lower.length ? lower.charCodeAt(i) : SPACE;
      if (isWord[code]) {
        if (start < 0) {
          start = i;
          state = FNV_OFFSET;
        }
        state = fnvCode(state, code);
        continue;
      }
      if (start < 0) continue;
      counts.add(mix(state));
      if (previous !== -1) counts.add(mix(fnvRange(lower, start, i, fnvCode(previous, SPACE))));
      if (this.#trigrams) addTrigrams(lower, start, i, counts);
      previous = state;
      start = -1;
    }
    return counts;
  }
}

/**
 * Feature hashes and their counts in order of first appearance: an
 * open-addressing table in typed arrays, kept by the embedder and reset for
 * each text, so a text costs no Map entry and no boxed number per feature
 * (hashes are 32-bit unsigned, above what V8 keeps unboxed).
 */
class FeatureCounts {
  /** Slot of each feature, in order of first appearance. */
  #order = new Int32Array(2048);
  #keys = new Uint32Array(2048);
  #counts = new Int32Array(2048);
  /** A slot is taken in this text when its stamp is the text's. */
  #stamps = new Int32Array(2048);
  #stamp = 0;
  size = 0;

  reset(): this {
    this.size = 0;
    if (++this.#stamp === 0x7fffffff) [this.#stamp, this.#stamps] = [1, this.#stamps.fill(0)];
    return this;
  }

  add(hash: number): void {
    const mask = this.#keys.length - 1;
    for (let s = hash & mask;; s = (s + 1) & mask) {
      if (this.#stamps[s] !== this.#stamp) {
        this.#stamps[s] = this.#stamp;
        this.#keys[s] = hash;
        this.#counts[s] = 1;
        this.#order[this.size++] = s;
        if (this.size * 2 > this.#keys.length) this.#grow();
        return;
      }
      if (this.#keys[s] === hash) {
        this.#counts[s]++;
        return;
      }
    }
  }

  hashAt(k: number): number {
    return this.#keys[this.#order[k]];
  }

  countAt(k: number): number {
    return this.#counts[this.#order[k]];
  }

  /** Twice the slots, the features re-placed in their order (hashes come mixed: low bits will do). */
  #grow(): void {
    const keys = this.#keys, counts = this.#counts, order = this.#order.slice(0, this.size);
    const size = keys.length * 2, mask = size - 1;
    this.#keys = new Uint32Array(size);
    this.#counts = new Int32Array(size);
    this.#stamps = new Int32Array(size);
    this.#stamp = 1;
    this.#order = new Int32Array(size);
    order.forEach((old, k) => {
      let s = keys[old] & mask;
      while (this.#stamps[s] === 1) s = (s + 1) & mask;
      this.#stamps[s] = 1;
      this.#keys[s] = keys[old];
      this.#counts[s] = counts[old];
      this.#order[k] = s;
    });
  }
}

/** Hashes "#" + each trigram of "<word>", reading the word from `text[start, end)`. */
function addTrigrams(text: string, start: number, end: number, counts: FeatureCounts) {
  const at = (k: number) => k < start ? LT : k >= end ? GT : text.charCodeAt(k);
  for (let k = start - 1; k + 2 <= end; k++) {
    let h = fnvCode(FNV_OFFSET, TRIGRAM_MARK);
    for (let j = k; j < k + 3; j++) h = fnvCode(h, at(j));
    counts.add(mix(h));
  }
}

/**
 * Which UTF-16 code units belong to words: letters, digits and combining
 * marks (so Devanagari vowel signs stay inside their word). Surrogates count
 * as word units, so a run of emoji is a word too. Built once, then a word
 * boundary costs one array read instead of a Unicode regex. Built on first
 * use (about 10 ms), so merely importing the module costs nothing.
 */
let wordTable: Uint8Array | undefined;
function wordChars(): Uint8Array {
  if (wordTable) return wordTable;
  const table = new Uint8Array(0x10000);
  const word = /[\p{L}\p{N}\p{M}]/u;
  for (let c = 0; c < 0x10000; c++) {
    const surrogate = c >= 0xd800 && c <= 0xdfff;
    table[c] = surrogate || word.test(String.fromCharCode(c)) ? 1 : 0;
  }
  return wordTable = table;
}

/** FNV-1a over `text[start, end)`, continuing from `state`. */
function fnvRange(text: string, start: number, end: number, state: number): number {
  let h = state;
  for (let i = start; i < end; i++) h = fnvCode(h, text.charCodeAt(i));
  return h;
}

/** One FNV-1a step over a UTF-16 code unit. */
function fnvCode(state: number, code: number): number {
  return Math.imul(state ^ code, FNV_PRIME) >>> 0;
}

/** Murmur3's finaliser: FNV's low bits are weak for short keys, and the index uses them. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
