import { decodeHTML } from "entities";

/**
 * Plain text out of the HTML fragments feeds and APIs put in their
 * descriptions (HN comments, RSS descriptions, Atom content). Meant for
 * search and embedding input, not for display: block boundaries become line
 * breaks, everything else of the markup goes, entities are decoded once.
 */
export function htmlToText(html: string): string {
  // Where the markup marks its blocks, a line break of the source is a space like any other
  // (outside <pre>): kept, it cut a fixture page's sentences in two ("for the\nsite to be").
  // A fragment with no block markup may be plain text laid out in lines: those are kept.
  const laidOut = BLOCK_MARKUP.test(html)
    ? html.split(PRE).map((part, i) => i % 2 ? part : part.replace(/\s+/g, " ")).join("")
    : html;
  const text = laidOut
    .replace(/<!--[\s\S]*?-->/g, "")
    .replace(/<(script|style|noscript|template)\b[\s\S]*?<\/\1\s*>/gi, " ")
    .replace(/<br\s*\/?>/gi, "\n")
    .replace(
      /<\/?(?:p|div|li|ul|ol|h[1-6]|blockquote|pre|section|article|table|tr|dd|dt)\b[^>]*>/gi,
      "\n",
    )
    .replace(/<[^>]*>/g, "");
  return tidyWhitespace(decodeHTML(text));
}

/** A tag that starts or ends a block, or a line break. */
const BLOCK_MARKUP =
  /<\/?(?:br|p|div|li|ul|ol|h[1-6]|blockquote|pre|section|article|table|tr|dd|dt)\b/i;
/** A <pre> element, captured: split on it, the odd parts are the elements. */
const PRE = /(<pre\b[\s\S]*?<\/pre\s*>)/i;

/** Decodes HTML entities (named and numeric) without touching markup. */
export function decodeEntities(text: string): string {
  return text.includes("&") ? decodeHTML(text) : text;
}

/** Collapses runs of spaces, keeps at most one blank line between paragraphs. */
export function tidyWhitespace(text: string): string {
  return text
    .replace(/[ \t\f\v\u00a0\r]+/g, " ")
    .replace(/ ?\n ?/g, "\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

/** One line of text: every run of whitespace, newlines included, becomes one space. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
