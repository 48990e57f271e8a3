import { decodeXML } from "entities";
import { FIXTURES } from "../_fixtures_dir.ts";

/** A text from the shared fixtures and the language its publisher declares for it. */
export interface DeclaredText {
  /** ISO 639-1 code of the declared language (zh-TW is "zh"). */
  declared: string;
  /** Fixture file it comes from. */
  from: string;
  /** Title and text as the Enricher reads them (HTML still in, XML escaping undone). */
  title: string;
  text: string;
}

/** Feeds and the language each declares (heise's Atom feed declares none: it is German). */
const FEEDS: [file: string, declared: string, encoding: string][] = [
  ["feeds/rss-parser__guardian.rss", "en", "utf-8"],
  ["feeds/rss-parser__heise.atom", "de", "utf-8"],
  ["feeds/rss-parser__encoding.rss", "pt", "iso-8859-1"],
  ["feeds/rss-parser__craigslist.rss", "en", "utf-8"],
  ["feeds/rss-parser__rss-1.rss", "en", "utf-8"],
  ["feeds/feedparser__rss2sample.xml", "en", "utf-8"],
  ["feeds/feedparser__intertwingly.atom", "en", "utf-8"],
];

/** Readability's pages and the `lang` of their metadata; each paragraph is one text. */
const PAGES: [dir: string, declared: string][] = [
  ["html/bbc-1", "en"],
  ["html/nytimes-1", "en"],
  ["html/wikipedia", "en"],
  ["html/heise", "de"],
  ["html/lemonde-1", "fr"],
  ["html/pixnet", "zh"],
];

const unwrap = (s: string) => decodeXML(s.replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, "$1"));
const field = (entry: string, names: string) =>
  new RegExp(`<(${names})\\b[^>]*>([\\s\\S]*?)</\\1>`).exec(entry)?.[2] ?? "";

/**
 * Every feed item (title and description or content) and every paragraph of
 * 20 characters or more of the extracted pages, with its declared language.
 */
export async function declaredTexts(): Promise<DeclaredText[]> {
  const out: DeclaredText[] = [];
  for (const [file, declared, encoding] of FEEDS) {
    const bytes = await Deno.readFile(`${FIXTURES}/${file}`);
    const xml = new TextDecoder(encoding).decode(bytes);
    for (const [, entry] of xml.matchAll(/<(?:item|entry)\b[^>]*>([\s\S]*?)<\/(?:item|entry)>/g)) {
      out.push({
        declared,
        from: file,
        title: unwrap(field(entry, "title")),
        text: unwrap(field(entry, "description|content|summary")),
      });
    }
  }
  for (const [dir, declared] of PAGES) {
    const html = await Deno.readTextFile(`${FIXTURES}/${dir}/expected.html`);
    for (const [, p] of html.matchAll(/<p\b[^>]*>([\s\S]*?)<\/p>/g)) {
      if (p.replace(/<[^>]*>/g, "").trim().length >= 20) {
        out.push({ declared, from: dir, title: "", text: p });
      }
    }
  }
  return out;
}
