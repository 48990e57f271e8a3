import { decodeHTML } from "entities";

/**
 * Plain text out of the HTML fragments feeds and APIs put in their
 * descriptions (HN comments, RSS descriptions, Atom content). Meant for
 * search and embedding input, not for display: block boundaries become line
 * breaks, everything else of the markup goes, entities are decoded once.
 */
export function htmlToText(html: string): string {
  const text = html
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
