// Hex digits as char codes: one String.fromCharCode call with 32 arguments
// makes a flat string at once, several times faster than concatenating
// pieces (formatting the hash costs more than computing it).
const HC = Array.from({ length: 16 }, (_, i) => i.toString(16).charCodeAt(0));

function hex128(a: number, b: number, c: number, d: number): string {
  return String.fromCharCode(
    HC[a >>> 28],
    HC[(a >>> 24) & 15],
    HC[(a >>> 20) & 15],
    HC[(a >>> 16) & 15],
    HC[(a >>> 12) & 15],
    HC[(a >>> 8) & 15],
    HC[(a >>> 4) & 15],
    HC[a & 15],
    HC[b >>> 28],
    HC[(b >>> 24) & 15],
    HC[(b >>> 20) & 15],
    HC[(b >>> 16) & 15],
    HC[(b >>> 12) & 15],
    HC[(b >>> 8) & 15],
    HC[(b >>> 4) & 15],
    HC[b & 15],
    HC[c >>> 28],
    HC[(c >>> 24) & 15],
    HC[(c >>> 20) & 15],
    HC[(c >>> 16) & 15],
    HC[(c >>> 12) & 15],
    HC[(c >>> 8) & 15],
    HC[(c >>> 4) & 15],
    HC[c & 15],
    HC[d >>> 28],
    HC[(d >>> 24) & 15],
    HC[(d >>> 20) & 15],
    HC[(d >>> 16) & 15],
    HC[(d >>> 12) & 15],
    HC[(d >>> 8) & 15],
    HC[(d >>> 4) & 15],
    HC[d & 15],
  );
}

const C1 = 0x239b961b, C2 = 0xab0e9789, C3 = 0x38b34ae5, C4 = 0xa1e38b93;

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));

/**
 * MurmurHash3 x86 128-bit over the string's UTF-16 code units, as 32 hex
 * chars. Item ids are computed for every scraped item, so the hash sits on
 * the hottest path there is: this runs in a few hundred nanoseconds where
 * node:crypto's SHA-256 costs about 2 µs per call. It is a well-mixed hash,
 * not a cryptographic one: fine for content keys, not for secrets.
 */
export function hash128(key: string, seed = 0x9747b28c): string {
  const len = key.length;
  let h1 = seed, h2 = seed, h3 = seed, h4 = seed;
  const blocks = len >>> 3; // 8 code units = 16 bytes per block
  for (let b = 0; b < blocks; b++) {
    const i = b << 3;
    let k1 = key.charCodeAt(i) | (key.charCodeAt(i + 1) << 16);
    let k2 = key.charCodeAt(i + 2) | (key.charCodeAt(i + 3) << 16);
    let k3 = key.charCodeAt(i + 4) | (key.charCodeAt(i + 5) << 16);
    let k4 = key.charCodeAt(i + 6) | (key.charCodeAt(i + 7) << 16);
    k1 = Math.imul(rotl(Math.imul(k1, C1), 15), C2);
    h1 ^= k1;
    h1 = rotl(h1, 19) + h2;
    h1 = (Math.imul(h1, 5) + 0x561ccd1b) | 0;
    k2 = Math.imul(rotl(Math.imul(k2, C2), 16), C3);
    h2 ^= k2;
    h2 = rotl(h2, 17) + h3;
    h2 = (Math.imul(h2, 5) + 0x0bcaa747) | 0;
    k3 = Math.imul(rotl(Math.imul(k3, C3), 17), C4);
    h3 ^= k3;
    h3 = rotl(h3, 15) + h4;
    h3 = (Math.imul(h3, 5) + 0x96cd1c35) | 0;
    k4 = Math.imul(rotl(Math.imul(k4, C4), 18), C1);
    h4 ^= k4;
    h4 = rotl(h4, 13) + h1;
    h4 = (Math.imul(h4, 5) + 0x32ac3b17) | 0;
  }
  // Tail: up to 7 code units, packed two per 32-bit word.
  const t = blocks << 3;
  const rest = len - t;
  if (rest > 6) {
    h4 ^= Math.imul(rotl(Math.imul(key.charCodeAt(t + 6), C4), 18), C1);
  }
  if (rest > 4) {
    const k = key.charCodeAt(t + 4) | (rest > 5 ? key.charCodeAt(t + 5) << 16 : 0);
    h3 ^= Math.imul(rotl(Math.imul(k, C3), 17), C4);
  }
  if (rest > 2) {
    const k = key.charCodeAt(t + 2) | (rest > 3 ? key.charCodeAt(t + 3) << 16 : 0);
    h2 ^= Math.imul(rotl(Math.imul(k, C2), 16), C3);
  }
  if (rest > 0) {
    const k = key.charCodeAt(t) | (rest > 1 ? key.charCodeAt(t + 1) << 16 : 0);
    h1 ^= Math.imul(rotl(Math.imul(k, C1), 15), C2);
  }
  const bytes = len * 2;
  h1 ^= bytes, h2 ^= bytes, h3 ^= bytes, h4 ^= bytes;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0, h3 = (h3 + h1) | 0, h4 = (h4 + h1) | 0;
  h1 = fmix(h1), h2 = fmix(h2), h3 = fmix(h3), h4 = fmix(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0, h3 = (h3 + h1) | 0, h4 = (h4 + h1) | 0;
  return hex128(h1, h2, h3, h4);
}

/** Whether `s` is 32 lower-case hex digits, as hash128 writes them. */
export function isHex128(s: string): boolean {
  if (s.length !== 32) return false;
  for (let i = 0; i < 32; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/**
 * Reads the 128 bits of a hex hash (see isHex128) into `out` from `at`, 8
 * digits a word: tables of such ids keep 16 bytes each instead of a string.
 */
export function hexWords(hex: string, out: Uint32Array, at: number): void {
  for (let w = 0; w < 4; w++) {
    let v = 0;
    for (let i = w * 8; i < w * 8 + 8; i++) {
      const c = hex.charCodeAt(i);
      v = (v << 4) | (c <= 57 ? c - 48 : c - 87);
    }
    out[at + w] = v;
  }
}

/**
 * A 32-bit slot hash of 128 bits given as four words: all four mixed
 * (MurmurHash3's finaliser), so keys that differ in any word spread over a
 * table's low bits, as ids a source chose (not hashes) need.
 */
export function mix128(a: number, b: number, c: number, d: number): number {
  let h = a ^ Math.imul(b, 0x85ebca6b) ^ Math.imul(c, 0xc2b2ae35) ^ Math.imul(d, 0x27d4eb2f);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
