import { decodeHTML } from "entities";

const SCRIPT = /<(script|style|noscript|template)\b[\s\S]*?<\/\1\s*>/gi;
const COMMENT = /<!--[\s\S]*?-->/g;
const TAG = /<[^>]*>/g;
const URL_LIKE = /\bhttps?:\/\/\S+/gi;

/**
 * Runs of letters and digits, with inner apostrophes and hyphens kept
 * ("don't", "Open-Source-Projekts" are one word each, as a reader counts).
 */
const WORD = /[\p{L}\p{N}]+(?:['’\-][\p{L}\p{N}]+)*/gu;

/**
 * The words a reader sees in a text that may be an HTML fragment (feed
 * descriptions, Atom content): markup, scripts and links go, entities are
 * decoded, so `<p>f&uuml;r</p>` counts one word, "für", not "f", "uuml", "r".
 * Cheap when the text holds no markup: each step first checks for its
 * trigger character.
 */
export function plainText(text: string): string {
  let t = text;
  if (t.includes("<")) t = t.replace(COMMENT, " ").replace(SCRIPT, " ").replace(TAG, " ");
  if (t.includes("&")) t = decodeHTML(t);
  if (t.includes("://")) t = t.replace(URL_LIKE, " ");
  return t;
}

/** The words of plain text, in order, as written (case kept). */
export function words(text: string): string[] {
  return text.match(WORD) ?? [];
}

/** How many words `words()` would return, without building the array. */
export function countWords(text: string): number {
  let n = 0;
  WORD.lastIndex = 0;
  while (WORD.exec(text) !== null) n++;
  return n;
}
