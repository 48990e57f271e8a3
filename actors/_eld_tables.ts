/**
 * npm eld's language detection (its "small" n-gram tables, 60 languages),
 * scored over those tables held in typed arrays.
 *
 * Why not eld.detect itself: on the Enricher's 200-character samples it
 * spends about 70 µs a call building an object of n-gram strings and summing
 * scores with `for…in` over its table objects, whose integer keys come back
 * as strings. No other detector on npm was as accurate, and none faster
 * than eld scored this way.
 * Measured in one run on 3,000 generated demo items (µs per item, each on
 * the Enricher's sample with its 3-word floor) and on the fixture texts as
 * tests/actors/language_test.ts counts them (detected as declared, of en 284,
 * de 21, pt 40, fr 27, zh 74):
 *
 * | detector                 | µs/item |  en | de | pt | fr | zh |
 * | ------------------------ | ------: | --: | -: | -: | -: | -: |
 * | eld 2.1.0 small          |    77.5 | 282 | 21 | 40 | 27 | 70 |
 * | its tables (this file)   |    16.7 | 282 | 21 | 40 | 27 | 70 |
 * | fasttext.wasm.js 1.0.0   |    55.4 | 279 | 21 | 40 | 27 | 63 |
 * | cld3-asm 4.0.0           |   174.8 | 247 | 21 | 39 | 27 | 73 |
 * | franc-min 6.2.0          |   353.8 | 258 | 20 | 40 | 27 | 72 |
 * | tinyld 1.3.4             |   407.4 | 235 | 19 | 38 | 27 | 71 |
 * | lande 1.0.10             |   454.4 | 255 | 19 | 40 | 27 | 56 |
 * | languagedetect 2.0.0     |   578.6 | 263 | 21 | 40 | 27 |  0 |
 *
 * So this file keeps eld's model and its exact arithmetic and changes only
 * the bookkeeping: an n-gram is packed into two integers as its bytes are
 * read (no string is built), found in an open-addressing table, and its
 * languages' scores are added from flat arrays. The answers are eld's own:
 * tests/actors/eld_tables_test.ts compares both on every fixture text and on
 * generated items.
 *
 * eld does not export its tables, so they are imported from the files next
 * to its "small" entry (pinned as eld@2.1.0 in deno.json); the test above
 * fails if an upgrade moves them.
 */

/** What the package's files hold, as far as this file reads them. */
interface EldFiles {
  languages: Record<number, string>;
  ngrams: NgramRuns;
  separators: RegExp;
  dictionary: readonly string[];
  avgScore: Record<string, number>;
}

/** eld subtracts this from every stored score to keep its files small. */
const BASE_SCORE = 53;
/** eld reads words up to the first space after 350 bytes, and never past 380. */
const CUT_AFTER = 350;
const ENFORCE_CUT_AFTER = 380;
/** Bytes of a word that eld reads n-grams from (the last n-gram runs to the word's end). */
const MAX_WORD = 70;
const SPACE = 0x20;
/** Table keys are at most 6 bytes, packed 4 + 2 into two integers with the length. */
const MAX_KEY = 6;
const TABLE_BITS = 18;
const SCRATCH_BITS = 10;

/**
 * eld's n-grams, flat: n-gram i's (language, score) pairs are at
 * `start[i]` up to `start[i + 1]` of `lang` and `score`.
 */
export interface NgramRuns {
  grams: string[];
  start: number[];
  lang: number[];
  score: number[];
}

/**
 * The files beside eld's "small" entry. Its n-gram file (1.6 MB of one
 * object literal) is read as text where this process may read it, and
 * scanned straight into flat arrays (`scanNgramsModule`): evaluated, it
 * became about 30 MB of objects for the life of the process, and parsing it
 * took about 60 MB more that V8 kept from the operating system long after
 * (in a worker that had ended, too: its pages stayed pooled).
 *
 * Without that permission, or where the package is not where resolving
 * says, the entry is imported by name as before: that also puts eld in the
 * module graph, so `deno install` and a fresh cache fetch it.
 */
async function importEldFiles(): Promise<EldFiles> {
  const scanned = await readNgrams(import.meta.resolve("eld/small"));
  if (!scanned) await import("eld/small");
  const entry = import.meta.resolve("eld/small");
  const file = (path: string) => import(new URL(path, entry).href);
  const [ngrams, patterns, dictionary, avg] = await Promise.all([
    scanned ?? file("../ngrams/small.js").then((m) => ({
      languages: m.ngramsData.languages,
      ngrams: runsOf(m.ngramsData.ngrams),
    })),
    file("../regexPatterns.js"),
    file("../dictionary.js"),
    file("../avgScore.js"),
  ]);
  return {
    languages: ngrams.languages,
    ngrams: ngrams.ngrams,
    separators: patterns.separators,
    dictionary: dictionary.dictionary,
    avgScore: avg.avgScore,
  };
}

/** The n-gram file beside `entry`, scanned; undefined if it may not be read or is not there. */
async function readNgrams(entry: string): Promise<ScannedNgrams | undefined> {
  const url = new URL("../ngrams/small.js", entry);
  if (!mayRead(url)) return undefined;
  try {
    return scanNgramsModule(await Deno.readTextFile(url), url.href);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** What eld's n-gram module holds: its language codes and its n-grams. */
export interface ScannedNgrams {
  languages: Record<number, string>;
  ngrams: NgramRuns;
}

/** eld's n-gram objects as flat runs, in their key order. */
export function runsOf(ngrams: Record<string, Record<number, number>>): NgramRuns {
  const runs: NgramRuns = { grams: [], start: [], lang: [], score: [] };
  for (const g in ngrams) {
    runs.grams.push(g);
    runs.start.push(runs.lang.length);
    const scores = ngrams[g];
    for (const l in scores) runs.lang.push(Number(l)), runs.score.push(scores[l]);
  }
  runs.start.push(runs.lang.length);
  return runs;
}

/**
 * Reads eld's n-gram module, `export const ngramsData = {type:'S60',
 * languages:{0:'am',...},ngrams:{' de ':{9:12,...},...}}`, without
 * evaluating it: keys are single- or double-quoted strings (whose only
 * escapes are a backslash before a character standing for itself) or bare
 * words, values integers. Anything else is an error naming the file and
 * offset; tests/actors/eld_tables_test.ts checks the result against the
 * module itself, key by key.
 */
export function scanNgramsModule(text: string, file: string): ScannedNgrams {
  let at = 0;
  const fail = (what: string): never => {
    throw new Error(`eld tables: ${file}: expected ${what} at offset ${at}`);
  };
  const expect = (c: string) => text[at] === c ? at++ : fail(`"${c}"`);
  const find = (marker: string) => {
    const i = text.indexOf(marker);
    if (i < 0) fail(marker);
    at = i + marker.length;
  };
  const key = (): string => {
    const quote = text[at];
    if (quote !== "'" && quote !== '"') {
      const end = text.indexOf(":", at);
      if (end < 0) fail("a key");
      return text.slice(at, at = end);
    }
    let out = "", from = ++at;
    for (; text[at] !== quote; at++) {
      if (at >= text.length) fail(`a closing ${quote}`);
      if (text[at] !== "\\") continue;
      if (!"'\"\\".includes(text[at + 1])) fail("no escape but \\' \\\" or \\\\");
      out += text.slice(from, at);
      from = ++at;
    }
    return out + text.slice(from, at++);
  };
  const integer = (): number => {
    const sign = text[at] === "-" ? (at++, -1) : 1;
    let n = 0, digits = 0;
    for (let c = text.charCodeAt(at); c >= 48 && c <= 57; c = text.charCodeAt(++at), digits++) {
      n = n * 10 + c - 48;
    }
    if (digits === 0) fail("an integer");
    return sign * n;
  };
  /** `{k:v,...}`, each pair handed to `each`. */
  const object = (each: (k: string) => void) => {
    expect("{");
    while (text[at] !== "}") {
      each(key());
      if (text[at] === ",") at++;
      else if (text[at] !== "}") fail(`"," or "}"`);
    }
    at++;
  };
  const languages: Record<number, string> = {};
  find("languages:");
  object((k) => {
    expect(":");
    languages[Number(k)] = key();
  });
  const ngrams: NgramRuns = { grams: [], start: [], lang: [], score: [] };
  find("ngrams:");
  object((g) => {
    expect(":");
    ngrams.grams.push(g);
    ngrams.start.push(ngrams.lang.length);
    object((l) => {
      expect(":");
      ngrams.lang.push(Number(l));
      ngrams.score.push(integer());
    });
  });
  ngrams.start.push(ngrams.lang.length);
  return { languages, ngrams };
}

/** eld spells a byte as one character of code 0-255; anything else would not pack. */
function byteOf(c: string): number {
  const code = c.charCodeAt(0);
  if (c.length !== 1 || code > 255) throw new Error(`eld tables: "${c}" does not stand for a byte`);
  return code;
}

/** An n-gram's bytes as two integers: bytes 0-3, then bytes 4-5 and the length. */
const keyLo = (b: ArrayLike<number>, n: number) =>
  (b[0] | (n > 1 ? b[1] << 8 : 0) | (n > 2 ? b[2] << 16 : 0) | (n > 3 ? b[3] << 24 : 0)) | 0;
const keyHi = (b: ArrayLike<number>, n: number) =>
  (n > 4 ? b[4] : 0) | (n > 5 ? b[5] << 8 : 0) | (n << 16);
const slotOf = (lo: number, hi: number, bits: number) =>
  Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> (32 - bits);

/** eld's model as flat arrays: what a detector needs, built from eld's files by `tablesOf`. */
export interface EldSnapshot {
  languages: string[];
  avgScore: Float64Array;
  separators: { source: string; flags: string };
  /** UTF-8 byte to the character code eld's tables spell it with. */
  byteCode: Uint8Array;
  // Packed keys to n-gram ids (open addressing), ids to runs of (language, score) pairs.
  keyLo: Int32Array;
  keyHi: Int32Array;
  ids: Int32Array;
  start: Int32Array;
  lang: Uint8Array;
  score: Uint16Array;
}

function tablesOf(files: EldFiles): EldSnapshot {
  const count = Object.keys(files.languages).length;
  const languages = Array.from({ length: count }, (_, i) => files.languages[i]);
  const byteCode = new Uint8Array(256);
  files.dictionary.forEach((c, b) => byteCode[b] = byteOf(c));
  const size = 1 << TABLE_BITS;
  const los = new Int32Array(size);
  const his = new Int32Array(size); // 0: empty (a key's length is never 0)
  const ids = new Int32Array(size);
  const insert = (lo: number, hi: number, id: number) => {
    const mask = size - 1;
    let s = slotOf(lo, hi, TABLE_BITS);
    while (his[s] !== 0) s = (s + 1) & mask;
    los[s] = lo;
    his[s] = hi;
    ids[s] = id;
  };
  const { grams, lang: langs, score: scores } = files.ngrams;
  const start = Int32Array.from(files.ngrams.start);
  const lang = Uint8Array.from(langs);
  const score = Uint16Array.from(scores, (s) => s + BASE_SCORE);
  const codes = new Uint8Array(MAX_KEY);
  grams.forEach((g, id) => {
    if (g.length > MAX_KEY) throw new Error(`eld tables: n-gram "${g}" is over ${MAX_KEY} bytes`);
    for (let i = 0; i < g.length; i++) codes[i] = byteOf(g[i]);
    insert(keyLo(codes, g.length), keyHi(codes, g.length), id);
  });
  const { source, flags } = files.separators;
  return {
    languages,
    avgScore: Float64Array.from(languages, (l) => files.avgScore[l] ?? 0),
    separators: { source, flags },
    byteCode,
    keyLo: los,
    keyHi: his,
    ids,
    start,
    lang,
    score,
  };
}

/** Whether this process may read a module file without asking. */
function mayRead(module: URL): boolean {
  if (module.protocol !== "file:") return false;
  return Deno.permissions.querySync({ name: "read", path: module }).state === "granted";
}

/**
 * eld's detector over its tables in typed arrays. One per process: it keeps
 * scratch buffers between calls, so it is not reentrant (nothing in it awaits).
 */
export class EldTables {
  readonly #languages: string[];
  readonly #avgScore: Float64Array;
  readonly #separators: RegExp;
  readonly #byteCode: Uint8Array;
  readonly #keyLo: Int32Array;
  readonly #keyHi: Int32Array;
  readonly #ids: Int32Array;
  readonly #start: Int32Array;
  readonly #lang: Uint8Array;
  readonly #score: Uint16Array;
  // Per call: the text's bytes, word ends, the n-grams seen (stamped) and the sums.
  #bytes = new Uint8Array(ENFORCE_CUT_AFTER + 8);
  #wordEnds = new Int32Array(ENFORCE_CUT_AFTER + 8);
  readonly #seenLo = new Int32Array(1 << SCRATCH_BITS);
  readonly #seenHi = new Int32Array(1 << SCRATCH_BITS);
  readonly #seenStamp = new Int32Array(1 << SCRATCH_BITS);
  #stamp = 0;
  #distinct = 0;
  /** N-grams longer than a table key (the tail of a word over 70 bytes): counted, never scored. */
  readonly #long = new Set<string>();
  readonly #sums: Int32Array;
  readonly #gram = new Uint8Array(MAX_KEY);

  constructor(t: EldSnapshot) {
    this.#languages = t.languages;
    this.#avgScore = t.avgScore;
    this.#separators = new RegExp(t.separators.source, t.separators.flags);
    this.#byteCode = t.byteCode;
    this.#keyLo = t.keyLo;
    this.#keyHi = t.keyHi;
    this.#ids = t.ids;
    this.#start = t.start;
    this.#lang = t.lang;
    this.#score = t.score;
    this.#sums = new Int32Array(t.languages.length);
  }

  /**
   * Builds the tables (once per process). eld's n-gram module is scanned as
   * text, not evaluated (see `importEldFiles`), so nothing of it stays on
   * the heap but the typed arrays.
   */
  static async load(): Promise<EldTables> {
    return new EldTables(tablesOf(await importEldFiles()));
  }

  /**
   * What `eld.detect(text)` names when its result `isReliable()`, else "".
   * The same steps: separators to spaces, lower case, UTF-8 bytes up to
   * eld's cut, word n-grams (4 bytes, stride 3, the first with a leading
   * space, the last with a trailing one), each distinct n-gram's scores
   * summed per language, the top language and eld's reliability test.
   */
  detect(text: string): string {
    const t = text.substring(0, 1000).replace(this.#separators, " ").trim().toLowerCase();
    const words = this.#readBytes(t);
    this.#stamp++;
    this.#distinct = 0;
    this.#long.clear();
    this.#sums.fill(0);
    let from = 0;
    for (let w = 0; w < words; w++) {
      const end = this.#wordEnds[w];
      const len = Math.min(end - from, MAX_WORD);
      let j = 0;
      for (; j + 4 < len; j += 3) this.#gramOf(from + j, from + j + 4, j === 0, false);
      this.#gramOf(from + Math.max(0, len - 4), end, j === 0, true);
      from = end;
    }
    return this.#verdict();
  }

  /** eld's strToUtf8Bytes: the words' bytes back to back into #bytes, their ends into #wordEnds. */
  #readBytes(t: string): number {
    const b = this.#bytes, code = this.#byteCode;
    let n = 0, words = 0, count = 0, wordStart = 0;
    const put = (byte: number) => b[n++] = code[byte];
    for (let i = 0; i < t.length; i++) {
      let c = t.charCodeAt(i);
      if (c < 0x80) {
        if (c === SPACE) {
          if (n > wordStart) this.#wordEnds[words++] = wordStart = n;
          if (count > CUT_AFTER) break;
        } else b[n++] = c;
        count++;
      } else if (c < 0x800) {
        put(0xc0 | (c >> 6)), put(0x80 | (c & 0x3f));
        count += 2;
      } else if (c < 0xd800 || c >= 0xe000) {
        put(0xe0 | (c >> 12)), put(0x80 | ((c >> 6) & 0x3f)), put(0x80 | (c & 0x3f));
        count += 3;
      } else {
        c = 0x10000 + (((c & 0x3ff) << 10) | (t.charCodeAt(++i) & 0x3ff));
        put(0xf0 | (c >> 18)), put(0x80 | ((c >> 12) & 0x3f));
        put(0x80 | ((c >> 6) & 0x3f)), put(0x80 | (c & 0x3f));
        count += 4;
      }
      if (count > ENFORCE_CUT_AFTER) break;
    }
    if (n > wordStart) this.#wordEnds[words++] = n;
    return words;
  }

  /** Counts the n-gram [lead space] bytes[from, to) [trail space] once per call, and scores it. */
  #gramOf(from: number, to: number, lead: boolean, trail: boolean): void {
    const n = to - from + (lead ? 1 : 0) + (trail ? 1 : 0);
    if (n > MAX_KEY) {
      const before = this.#long.size;
      this.#long.add(String.fromCharCode(...this.#bytes.subarray(from, to)));
      if (this.#long.size > before) this.#distinct++;
      return;
    }
    const g = this.#gram;
    let k = 0;
    if (lead) g[k++] = SPACE;
    for (let i = from; i < to; i++) g[k++] = this.#bytes[i];
    if (trail) g[k++] = SPACE;
    const lo = keyLo(g, n), hi = keyHi(g, n);
    if (!this.#firstSeen(lo, hi)) return;
    this.#distinct++;
    const id = this.#find(lo, hi);
    if (id < 0) return;
    for (let p = this.#start[id], end = this.#start[id + 1]; p < end; p++) {
      this.#sums[this.#lang[p]] += this.#score[p];
    }
  }

  /** eld's getMaxLang, then LanguageResult.isReliable() on its orderAndScale. */
  #verdict(): string {
    const sums = this.#sums, num = this.#distinct;
    let best = -1, max = 0;
    for (let l = 0; l < sums.length; l++) {
      if (sums[l] > 0 && sums[l] > max) {
        best = l;
        max = sums[l];
      }
    }
    if (best < 0 || num < 3) return "";
    // orderAndScale: each positive sum as s/(s+25) with s = sum/num, sorted (stably) high to low.
    const scaled = (l: number) => (sums[l] / num) / ((sums[l] / num) + 25);
    let first = -1, second = -1;
    for (let l = 0; l < sums.length; l++) {
      if (sums[l] <= 0) continue;
      if (first < 0 || scaled(l) > scaled(first)) {
        second = first;
        first = l;
      } else if (second < 0 || scaled(l) > scaled(second)) second = l;
    }
    const top = scaled(first);
    // As eld has it, the runner-up's "score" is its language index (results[1][0]).
    const next = second < 0 ? 0 : second;
    const reliable = !(this.#avgScore[best] * 0.75 > top || 0.01 > Math.abs(top - next));
    return reliable ? this.#languages[best] : "";
  }

  /** True the first time this call meets the key. */
  #firstSeen(lo: number, hi: number): boolean {
    const mask = (1 << SCRATCH_BITS) - 1;
    for (let s = slotOf(lo, hi, SCRATCH_BITS);; s = (s + 1) & mask) {
      if (this.#seenStamp[s] !== this.#stamp) {
        this.#seenStamp[s] = this.#stamp;
        this.#seenLo[s] = lo;
        this.#seenHi[s] = hi;
        return true;
      }
      if (this.#seenLo[s] === lo && this.#seenHi[s] === hi) return false;
    }
  }

  #find(lo: number, hi: number): number {
    const mask = (1 << TABLE_BITS) - 1;
    for (let s = slotOf(lo, hi, TABLE_BITS);; s = (s + 1) & mask) {
      if (this.#keyHi[s] === 0) return -1;
      if (this.#keyLo[s] === lo && this.#keyHi[s] === hi) return this.#ids[s];
    }
  }
}
