import { hasUnspaced, words } from "./_text.ts";
import { eachWord } from "./_word_spans.ts";

/** Values per signature: 64 gives a Jaccard estimate within about ±0.05 of the truth at 0.8. */
export const SIGNATURE_LENGTH = 64;

/**
 * One seed per signature position, from a fixed splitmix32 stream: every
 * process derives the same signatures for the same text, so signatures can
 * be compared across processes and restarts. (npm bloom-filters' MinHash
 * draws its hash coefficients from Math.random, which rules that out.)
 */
const SEEDS = (() => {
  const seeds = new Int32Array(SIGNATURE_LENGTH);
  let state = 0x9e3779b9;
  for (let i = 0; i < SIGNATURE_LENGTH; i++) {
    state = (state + 0x9e3779b9) | 0;
    seeds[i] = fmix(state);
  }
  return seeds;
})();

/** MurmurHash3's finaliser: a cheap 32-bit bijection that spreads every input bit. */
function fmix(x: number): number {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** FNV-1a over the UTF-16 units of a word, then mixed. */
function wordHash(word: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 0x01000193);
  return fmix(h);
}

/** Word hashes of the current text: grown as needed, never shrunk, so a text allocates none. */
let scratch = new Int32Array(1024);

const EMPTY = 0xffffffff;

/**
 * The MinHash signature of a text's set of word shingles (runs of `shingle`
 * consecutive words; a text shorter than that is one shingle), by one
 * permutation hashing: each shingle is hashed once, the hash's top 6 bits
 * pick one of the 64 positions and its low 26 bits compete for that
 * position's minimum. One hash per shingle instead of one per shingle and
 * position: 64 times fewer mixes (about 8 µs for a 150-word text where 64
 * mixes per shingle took 80). A position no shingle reached is filled from
 * the next reached one to its right, mixed with the distance (rotation
 * densification, Shrivastava 2017), so short texts still compare position
 * by position. Two texts agree on a position with probability close to
 * their Jaccard similarity, as with 64 hash functions.
 *
 * @param words the text's words, already lower-cased
 * @returns undefined for a text with no words: nothing to compare
 */
export function minhash(words: readonly string[], shingle: number): Uint32Array | undefined {
  const n = words.length;
  if (scratch.length < n) scratch = new Int32Array(Math.max(n, 2 * scratch.length));
  for (let i = 0; i < n; i++) scratch[i] = wordHash(words[i]);
  return signatureOf(n, shingle);
}

/**
 * `minhash(words(text).map((w) => w.toLowerCase()), shingle)`, hashed from
 * the text in place (hashWordsAt), or undefined for a text of fewer than
 * `minWords` words. The same signatures, so those kept in Redis stay
 * comparable.
 */
export function minhashOfText(
  text: string,
  shingle: number,
  minWords = 1,
): Uint32Array | undefined {
  const n = hashWordsAt(text, 0);
  return n < minWords ? undefined : signatureOf(n, shingle);
}

/**
 * The signature of a short text together with its title, the two weighing
 * the same: each part's shingles are its own (none spans the two), and the
 * text's are counted as many times over as the title has shingles for each
 * of its own (each copy hashed apart). Signed as one run of words, a long
 * shared title outweighed the text: every short comment of a reddit thread
 * (whose items take the thread's title) was a near duplicate of the first
 * ("ez" of "I'm sorry"), and a feed's boilerplate text under distinct
 * titles needs the title as much. Two items are near duplicates here when
 * title and text both are.
 */
export function minhashOfTitled(
  title: string,
  text: string,
  shingle: number,
): Uint32Array | undefined {
  const a = hashWordsAt(title, 0);
  const b = hashWordsAt(text, a);
  if (a + b === 0) return undefined;
  const shinglesOf = (n: number) => n === 0 ? 0 : Math.max(1, n - shingle + 1);
  const copies = b === 0
    ? 0
    : Math.min(SIGNATURE_LENGTH, Math.max(1, Math.ceil(shinglesOf(a) / shinglesOf(b))));
  const sig = new Uint32Array(SIGNATURE_LENGTH).fill(EMPTY);
  addShingles(sig, 0, a, shingle, 1);
  addShingles(sig, a, b, shingle, copies);
  return densified(sig);
}

/**
 * Hashes the words of `text`, lower-cased, into `scratch` from `at`;
 * returns how many. A word of ASCII letters is lower-cased unit by unit as
 * it is hashed, so only other words (and scripts without spaces, which
 * `words()` cuts) become strings.
 */
function hashWordsAt(text: string, at: number): number {
  let n = at;
  if (hasUnspaced(text)) {
    for (const w of words(text)) {
      if (n === scratch.length) scratch = grown(scratch);
      scratch[n++] = wordHash(w.toLowerCase());
    }
    return n - at;
  }
  eachWord(text, (start, end) => {
    if (n === scratch.length) scratch = grown(scratch);
    scratch[n++] = asciiWordHash(text, start, end) ??
      wordHash(text.slice(start, end).toLowerCase());
  });
  return n - at;
}

/** Adds the shingles of `scratch[from, from + n)` to `sig`, each `copies` times, hashed apart. */
function addShingles(
  sig: Uint32Array,
  from: number,
  n: number,
  shingle: number,
  copies: number,
): void {
  if (n === 0) return;
  const hashes = scratch;
  const shingles = Math.max(1, n - shingle + 1);
  const width = Math.min(shingle, n);
  for (let i = from; i < from + shingles; i++) {
    let h = width;
    for (let j = i; j < i + width; j++) h = Math.imul(h ^ hashes[j], 0x01000193);
    for (let c = 0; c < copies; c++) {
      const m = fmix(h ^ SEEDS[c]) >>> 0;
      const at = m >>> 26, v = m & 0x3ffffff;
      if (v < sig[at]) sig[at] = v;
    }
  }
}

function grown(a: Int32Array): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

/** wordHash of text[start, end) lower-cased, or undefined when it is not all ASCII. */
function asciiWordHash(text: string, start: number, end: number): number | undefined {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    let c = text.charCodeAt(i);
    if (c > 0x7f) return undefined;
    if (c >= 65 && c <= 90) c += 32;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return fmix(h);
}

/** The signature of the first `n` word hashes in `scratch`. */
function signatureOf(n: number, shingle: number): Uint32Array | undefined {
  if (n === 0) return undefined;
  const sig = new Uint32Array(SIGNATURE_LENGTH).fill(EMPTY);
  addShingles(sig, 0, n, shingle, 1);
  return densified(sig);
}

/** Fills each position no shingle reached from the next reached one, mixed with the distance. */
function densified(sig: Uint32Array): Uint32Array {
  let empty = 0;
  for (let i = 0; i < SIGNATURE_LENGTH; i++) if (sig[i] === EMPTY) empty++;
  if (empty === 0) return sig;
  const reached = sig.slice();
  for (let i = 0; i < SIGNATURE_LENGTH; i++) {
    if (reached[i] !== EMPTY) continue;
    let j = i, d = 0;
    do {
      j = (j + 1) % SIGNATURE_LENGTH;
      d++;
    } while (reached[j] === EMPTY);
    sig[i] = (fmix(reached[j] ^ SEEDS[d]) >>> 0) & 0x3ffffff;
  }
  return sig;
}
