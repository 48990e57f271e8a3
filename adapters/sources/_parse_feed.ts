import type Parser from "rss-parser";
import type { RawItem } from "../../engine/item.ts";
import { atomBases, type AtomXhtml, atomXhtml } from "./_atom_xhtml.ts";
import { decodeXmlWithEvidence } from "./_decode_xml.ts";
import { gzipProblem } from "./_gzip_body.ts";
import { decodeEntities, htmlToText, oneLine } from "./_html_text.ts";
import { isoDate } from "./_parse_date.ts";

export interface ParseFeedOptions {
  /** Names the document in errors: a path or a URL. */
  name: string;
  /** Resolves relative links; else the feed's own absolute link is used. */
  baseUrl?: string;
  /** Charset from an HTTP Content-Type, used when the document states none. */
  charset?: string;
  /** Charset from the flow file: wins over BOM, declaration and HTTP. */
  forceCharset?: string;
  /**
   * Told of what was read but may be wrong: an encoding guessed, dates that
   * could not be read, XML that was not well-formed. Each message starts
   * with `name` and is about one document. Default: dropped.
   */
  onWarning?: (message: string) => void;
  /**
   * Told when the document lost items to be read at all: items dropped
   * around faults, or its end cut off after the last whole item (a body
   * broken off mid-way). A poller must not take its validators (ETag,
   * Last-Modified) for the whole feed then, or every later poll is answered
   * 304 and the lost items never come.
   */
  onLoss?: () => void;
}

/** rss-parser's item plus the fields asked of it below. */
type FeedEntry = Parser.Item & Record<string, unknown>;

/** An absolute http(s) URL's start. */
const ABSOLUTE = /^https?:\/\//i;

/** Root elements of the feed formats rss-parser reads: RSS 0.9x/2.0, RSS 1.0 (RDF), Atom. */
const FEED_ROOTS = new Set(["rss", "rdf:RDF", "feed"]);

/**
 * Parses an RSS 2.0, RSS 1.0 (RDF) or Atom document into raw items, one per
 * entry, in document order. Entries missing a title or link are kept: the
 * Validator rejects them with a reason. Throws `<name>: not an RSS or Atom
 * feed` for anything else, so an HTML page where a feed was expected is an
 * error and not a quiet empty poll. A feed that is not well-formed XML (a
 * bare `&` in a link) is read leniently and keeps what can be read; the
 * warning names the line and the fault (see readLeniently).
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
  const warn = (message: string) => options.onWarning?.(`${options.name}: ${message}`);
  const gzip = gzipProblem(doc);
  if (gzip) throw new Error(`${options.name}: ${gzip}`);
  let xml: string;
  if (typeof doc === "string") xml = doc.replace(/^\uFEFF/, "");
  else {
    const decoded = decodeXmlWithEvidence(doc, {
      httpCharset: options.charset,
      forced: options.forceCharset,
    });
    if (decoded.warning) warn(decoded.warning);
    xml = decoded.text;
  }
  const root = rootElement(xml);
  if (!root || !FEED_ROOTS.has(root)) {
    throw new Error(
      `${options.name}: not an RSS or Atom feed (${
        root ? `root element <${root}>` : "no XML root element"
      })`,
    );
  }
  // rss-parser fails the whole feed on a link with no attributes ("reading 'rel'"), which was
  // said as XML not well-formed: an empty one names nothing and goes; one holding its URL as
  // text, RSS's way, is given it as its href.
  if (root === "feed") xml = xml.replace(BARE_LINK, (_, text: string) => asHref(text));
  // An <rss> with no <channel> holds no item; rss-parser fails on it with a TypeError.
  if (root === "rss" && !/<channel[\s>/]/.test(xml)) {
    throw new Error(`${options.name}: an <rss> feed with no <channel>: there is nothing to read`);
  }
  const read = await readLeniently(xml, root, options.name, warn);
  if (read.lost) options.onLoss?.();
  const feed = read.feed;
  xml = read.xml;
  const base = withoutUserinfo(
    options.baseUrl ?? absoluteOrUndefined(feed.link) ?? absoluteOrUndefined(feed.feedUrl),
  );
  const dates = { unread: 0, first: "" };
  // Atom's xml:base, per entry; skipped if the entries do not line up, as useXhtml is.
  const bases = root === "feed" ? atomBases(xml, base) : [];
  const lined = bases.length === feed.items.length;
  // An Atom entry without <author> has the feed's (RFC 4287 4.2.1).
  const feedAuthor = root === "feed"
    ? atomPersonName((feed as { author?: unknown }).author)
    : undefined;
  const items = feed.items.map((entry, i) =>
    toRawItem(entry, lined ? bases[i] : base, dates, feedAuthor)
  );
  if (root === "feed") useXhtml(items, atomXhtml(xml));
  const relative = base === undefined
    ? items.filter((item) => item.url !== undefined && !ABSOLUTE.test(item.url))
    : [];
  if (relative.length) {
    // Else each goes to dead letters as "not an absolute http(s) URL", with no word of the fix.
    warn(
      `${relative.length} of ${items.length} item links are relative (first: ${
        JSON.stringify(relative[0].url!.slice(0, 80))
      }) and the feed names no absolute address of its own to resolve them against: give the ` +
        "source the site's address as baseUrl (baseUrl: https://example.com/)",
    );
  }
  if (dates.unread) {
    warn(
      `${dates.unread} of ${items.length} item dates could not be read (first: ${
        JSON.stringify(dates.first.slice(0, 80))
      }); those items go on without publishedAt`,
    );
  }
  return items;
}

/** Takes the title and text of entries whose title or content is xhtml; skipped if the entries do not line up. */
function useXhtml(items: RawItem[], parts: AtomXhtml[]): void {
  if (parts.length !== items.length) return;
  parts.forEach(({ title, body }, i) => {
    const heading = title === undefined ? undefined : oneLine(htmlToText(title));
    if (heading) items[i].title = heading;
    const text = body === undefined ? undefined : htmlToText(body);
    if (text) items[i].text = text;
  });
}

/**
 * rss-parser (with xml2js) is loaded on the first feed read, so a flow
 * without a feed source does not carry it.
 */
async function newParser(): Promise<Parser<Record<string, unknown>, FeedEntry>> {
  const { default: RssParser } = await import("rss-parser");
  const parser = new RssParser<Record<string, unknown>, FeedEntry>({
    defaultRSS: 2,
    customFields: {
      feed: ["author"],
      item: [
        ["category", "categoryList", { keepArray: true }],
        // An RDF feed's categories.
        ["dc:subject", "subjectList", { keepArray: true }],
        // Feedburner's <link> is its own redirect (feeds.example.com/~r/…); this is the article.
        ["feedburner:origLink", "origLink"],
        // An RDF feed's enclosure (<enc:enclosure resource="…" type="…"/>, RSS 1.0's enc module).
        ["enc:enclosure", "encEnclosure"],
      ],
    },
  });
  tolerateBadAtomDates(parser);
  keepGuidPermaLink(parser);
  return parser;
}

/**
 * rss-parser 3.13 calls `new Date(published).toISOString()` on Atom entries,
 * which throws on an unreadable date and fails the whole feed. Retry such an
 * entry without its dates and hand the date as written to isoDate, which
 * reads more forms (non-English names) or counts it as unreadable.
 */
function tolerateBadAtomDates(parser: object): void {
  const p = parser as { parseItemAtom?: (entry: Record<string, unknown>) => FeedEntry };
  const original = p.parseItemAtom?.bind(parser);
  if (!original) return;
  p.parseItemAtom = (entry) => atomLinkAndTitle(entry, parseAtomItem(original, entry));
}

/**
 * rss-parser 3.13 drops a guid's `isPermaLink` attribute; it says whether
 * the guid may stand in for a missing link, so it is kept as
 * `guidIsPermaLink` (false only when the feed says so: RSS 2.0's default).
 */
function keepGuidPermaLink(parser: object): void {
  const p = parser as {
    parseItemRss?: (item: Record<string, unknown>, fields: unknown) => FeedEntry;
  };
  const original = p.parseItemRss?.bind(parser);
  if (!original) return;
  p.parseItemRss = (xmlItem, fields) => {
    const item = original(xmlItem, fields);
    const guid = Array.isArray(xmlItem.guid) ? xmlItem.guid[0] : undefined;
    const said = (guid as { $?: { isPermaLink?: unknown } } | undefined)?.$?.isPermaLink;
    if (typeof said === "string" && said.trim().toLowerCase() === "false") {
      item.guidIsPermaLink = false;
    }
    return item;
  };
}

/**
 * What rss-parser 3.13 reads wrong in an Atom entry: it takes the first
 * link unless one says rel="alternate", though a link without rel is the
 * alternate too (RFC 4287 4.2.7.2), so `<link rel="edit"/><link href=…/>`
 * gave the edit URL; and a `type="html"` title is HTML, which it passes on
 * as markup (`Using the <code>&lt;div&gt;</code> element`). The entry's
 * text title goes in `titleText`. (An xhtml title is read from the source
 * in parseFeed: xml2js loses the order of its words.)
 */
function atomLinkAndTitle(entry: Record<string, unknown>, item: FeedEntry): FeedEntry {
  type Link = { $?: { href?: unknown; rel?: unknown } };
  const links = Array.isArray(entry.link) ? entry.link as Link[] : [];
  const alternate = links.find((l) =>
    typeof l?.$?.href === "string" && (l.$.rel ?? "alternate") === "alternate"
  );
  if (alternate) item.link = alternate.$!.href as string;
  const title = Array.isArray(entry.title) ? entry.title[0] : undefined;
  const typed = title as { _?: unknown; $?: { type?: unknown } } | undefined;
  if (typed?.$?.type === "html" && typeof typed._ === "string") {
    item.titleText = htmlToText(typed._);
  } else if (
    typeof title === "string" || (typed?.$?.type === "text" && typeof typed._ === "string")
  ) {
    // Atom's text title is text, whatever it looks like: no markup to read.
    item.titleText = typeof title === "string" ? title : typed!._ as string;
  }
  return item;
}

/** rss-parser's parseItemAtom, again without the dates when they throw (see tolerateBadAtomDates). */
function parseAtomItem(
  original: (entry: Record<string, unknown>) => FeedEntry,
  entry: Record<string, unknown>,
): FeedEntry {
  try {
    return original(entry);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    const { published, updated, ...rest } = entry;
    const item = original(rest);
    const written = [published, updated].map((d) => str(Array.isArray(d) ? d[0] : d))
      .find((d) => d?.trim());
    if (written !== undefined) item.pubDate = written;
    return item;
  }
}

function toRawItem(
  entry: FeedEntry,
  base: string | undefined,
  dates: { unread: number; first: string },
  feedAuthor?: string,
): RawItem {
  const item: RawItem = {};
  const title = str(entry.titleText) ?? titleText(str(entry.title));
  if (title !== undefined) item.title = oneLine(title) || undefined;
  // RSS 2.0: a guid is the item's permalink unless it says otherwise, and a
  // podcast episode may have nothing but its enclosure: without a link,
  // either is the item's url (an absolute http(s) one only).
  const enclosure = enclosureOf(entry.enclosure, base) ??
    enclosureOf(encEnclosure(entry.encEnclosure), base);
  if (enclosure) item.enclosure = enclosure;
  const permalink = entry.guidIsPermaLink === false ? undefined : webUrl(str(entry.guid));
  const link = webUrl(str(entry.origLink)) || str(entry.link)?.trim() || permalink ||
    enclosure?.url;
  if (link) item.url = resolve(link, base);
  const html = str(entry["content:encoded"]) ?? str(entry.content) ?? str(entry.summary);
  if (html !== undefined) item.text = htmlToText(html) || undefined;
  const author = str(entry.creator) ?? str(entry.author) ?? str(
    (entry.itunes as Record<string, unknown> | undefined)?.author,
  );
  if (author) item.author = personName(author);
  else if (feedAuthor) item.author = feedAuthor;
  item.publishedAt = isoDate(entry.pubDate) ?? isoDate(entry.date) ?? isoDate(entry.isoDate);
  const written = [entry.pubDate, entry.date].map(str).find((d) => d?.trim());
  if (item.publishedAt === undefined && written !== undefined) {
    if (!dates.unread) dates.first = written.trim();
    dates.unread++;
  }
  item.guid = str(entry.guid) ?? str(entry.id) ?? str(entry["rdf:about"]);
  const tags = categories([
    ...(Array.isArray(entry.categoryList) ? entry.categoryList : []),
    ...(Array.isArray(entry.subjectList) ? entry.subjectList : []),
  ]);
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

/**
 * An RSS title as text. Its entities were decoded by the XML parser and
 * may have been encoded twice (`&amp;amp;`); inline markup in pairs
 * (`1930ft<sup>2</sup>`, `<b>Breaking</b>`) is read as markup and leaves
 * its words, innermost first. Anything else that looks like a tag (a
 * title about `<div>`, or `<em>` named in a sentence) is kept as written.
 */
function titleText(title: string | undefined): string | undefined {
  if (title === undefined) return undefined;
  let text = decodeEntities(title);
  for (let i = 0; i < 8 && INLINE_PAIR.test(text); i++) text = text.replace(INLINE_PAIRS, "$2");
  return text;
}

const INLINE = "a|abbr|b|cite|code|em|i|mark|q|s|small|span|strong|sub|sup|u";
const INLINE_PAIR = new RegExp(`<(${INLINE})\\b[^<>]*>([^<]*)<\\/\\1\\s*>`, "i");
const INLINE_PAIRS = new RegExp(INLINE_PAIR.source, "gi");

/** An absolute http(s) URL, or undefined. */
function webUrl(text: string | undefined): string | undefined {
  const t = text?.trim();
  return t && /^https?:\/\/[^\s]+$/i.test(t) ? t : undefined;
}

/** An RSS enclosure (`{url, type, length}`, rss-parser's shape) with its url made absolute. */
function enclosureOf(
  v: unknown,
  base: string | undefined,
): { url: string; type?: string; length?: number } | undefined {
  const e = v as { url?: unknown; type?: unknown; length?: unknown } | undefined;
  const url = typeof e?.url === "string" ? e.url.trim() : "";
  if (!url) return undefined;
  const length = Number(e!.length);
  return {
    url: resolve(url, base),
    ...(typeof e!.type === "string" && e!.type ? { type: e!.type } : {}),
    ...(Number.isFinite(length) && length > 0 ? { length } : {}),
  };
}

/**
 * RSS 1.0's `<enc:enclosure>` in the shape of RSS 2.0's: its attributes
 * (`resource`, or `rdf:resource` as the module writes it, `type`, `length`,
 * each maybe `enc:`-prefixed) as `{url, type, length}`.
 */
function encEnclosure(v: unknown): { url?: unknown; type?: unknown; length?: unknown } | undefined {
  const a = (v as { $?: Record<string, unknown> } | undefined)?.$;
  if (!a) return undefined;
  return {
    url: a.resource ?? a["rdf:resource"] ?? a.url,
    type: a.type ?? a["enc:type"],
    length: a.length ?? a["enc:length"],
  };
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

/** An Atom person construct as xml2js reads it (`[{ name: ["Jo"] }]`): its name, if any. */
function atomPersonName(raw: unknown): string | undefined {
  const person = Array.isArray(raw) ? raw[0] : raw;
  const name = (person as { name?: unknown } | undefined)?.name;
  const text = str(Array.isArray(name) ? name[0] : name);
  return text === undefined ? undefined : oneLine(decodeEntities(text)) || undefined;
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

/** Parses (rss-parser over xml2js, strict sax) or throws the parser's error. */
async function parseStrict(xml: string): Promise<Parser.Output<FeedEntry>> {
  return await (await newParser()).parseString(xml);
}

/**
 * An Atom `<link>` with no attribute: self-closed, or its text (perhaps
 * none, perhaps in CDATA or beside comments) up to `</link>`.
 */
const BARE_LINK = /<link\s*(?:\/>|>((?:[^<]|<!\[CDATA\[[\s\S]*?\]\]>|<!--[\s\S]*?-->)*)<\/link>)/g;

/** A bare link's text as an Atom link, or nothing when it holds none. */
function asHref(text: string | undefined): string {
  const url = (text ?? "").replace(/<!--[\s\S]*?-->/g, "")
    .replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, (_, raw: string) => escapeXml(raw)).trim();
  return url === "" ? "" : `<link href="${url.replaceAll('"', "&quot;")}"/>`;
}

/** Text as XML writes it outside CDATA. */
function escapeXml(raw: string): string {
  return raw.replaceAll("&", "&amp;").replaceAll("<", "&lt;");
}

/** Most faults a lenient pass mends: items dropped one at a time before giving up. */
const MAX_DROPPED_ITEMS = 50;

/**
 * Reads a feed that the strict parser refuses, keeping what can be read:
 * first bare `&` (the commonest fault: a query string pasted into a link)
 * and `<` are escaped; then, while the parser still fails, the item or entry
 * holding the fault is dropped, or, when the fault lies outside any item,
 * the document is cut after the last whole item and its root closed. One
 * warning says where the first fault was (line, what) and what the
 * repair cost. Throws, naming the line, when not even that reads.
 */
async function readLeniently(
  xml: string,
  root: string,
  name: string,
  warn: (message: string) => void,
): Promise<{ feed: Parser.Output<FeedEntry>; xml: string; lost: boolean }> {
  let first: Fault;
  try {
    return { feed: await parseStrict(xml), xml, lost: false };
  } catch (err) {
    first = faultOf(err, xml);
  }
  const repairs: string[] = [];
  let doc = xml;
  const escaped = escapeBareMarkup(doc);
  doc = escaped.xml;
  if (escaped.amp) repairs.push(`escaped ${escaped.amp} bare "&"`);
  if (escaped.lt) repairs.push(`escaped ${escaped.lt} bare "<"`);
  // Control characters XML forbids: sax lets them through, but rss-parser's
  // xml2js builder (Atom xhtml content) throws on them.
  const controls = doc.match(XML_FORBIDDEN)?.length ?? 0;
  if (controls) {
    doc = doc.replace(XML_FORBIDDEN, "");
    repairs.push(`removed ${controls} control character(s)`);
  }
  let dropped = 0;
  let cut = false;
  for (;;) {
    let fault: Fault;
    try {
      const feed = await parseStrict(doc);
      if (dropped) repairs.push(`dropped ${dropped} unreadable item(s)`);
      if (cut) repairs.push("dropped what follows the last whole item before the fault");
      warn(
        `not well-formed XML${at(first)}: ${first.reason}; read leniently (${
          repairs.join(", ")
        }), ${feed.items.length} item(s) kept`,
      );
      return { feed, xml: doc, lost: dropped > 0 || cut };
    } catch (err) {
      fault = faultOf(err, doc);
    }
    const span = cut || dropped >= MAX_DROPPED_ITEMS ? undefined : itemAround(doc, fault.offset);
    if (span) {
      doc = doc.slice(0, span.start) + doc.slice(span.end);
      dropped++;
      continue;
    }
    const end = cut ? -1 : lastItemEnd(doc, fault.offset);
    if (end < 0) {
      const last = fault.reason === first.reason && fault.line === first.line
        ? ""
        : `; after repairs (${repairs.join(", ") || "none"})${at(fault)}: ${fault.reason}`;
      throw new Error(
        `${name}: malformed <${root}> feed, not well-formed XML${
          at(first)
        }: ${first.reason}${last}`,
        { cause: first.error },
      );
    }
    doc = doc.slice(0, end) + (root === "rss" ? "</channel></rss>" : `</${root}>`);
    cut = true;
  }
}

/** Where and why the parser stopped. */
interface Fault {
  /** 1-based; absent when the parser did not say. */
  line?: number;
  /** Index into the document of the character the parser stopped at. */
  offset: number;
  reason: string;
  error: unknown;
}

function at(fault: Fault): string {
  return fault.line === undefined ? "" : ` at line ${fault.line}`;
}

/** Reads sax's "reason\nLine: 3\nColumn: 50\nChar: =" (line 0-based, column past the char). */
function faultOf(err: unknown, xml: string): Fault {
  const message = String((err as Error)?.message ?? err);
  const m = /^([\s\S]*?)\nLine: (\d+)\nColumn: (\d+)(?:\nChar: ([\s\S]*))?$/.exec(message);
  if (!m) {
    // Not sax's: rss-parser's xml2js builder refusing a control character, say.
    const bad = xml.search(XML_FORBIDDEN);
    if (bad < 0) return { offset: xml.length, reason: oneLine(message), error: err };
    const code = xml.charCodeAt(bad).toString(16).toUpperCase().padStart(4, "0");
    return {
      line: xml.slice(0, bad).split("\n").length,
      offset: bad,
      reason: `control character U+${code}, which XML forbids`,
      error: err,
    };
  }
  const line = Number(m[2]);
  let start = 0;
  for (let l = 0; l < line && start >= 0; l++) {
    const nl = xml.indexOf("\n", start);
    start = nl < 0 ? -1 : nl + 1;
  }
  if (start < 0) start = xml.length;
  const offset = start >= xml.length
    ? xml.length
    : Math.min(xml.length, start + Math.max(0, Number(m[3]) - 1));
  let reason = oneLine(m[1]).replace(/^./, (c) => c.toLowerCase());
  // What the line holds up to the fault: enough to find it in a long line.
  const near = oneLine(xml.slice(Math.max(start, offset - 30), offset + 1)).trim();
  if (near) reason += ` near ${JSON.stringify(near)}`;
  if (/entity/i.test(reason) && xml.lastIndexOf("&", offset) > offset - 40) {
    reason += ` (a bare "&" must be written &amp;)`;
  }
  return { line: line + 1, offset, reason, error: err };
}

/**
 * CDATA and comments (kept as they are), an `&` that starts no entity
 * reference, and a `<` that starts no tag, comment, CDATA or instruction
 * (`1 < 2`, `a <= b`).
 */
const BARE_MARKUP =
  /<!\[CDATA\[[\s\S]*?\]\]>|<!--[\s\S]*?-->|&(?!(?:[A-Za-z_][\w.-]*|#\d+|#x[0-9A-Fa-f]+);)|<(?![A-Za-z_:/!?\u00C0-\uFFFF])/g;

/** Escapes every bare `&` and `<`, outside CDATA and comments. */
function escapeBareMarkup(xml: string): { xml: string; amp: number; lt: number } {
  let amp = 0;
  let lt = 0;
  const out = xml.replace(BARE_MARKUP, (m) => {
    if (m === "&") {
      amp++;
      return "&amp;";
    }
    if (m === "<") {
      lt++;
      return "&lt;";
    }
    return m;
  });
  return { xml: out, amp, lt };
}

// deno-lint-ignore no-control-regex -- these are the characters looked for
const XML_FORBIDDEN = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/g;

const ITEM_OPEN = /<(item|entry)[\s>]/g;

/** The whole `<item>`/`<entry>` element that holds `offset`, if any. */
function itemAround(xml: string, offset: number): { start: number; end: number } | undefined {
  let open: RegExpExecArray | undefined;
  ITEM_OPEN.lastIndex = 0;
  for (let m; (m = ITEM_OPEN.exec(xml)) && m.index <= offset;) open = m;
  if (!open) return undefined;
  const close = `</${open[1]}>`;
  const at = xml.indexOf(close, open.index);
  if (at < 0 || at + close.length < offset) return undefined;
  return { start: open.index, end: at + close.length };
}

/** The index just past the last `</item>`/`</entry>` before `offset`, or -1. */
function lastItemEnd(xml: string, offset: number): number {
  const head = xml.slice(0, offset);
  const item = head.lastIndexOf("</item>");
  const entry = head.lastIndexOf("</entry>");
  return Math.max(item < 0 ? -1 : item + 7, entry < 0 ? -1 : entry + 8);
}

/**
 * A feed fetched from `https://user:pw@host/feed` has that as its final URL:
 * links resolved against it would carry the password into every item.
 */
function withoutUserinfo(base: string | undefined): string | undefined {
  if (base === undefined) return undefined;
  try {
    const u = new URL(base);
    if (!u.username && !u.password) return base;
    u.username = "";
    u.password = "";
    return u.href;
  } catch {
    return base;
  }
}
