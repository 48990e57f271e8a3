import { decodeHTML } from "entities";
import { Parser } from "htmlparser2";
import { eachWord } from "./_word_spans.ts";

const URL_LIKE = /\bhttps?:\/\/\S+/gi;

/**
 * Scripts written without spaces between words: a run of them is one
 * `eachWord` word ("東京都は今日" is a single run of letters), so such a run is cut
 * into words by the ICU word segmenter instead.
 */
const UNSPACED =
  /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u;

/** One segmenter for the process: building one costs far more than using it. */
const SEGMENTER = new Intl.Segmenter(undefined, { granularity: "word" });

/** Elements whose content is not text a reader sees. */
const HIDDEN = new Set(["script", "style", "noscript", "template"]);

/**
 * The text of an HTML fragment, by htmlparser2 (the tokenizer linkedom and
 * cheerio use): a `>` inside a quoted attribute stays inside its tag, which
 * a `<[^>]*>` pattern gets wrong, and entities are decoded once. About
 * 1.5 µs per short fragment; one parser is reused, so a call builds no
 * parser and no DOM.
 */
class FragmentText {
  #parts: string[] = [];
  #hidden = 0;
  readonly #parser = new Parser({
    ontext: (text) => {
      if (this.#hidden === 0) this.#parts.push(text);
    },
    onopentagname: (name) => {
      if (HIDDEN.has(name)) this.#hidden++;
      else this.#parts.push(" ");
    },
    onclosetag: (name) => {
      if (HIDDEN.has(name)) this.#hidden = Math.max(0, this.#hidden - 1);
      else this.#parts.push(" ");
    },
  }, { decodeEntities: true });

  of(html: string): string {
    this.#parts = [];
    this.#hidden = 0;
    this.#parser.reset();
    this.#parser.end(html);
    return this.#parts.join("");
  }
}

const fragments = new FragmentText();

/**
 * The words a reader sees in a text that may be an HTML fragment (feed
 * descriptions, Atom content): markup, scripts and links go, entities are
 * decoded, so `<p>f&uuml;r</p>` counts one word, "für", not "f", "uuml", "r".
 * Cheap when the text holds no markup: each step first checks for its
 * trigger character.
 */
export function plainText(text: string): string {
  let t = text;
  if (t.includes("<")) t = fragments.of(t);
  else if (t.includes("&")) t = decodeHTML(t);
  if (t.includes("://")) t = t.replace(URL_LIKE, " ");
  return t;
}

/**
 * The words of plain text, in order, as written (case kept): see `eachWord`.
 * A run in a script without spaces (Chinese, Japanese, Thai, ...) is cut by
 * `Intl.Segmenter`, so "東京都は今日" is 東京|都|は|今日, not one word.
 */
export function words(text: string): string[] {
  const out: string[] = [];
  const unspaced = UNSPACED.test(text);
  eachWord(text, (start, end) => {
    const w = text.slice(start, end);
    if (!unspaced || !UNSPACED.test(w)) out.push(w);
    else for (const s of SEGMENTER.segment(w)) if (s.isWordLike) out.push(s.segment);
  });
  return out;
}

/** Whether `words()` cuts some of the text with the segmenter (a script without spaces). */
export function hasUnspaced(text: string): boolean {
  return UNSPACED.test(text);
}

/** How many words `words()` would return. */
export function countWords(text: string): number {
  if (UNSPACED.test(text)) return words(text).length;
  let n = 0;
  eachWord(text, () => n++);
  return n;
}
