import { join } from "node:path";
import { htmlToText } from "../../../adapters/sources/_html_text.ts";
import { FIXTURES, fixturesMissing } from "../../_fixtures_dir.ts";

/** Readability's test pages in the shared fixtures (read where they are, never copied). */
export const HTML_FIXTURES = join(FIXTURES, "html");

/** The pages' directory names; none when the fixtures are missing (their tests are ignored). */
export const PAGES: string[] = fixturesMissing !== undefined
  ? []
  : [...Deno.readDirSync(HTML_FIXTURES)]
    .filter((e) => e.isDirectory)
    .map((e) => e.name)
    .sort();

export interface ExpectedPage {
  source: Uint8Array;
  /** expected-metadata.json: title, byline, excerpt, siteName, lang, publishedTime, ... */
  meta: Record<string, string | null>;
  /** The text of expected.html, as the source turns article HTML into text. */
  text: string;
}

export function expectedPage(page: string): ExpectedPage {
  const dir = join(HTML_FIXTURES, page);
  return {
    source: Deno.readFileSync(join(dir, "source.html")),
    meta: JSON.parse(Deno.readTextFileSync(join(dir, "expected-metadata.json"))),
    text: htmlToText(Deno.readTextFileSync(join(dir, "expected.html"))),
  };
}

/** Words of a text: runs of letters and digits, lower-cased (a run of Han characters is one). */
export function words(text: string): string[] {
  return text.toLowerCase().normalize("NFKC").match(/[\p{L}\p{N}]+/gu) ?? [];
}

/**
 * How far two texts hold the same words: the Dice coefficient of their word
 * multisets, 2·|A∩B| / (|A|+|B|). 1 is the same words as often, in any
 * order; a missing paragraph or added boilerplate lowers it in proportion.
 */
export function wordOverlap(a: string, b: string): number {
  const wa = words(a), wb = words(b);
  const count = new Map<string, number>();
  for (const w of wb) count.set(w, (count.get(w) ?? 0) + 1);
  let common = 0;
  for (const w of wa) {
    const n = count.get(w) ?? 0;
    if (n > 0) {
      common++;
      count.set(w, n - 1);
    }
  }
  return wa.length + wb.length === 0 ? 1 : (2 * common) / (wa.length + wb.length);
}
