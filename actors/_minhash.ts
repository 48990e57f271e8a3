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

/**
 * The MinHash signature of a text's set of word shingles (runs of `shingle`
 * consecutive words; a text shorter than that is one shingle). Shingles are
 * hashed from per-word hashes, not built as strings, and each signature
 * position is the minimum of `fmix(shingleHash ^ seed)`: one multiply-xor
 * mix per position instead of a hash function per position.
 *
 * @param words the text's words, already lower-cased
 * @returns undefined for a text with no words: nothing to compare
 */
export function minhash(words: readonly string[], shingle: number): Uint32Array | undefined {
  if (words.length === 0) return undefined;
  const hashes = words.map(wordHash);
  const shingles = Math.max(1, words.length - shingle + 1);
  const width = Math.min(shingle, words.length);
  const sig = new Uint32Array(SIGNATURE_LENGTH).fill(0xffffffff);
  for (let i = 0; i < shingles; i++) {
    let h = width;
    for (let j = i; j < i + width; j++) h = fmix(Math.imul(h, 0x01000193) ^ hashes[j]);
    for (let s = 0; s < SIGNATURE_LENGTH; s++) {
      const v = fmix(h ^ SEEDS[s]) >>> 0;
      if (v < sig[s]) sig[s] = v;
    }
  }
  return sig;
}
