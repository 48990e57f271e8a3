import { decodeHTML } from "entities";
import { Parser } from "htmlparser2";

const URL_LIKE = /\bhttps?:\/\/\S+/gi;

/**
 * Runs of letters and digits, with inner apostrophes and hyphens kept
 * ("don't", "Open-Source-Projekts" are one word each, as a reader counts),
 * and the combining marks of Thai or Devanagari kept inside the word.
 */
const WORD = /[\p{L}\p{N}][\p{L}\p{M}\p{N}]*(?:['’\-][\p{L}\p{M}\p{N}]+)*/gu;

/**
 * Scripts written without spaces between words: a run of them is one regex
 * match ("東京都は今日" is a single run of letters), so such a run is cut
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
 * The words of plain text, in order, as written (case kept). A run in a
 * script without spaces (Chinese, Japanese, Thai, ...) is cut by
 * `Intl.Segmenter`, so "東京都は今日" is 東京|都|は|今日, not one word.
 */
export function words(text: string): string[] {
  const found = text.match(WORD);
  if (found === null) return [];
  if (!UNSPACED.test(text)) return found;
  const out: string[] = [];
  for (const w of found) {
    if (!UNSPACED.test(w)) out.push(w);
    else for (const s of SEGMENTER.segment(w)) if (s.isWordLike) out.push(s.segment);
  }
  return out;
}

/** How many words `words()` would return. */
export function countWords(text: string): number {
  if (UNSPACED.test(text)) return words(text).length;
  let n = 0;
  WORD.lastIndex = 0;
  while (WORD.exec(text) !== null) n++;
  return n;
}
