import Parser from "rss-parser";
import type { RawItem } from "../../engine/item.ts";
import { atomXhtmlBodies } from "./_atom_xhtml.ts";
import { decodeXml } from "./_decode_xml.ts";
import { decodeEntities, htmlToText, oneLine } from "./_html_text.ts";
import { isoDate } from "./_parse_date.ts";

export interface ParseFeedOptions {
  /** Names the document in errors: a path or a URL. */
  name: string;
  /** Resolves relative links; else the feed's own absolute link is used. */
  baseUrl?: string;
  /** Charset from an HTTP Content-Type, used when the document states none. */
  charset?: string;
}

/** rss-parser's item plus the fields asked of it below. */
type FeedEntry = Parser.Item & Record<string, unknown>;

/** Root elements of the feed formats rss-parser reads: RSS 0.9x/2.0, RSS 1.0 (RDF), Atom. */
const FEED_ROOTS = new Set(["rss", "rdf:RDF", "feed"]);

/**
 * Parses an RSS 2.0, RSS 1.0 (RDF) or Atom document into raw items, one per
 * entry, in document order. Entries missing a title or link are kept: the
 * Validator rejects them with a reason. Throws `<name>: not an RSS or Atom
 * feed` for anything else, so an HTML page where a feed was expected is an
 * error and not a quiet empty poll.
 *
 * @example
 * ```ts
 * import { parseFeed } from "./feed_source.ts";
 * const xml = `<rss version="2.0"><channel><title>t</title>
 *   <item><title>Hello &amp; welcome</title><link>/a</link></item></channel></rss>`;
 * const [item] = await parseFeed(xml, { name: "inline", baseUrl: "https://example.com/feed" });
 * if (item.url !== "https://example.com/a") throw new Error(item.url);
 * ```
 */
export async function parseFeed(
  doc: Uint8Array | string,
  options: ParseFeedOptions,
): Promise<RawItem[]> {
  const xml = typeof doc === "string"
    ? doc.replace(/^\uFEFF/, "")
    : decodeXml(doc, options.charset);
  const root = rootElement(xml);
  if (!root || !FEED_ROOTS.has(root)) {
    throw new Error(
      `${options.name}: not an RSS or Atom feed (${
        root ? `root element <${root}>` : "no XML root element"
      })`,
    );
  }
  let feed: Parser.Output<FeedEntry>;
  try {
    feed = await newParser().parseString(xml);
  } catch (err) {
    throw new Error(
      `${options.name}: not an RSS or Atom feed (${
        oneLine(String((err as Error).message ?? err))
      })`,
      {
        cause: err,
      },
    );
  }
  const base = options.baseUrl ?? absoluteOrUndefined(feed.link) ??
    absoluteOrUndefined(feed.feedUrl);
  const items = feed.items.map((entry) => toRawItem(entry, base));
  if (root === "feed") useXhtmlText(items, atomXhtmlBodies(xml));
  return items;
}

/** Replaces the text of entries whose content is xhtml; skipped if the entries do not line up. */
function useXhtmlText(items: RawItem[], bodies: (string | undefined)[]): void {
  if (bodies.length !== items.length) return;
  bodies.forEach((body, i) => {
    const text = body === undefined ? undefined : htmlToText(body);
    if (text) items[i].text = text;
  });
}

function newParser(): Parser<Record<string, unknown>, FeedEntry> {
  const parser = new Parser<Record<string, unknown>, FeedEntry>({
    defaultRSS: 2,
    customFields: { item: [["category", "categoryList", { keepArray: true }]] },
  });
  tolerateBadAtomDates(parser);
  return parser;
}

/**
 * rss-parser 3.13 calls `new Date(published).toISOString()` on Atom entries,
 * which throws on an unreadable date and fails the whole feed. Retry such an
 * entry without its dates so that one bad date costs the item its date only.
 */
function tolerateBadAtomDates(parser: object): void {
  const p = parser as { parseItemAtom?: (entry: Record<string, unknown>) => FeedEntry };
  const original = p.parseItemAtom?.bind(parser);
  if (!original) return;
  p.parseItemAtom = (entry) => {
    try {
      return original(entry);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      const { published: _p, updated: _u, ...rest } = entry;
      return original(rest);
    }
  };
}

function toRawItem(entry: FeedEntry, base: string | undefined): RawItem {
  const item: RawItem = {};
  const title = str(entry.title);
  if (title !== undefined) item.title = oneLine(decodeEntities(title)) || undefined;
  const link = str(entry.link)?.trim();
  if (link) item.url = resolve(link, base);
  const html = str(entry["content:encoded"]) ?? str(entry.content) ?? str(entry.summary);
  if (html !== undefined) item.text = htmlToText(html) || undefined;
  const author = str(entry.creator) ?? str(entry.author) ?? str(
    (entry.itunes as Record<string, unknown> | undefined)?.author,
  );
  if (author) item.author = personName(author);
  item.publishedAt = isoDate(entry.pubDate) ?? isoDate(entry.date) ?? isoDate(entry.isoDate);
  item.guid = str(entry.guid) ?? str(entry.id) ?? str(entry["rdf:about"]);
  const tags = categories(entry.categoryList);
  if (tags.length) item.tags = tags;
  for (const k of Object.keys(item)) if (item[k] === undefined) delete item[k];
  return item;
}

/** The name of the document's first element, after the prolog. */
function rootElement(xml: string): string | undefined {
  let at = 0;
  for (;;) {
    while (at < xml.length && /\s/.test(xml[at])) at++;
    if (xml.startsWith("<?", at)) at = skipPast(xml, at, "?>");
    else if (xml.startsWith("<!--", at)) at = skipPast(xml, at, "-->");
    else if (xml.startsWith("<!", at)) at = skipDoctype(xml, at);
    else break;
    if (at < 0) return undefined;
  }
  return /^<([A-Za-z_][\w.:-]*)/.exec(xml.slice(at, at + 200))?.[1];
}

function skipPast(xml: string, from: number, end: string): number {
  const i = xml.indexOf(end, from);
  return i < 0 ? -1 : i + end.length;
}

/** A DOCTYPE may hold an internal subset in brackets, with '>' inside it. */
function skipDoctype(xml: string, from: number): number {
  const close = xml.indexOf(">", from);
  const open = xml.indexOf("[", from);
  if (open >= 0 && open < close) {
    const end = xml.indexOf("]", open);
    return end < 0 ? -1 : skipPast(xml, end, ">");
  }
  return close < 0 ? -1 : close + 1;
}

function str(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { _?: unknown })._ === "string") {
    return (v as { _: string })._;
  }
  return undefined;
}

/** Categories come as text (RSS), `{_: text}` (RSS with domain) or `{$: {term}}` (Atom). */
function categories(raw: unknown): string[] {
  if (!Array.isArray(raw)) return [];
  const out = new Set<string>();
  for (const c of raw) {
    const attrs = (c as { $?: Record<string, unknown> } | undefined)?.$;
    const name = str(c) ?? str(attrs?.term) ?? str(attrs?.label);
    const tag = name === undefined ? "" : oneLine(decodeEntities(name));
    if (tag) out.add(tag);
  }
  return [...out];
}

/** RSS `author` is an e-mail address, often "jo@example.com (Jo Doe)": keep the name. */
function personName(author: string): string {
  const a = oneLine(decodeEntities(author));
  return /^\S+@\S+\s+\((.+)\)$/.exec(a)?.[1].trim() || a;
}

function resolve(link: string, base: string | undefined): string {
  try {
    return new URL(link, base).href;
  } catch {
    return link; // Relative with no base: left as it is; the Validator decides.
  }
}

function absoluteOrUndefined(link: string | undefined): string | undefined {
  if (!link) return undefined;
  try {
    const u = new URL(link.trim());
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : undefined;
  } catch {
    return undefined;
  }
}
