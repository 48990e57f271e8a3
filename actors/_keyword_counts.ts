import { stopwordsOf } from "./_keywords.ts";
import { hasUnspaced, words } from "./_text.ts";
import { eachWord } from "./_word_spans.ts";

const APOSTROPHE = 0x27, RIGHT_QUOTE = 0x2019, HYPHEN = 0x2d;
const FNV_OFFSET = 0x811c9dc5, FNV_PRIME = 0x01000193;

/** A word's unit as counted: "’" is the same as "'". */
const unitAt = (s: string, i: number) => {
  const c = s.charCodeAt(i);
  return c === RIGHT_QUOTE ? APOSTROPHE : c;
};

function hashOf(s: string, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) h = Math.imul(h ^ unitAt(s, i), FNV_PRIME);
  return h >>> 0;
}

/** Whether s[start, end) is `word`, "’" read as "'". */
function spells(s: string, start: number, end: number, word: string): boolean {
  if (end - start !== word.length) return false;
  for (let i = start; i < end; i++) if (unitAt(s, i) !== word.charCodeAt(i - start)) return false;
  return true;
}

/** A word of digits, apostrophes and hyphens only ("2024", "1-2"; "'90s" is not one). */
function numberLike(s: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = unitAt(s, i);
    if (!((c >= 48 && c <= 57) || c === APOSTROPHE || c === HYPHEN)) return false;
  }
  return true;
}

/**
 * Two hiragana: Japanese grammar, as the segmenter cuts it (ています gives
 * てい and ます, しました しま and した; んで, なか, われ), never a keyword in
 * practice; a noun written in kana is longer (いじめ).
 */
function kanaPair(s: string, start: number, end: number): boolean {
  if (end - start !== 2) return false;
  const a = s.charCodeAt(start), b = s.charCodeAt(start + 1);
  return a >= 0x3041 && a <= 0x309f && b >= 0x3041 && b <= 0x309f;
}

/** A language's stopwords by hash, so a word is checked without building its string. */
class StopTable {
  readonly #words: string[];
  readonly #slots: Int32Array;

  constructor(stop: ReadonlySet<string>) {
    this.#words = [...stop];
    this.#slots = new Int32Array(1 << Math.ceil(Math.log2(this.#words.length * 4 + 4)));
    const mask = this.#slots.length - 1;
    this.#words.forEach((w, i) => {
      let s = hashOf(w, 0, w.length) & mask;
      while (this.#slots[s] !== 0) s = (s + 1) & mask;
      this.#slots[s] = i + 1;
    });
  }

  has(text: string, start: number, end: number, hash: number): boolean {
    const mask = this.#slots.length - 1;
    for (let s = hash & mask; this.#slots[s] !== 0; s = (s + 1) & mask) {
      if (spells(text, start, end, this.#words[this.#slots[s] - 1])) return true;
    }
    return false;
  }
}

const stopTables = new Map<string, StopTable>();

/**
 * The keywords of one item: how often each word of its lower-cased title
 * and text occurs, then the `max` most frequent that are not stopwords of
 * the item's language (or English), shorter than 3 characters (2 in a
 * script written without spaces) or numbers,
 * "’" counted as "'"; ties in order of first appearance, so with the title's
 * words added first a title word outranks a body word seen as often.
 *
 * Words come as offsets into the texts (`eachWord`) and are counted in an
 * open-addressing table of typed arrays, reused from item to item: a word
 * costs a hash and a probe, and only the winners become strings. The Map
 * of word strings it replaces spent about 20 µs per generated demo item on
 * them; the lists are the same (tests/actors/keyword_counts_test.ts).
 */
export class KeywordCounts {
  // Distinct words in order of first appearance: where each is spelled, and its count.
  #texts: string[] = [];
  #starts = new Int32Array(256);
  #ends = new Int32Array(256);
  #hashes = new Int32Array(256);
  #counts = new Int32Array(256);
  /** Entry + 1 per slot; a slot is used in this item when its stamp is the item's. */
  #slots = new Int32Array(1024);
  #stamps = new Int32Array(1024);
  #stamp = 0;
  #size = 0;

  /** Starts an item. */
  reset(): this {
    this.#size = 0;
    this.#texts.length = 0;
    if (++this.#stamp === 0x7fffffff) [this.#stamp, this.#stamps] = [1, this.#stamps.fill(0)];
    return this;
  }

  /**
   * Counts the words of a lower-cased text and returns how many `words()`
   * finds in it; a text in a script without spaces is cut by `words()`.
   */
  addWords(text: string): number {
    let n = 0;
    if (hasUnspaced(text)) {
      for (const w of words(text)) this.add(w, 0, w.length, hasUnspaced(w) ? 2 : 3), n++;
    } else eachWord(text, (start, end) => (this.add(text, start, end), n++));
    return n;
  }

  /**
   * Counts the word text[start, end) when it is at least `min` units long;
   * the text must be lower-cased already. A word the segmenter cut from a
   * script without spaces counts from 2: most Chinese and Japanese words are
   * one or two characters, and at 3 a text of them had no keywords at all.
   */
  add(text: string, start: number, end: number, min = 3): void {
    if (end - start < min) return;
    const hash = hashOf(text, start, end) | 0;
    const mask = this.#slots.length - 1;
    let s = hash & mask;
    for (; this.#stamps[s] === this.#stamp; s = (s + 1) & mask) {
      const e = this.#slots[s] - 1;
      if (this.#hashes[e] === hash && this.#same(e, text, start, end)) {
        this.#counts[e]++;
        return;
      }
    }
    const e = this.#size++;
    if (e === this.#counts.length) this.#growEntries();
    this.#texts[e] = text;
    this.#starts[e] = start;
    this.#ends[e] = end;
    this.#hashes[e] = hash;
    this.#counts[e] = 1;
    this.#stamps[s] = this.#stamp;
    this.#slots[s] = e + 1;
    if (this.#size * 2 > this.#slots.length) this.#growSlots();
  }

  /**
   * The `max` most counted words that are not stopwords of `language` (nor
   * numbers, nor two hiragana: kanaPair), most first, ties in order of
   * first appearance. Only a word
   * that would enter the list is looked up among the stopwords.
   */
  top(max: number, language: string): string[] {
    let stop = stopTables.get(language);
    if (!stop) stopTables.set(language, stop = new StopTable(stopwordsOf(language)));
    const top: number[] = [], tops: number[] = [];
    for (let e = 0; e < this.#size; e++) {
      const n = this.#counts[e];
      if (top.length === max && n <= tops[max - 1]) continue;
      const text = this.#texts[e], start = this.#starts[e], end = this.#ends[e];
      if (
        stop.has(text, start, end, this.#hashes[e] >>> 0) || numberLike(text, start, end) ||
        kanaPair(text, start, end)
      ) continue;
      let at = top.length === max ? max - 1 : top.length;
      while (at > 0 && tops[at - 1] < n) {
        top[at] = top[at - 1];
        tops[at] = tops[at - 1];
        at--;
      }
      top[at] = e;
      tops[at] = n;
    }
    return top.map((e) => {
      const w = this.#texts[e].slice(this.#starts[e], this.#ends[e]);
      return w.includes("’") ? w.replaceAll("’", "'") : w;
    });
  }

  #same(e: number, text: string, start: number, end: number): boolean {
    const other = this.#texts[e], from = this.#starts[e];
    if (this.#ends[e] - from !== end - start) return false;
    for (let i = 0; i < end - start; i++) {
      if (unitAt(other, from + i) !== unitAt(text, start + i)) return false;
    }
    return true;
  }

  #growEntries(): void {
    const grow = (a: Int32Array) => {
      const b = new Int32Array(a.length * 2);
      b.set(a);
      return b;
    };
    this.#starts = grow(this.#starts);
    this.#ends = grow(this.#ends);
    this.#hashes = grow(this.#hashes);
    this.#counts = grow(this.#counts);
  }

  /** Twice the slots, every entry placed again. */
  #growSlots(): void {
    const size = this.#slots.length * 2, mask = size - 1;
    this.#slots = new Int32Array(size);
    this.#stamps = new Int32Array(size);
    this.#stamp = 1;
    for (let e = 0; e < this.#size; e++) {
      let s = this.#hashes[e] & mask;
      while (this.#stamps[s] === 1) s = (s + 1) & mask;
      this.#stamps[s] = 1;
      this.#slots[s] = e + 1;
    }
  }
}
