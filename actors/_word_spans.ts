/** Classes of a UTF-16 code unit, as bits. */
const START = 1; // a letter or digit: may start a word
const PART = 2; // a letter, mark or digit: may continue one
const JOIN = 4; // ' ’ -: joins two parts of one word ("don't", "Open-Source")
const LEAD = 8; // a lead surrogate: the class is its code point's
/** Set on a class read from a surrogate pair: the code point is two units wide. */
const WIDE = 16;

let table: Uint8Array | undefined;

/**
 * The class of every BMP code unit, built on first use (about 20 ms) from the
 * same Unicode properties a word is defined by, so scanning a text costs one
 * array read per character instead of a Unicode regex.
 */
function classes(): Uint8Array {
  if (table) return table;
  const t = new Uint8Array(0x10000);
  const start = /[\p{L}\p{N}]/u, part = /[\p{L}\p{M}\p{N}]/u;
  for (let c = 0; c < 0x10000; c++) {
    if (c >= 0xd800 && c <= 0xdfff) {
      if (c <= 0xdbff) t[c] = LEAD;
      continue;
    }
    const s = String.fromCharCode(c);
    t[c] = (start.test(s) ? START : 0) | (part.test(s) ? PART : 0);
  }
  t[0x27] = t[0x2019] = t[0x2d] = JOIN;
  return table = t;
}

const astral = new Map<number, number>();

/** The class of a code point beyond the BMP (seldom met: cached). */
function astralClass(cp: number): number {
  let k = astral.get(cp);
  if (k === undefined) {
    const s = String.fromCodePoint(cp);
    k = (/[\p{L}\p{N}]/u.test(s) ? START : 0) | (/[\p{L}\p{M}\p{N}]/u.test(s) ? PART : 0);
    astral.set(cp, k);
  }
  return k | WIDE;
}

/** The class of the code point at `i` (WIDE set when it takes two units). */
function classAt(text: string, i: number, t: Uint8Array): number {
  const c = text.charCodeAt(i);
  const k = t[c];
  if (k !== LEAD) return k;
  const d = text.charCodeAt(i + 1);
  if (!(d >= 0xdc00 && d <= 0xdfff)) return 0;
  return astralClass(0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00));
}

/**
 * Calls `word(start, end)` for each word of `text`, in order: a run of
 * letters and digits, with marks inside it (Thai, Devanagari) and inner
 * apostrophes and hyphens kept ("don't", "Open-Source-Projekts" are one word
 * each), exactly what the pattern
 * `[\p{L}\p{N}][\p{L}\p{M}\p{N}]*(?:['’\-][\p{L}\p{M}\p{N}]+)*` matches with
 * the u flag (tests/actors/word_spans_test.ts holds the two side by side), but
 * as offsets: a caller that only counts or hashes words builds no string.
 * Scripts written without spaces come out as one run per sentence here;
 * `words()` cuts those.
 */
export function eachWord(text: string, word: (start: number, end: number) => void): void {
  const t = classes(), n = text.length;
  let i = 0;
  while (i < n) {
    let k = classAt(text, i, t);
    if (!(k & START)) {
      i += k & WIDE ? 2 : 1;
      continue;
    }
    const start = i;
    i += k & WIDE ? 2 : 1;
    for (;;) {
      while (i < n && (k = classAt(text, i, t)) & PART) i += k & WIDE ? 2 : 1;
      if (i + 1 < n && t[text.charCodeAt(i)] & JOIN && (k = classAt(text, i + 1, t)) & PART) {
        i += k & WIDE ? 3 : 2;
      } else break;
    }
    word(start, i);
  }
}
