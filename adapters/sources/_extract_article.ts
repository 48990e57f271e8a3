import type { Readability } from "@mozilla/readability";
import type { RawItem } from "../../engine/item.ts";
import { htmlToText, oneLine } from "./_html_text.ts";
import { isoDate } from "./_parse_date.ts";
import { withoutTracking } from "../../engine/canonical_url.ts";
import { withoutSecretParams } from "../../engine/mask_url.ts";

/**
 * The article of an HTML page, by Mozilla's Readability (the Firefox Reader
 * View code) over a linkedom DOM.
 *
 * Why linkedom: over the 8 Readability fixture pages the three DOMs tried
 * gave the same extraction (title, byline, excerpt, siteName, lang,
 * publishedTime and dir equal to Readability's expected metadata on all 8;
 * text word overlap with expected.html identical for all three), while
 * linkedom extracted 12.0 pages/s (2.15 MB/s), happy-dom 21.0.4 3.3 pages/s
 * (0.60 MB/s) and jsdom 31.0.1 1.8 pages/s (0.33 MB/s): parse plus
 * Readability, mean of 5 runs per page, one DOM after the other on the same
 * shared 2-core machine. linkedom is also the lightest to install and keeps
 * no window, timers or network of its own. bench/html.ts measures it again.
 */

/** What this code reads of a DOM element (no DOM types in Deno's default lib). */
export interface HtmlElement {
  getAttribute(name: string): string | null;
  querySelector(selectors: string): HtmlElement | null;
}

/**
 * Elements nested deeper than this make a page that is not read. Readability's
 * time grows with the square of the nesting: a 63 KB page of 20,000
 * unclosed <b> took 9.4 s, 100,000 nested <div> 278 s, with the process's
 * event loop held all along (every source, stage, heartbeat and metrics
 * scrape). Real articles nest a few dozen deep.
 */
export const MAX_DEPTH = 400;

/**
 * A page of more elements than this is not read either. Readability's time
 * grows with the element count even on a flat page: a 10 MB page of 145,636
 * paragraphs took 3.9 s to read and peaked at 767 MB (the reader gives up
 * on it after 0.16 s, at 299 MB); 12,711 `<div>`s of a link each (25,424
 * elements, under the cap) took 4.5 s, and twice as many 13 s. The 8
 * fixture pages hold 38 to 2,953 elements.
 */
export const MAX_ELEMENTS = 30_000;

/** A page nested too deep (MAX_DEPTH) or too large (MAX_ELEMENTS) to read: skipped, as a page with no article is. */
export class PageTooBigError extends Error {
  constructor(why: string) {
    super(`${why}: not read, as extracting its article would hold the process for seconds or more`);
    this.name = "PageTooBigError";
  }
}

/**
 * Why `doc` is not to be read (an element nests deeper than `maxDepth`, or
 * it holds more than `maxElements`), else undefined: one walk of the tree.
 */
function tooBig(doc: HtmlDocument, maxDepth: number, maxElements: number): string | undefined {
  type Walked = { firstElementChild: Walked | null; nextElementSibling: Walked | null };
  const root = (doc as unknown as { documentElement: Walked | null }).documentElement;
  // Elements still to visit, each with its depth: an explicit stack, as the page may be deep.
  const stack: [Walked, number][] = root ? [[root, 1]] : [];
  let elements = 0;
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > maxDepth) return `its elements nest more than ${maxDepth} deep`;
    if (++elements > maxElements) return `it holds more than ${maxElements} elements`;
    for (let child = node.firstElementChild; child; child = child.nextElementSibling) {
      stack.push([child, depth + 1]);
    }
  }
  return undefined;
}

/** Readability failed on a page (threw): the page's fault or Readability's, not the source's. */
export class UnreadablePageError extends Error {
  constructor(cause: unknown) {
    super(`its article could not be read: ${(cause as Error)?.message ?? String(cause)}`, {
      cause,
    });
    this.name = "UnreadablePageError";
  }
}

/** `read()`, a call into Readability: what it throws is an UnreadablePageError. */
function byReader<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    throw new UnreadablePageError(error);
  }
}

/** A parsed page. Readability changes the document it reads: parse again to read it twice. */
export interface HtmlDocument {
  querySelector(selectors: string): HtmlElement | null;
  querySelectorAll(selectors: string): Iterable<HtmlElement>;
}

type ReadabilityDocument = ConstructorParameters<typeof Readability>[0];

/** linkedom, Readability and parse5, once loadDom imported them. */
let dom:
  | (typeof import("linkedom") & typeof import("@mozilla/readability") & {
    parse5: typeof import("parse5");
  })
  | undefined;

/**
 * Imports linkedom and Readability, once: parseHtml and extractArticle
 * need them loaded. They are imported when an html source first reads, not
 * when millrace starts, so a flow without one does not load them: they
 * are the largest of the packages only some flows need.
 */
export async function loadDom(): Promise<void> {
  dom ??= {
    ...await import("linkedom"),
    ...await import("@mozilla/readability"),
    parse5: await import("parse5"),
  };
}

/** Whether loadDom has run, so parseHtml can be called. */
export function domLoaded(): boolean {
  return dom !== undefined;
}

function loaded(): NonNullable<typeof dom> {
  if (dom === undefined) throw new Error("parseHtml and extractArticle need loadDom() first");
  return dom;
}

/**
 * Parses HTML into a DOM; never throws, as browsers never refuse a page. Needs loadDom.
 *
 * linkedom builds the tree as the tags come, not as HTML5 does: a page that
 * leaves out its optional `<html>`, `<head>` or `<body>` tags, as minifiers
 * write them, or has content after `</html>`, came out with an empty body
 * beside the content, which Readability threw on (`reading 'tagName'`) or
 * found no article in. Such a page (told by its tree: one `<html>` holding
 * only `<head>` and `<body>` is what a whole page gives) is parsed again
 * from parse5's serialisation of it, which builds the tree as browsers do.
 * Only then: it is a second parse (parse5 took about 1.2 times linkedom's time on the
 * fixture pages, by a throwaway script).
 */
export function parseHtml(html: string): HtmlDocument {
  const { DOMParser, parse5 } = loaded();
  const doc = new DOMParser().parseFromString(html, "text/html") as unknown as HtmlDocument;
  if (wellFormed(doc)) return doc;
  const normal = parse5.serialize(parse5.parse(html));
  return new DOMParser().parseFromString(normal, "text/html") as unknown as HtmlDocument;
}

/**
 * Whether linkedom's tree of `doc` holds its content in its body: an
 * `<html>` with a `<body>`, which holds elements unless there are none
 * outside it either. A script or an element after `</body>` or `</html>`
 * (common) beside a body that holds the page is well formed enough.
 */
function wellFormed(doc: HtmlDocument): boolean {
  type Node = {
    tagName: string;
    children: ArrayLike<Node>;
    firstElementChild: Node | null;
    nextElementSibling: Node | null;
  };
  const root = (doc as unknown as { documentElement: Node | null }).documentElement;
  if (root?.tagName !== "HTML") return false;
  let body: Node | undefined, outside = root.nextElementSibling !== null;
  for (let i = 0; i < root.children.length; i++) {
    const child = root.children[i];
    if (child.tagName === "BODY") body ??= child;
    else if (child.tagName !== "HEAD") outside = true;
  }
  return body !== undefined && (body.firstElementChild !== null || !outside);
}

/**
 * Where relative links of the page resolve: its `<base href>` resolved
 * against the page URL, else the page URL; undefined for a file with neither.
 */
export function baseUrlOf(doc: HtmlDocument, pageUrl: string | undefined): string | undefined {
  const href = doc.querySelector("base[href]")?.getAttribute("href")?.trim();
  if (href) return URL.parse(href, pageUrl)?.href ?? pageUrl;
  return pageUrl;
}

/** An http(s) URL of `href` resolved against `base`, without its fragment; else undefined. */
export function httpUrl(href: string, base: string | undefined): string | undefined {
  const u = URL.parse(href.trim(), base);
  if (!u || (u.protocol !== "http:" && u.protocol !== "https:")) return undefined;
  u.hash = "";
  return u.href;
}

/** Whether `url` is a site's root: path "/", no query. */
function isRoot(url: string): boolean {
  const u = URL.parse(url);
  return u !== null && u.pathname === "/" && u.search === "";
}

/** The page's `<link rel="canonical">`, resolved; undefined when absent or not http(s). */
export function canonicalLink(doc: HtmlDocument, base: string | undefined): string | undefined {
  for (const link of doc.querySelectorAll("link[rel][href]")) {
    const rel = (link.getAttribute("rel") ?? "").toLowerCase().split(/\s+/);
    if (rel.includes("canonical")) return httpUrl(link.getAttribute("href") ?? "", base);
  }
  return undefined;
}

/** The page's `og:url`, resolved; undefined when absent or not http(s). */
function ogUrl(doc: HtmlDocument, base: string | undefined): string | undefined {
  const content = doc.querySelector('meta[property="og:url"][content]')?.getAttribute("content");
  return content ? httpUrl(content, base) : undefined;
}

/**
 * Where pages say when they were published besides the two places
 * Readability reads (JSON-LD, `article:published_time`): nytimes'
 * `article:published`, microdata (Le Monde's `<time itemprop="datePublished">`),
 * heise's `<meta name="date">`, Dublin Core, and HTML5's old `<time pubdate>`.
 * One selector list: the first such element in the page that holds a
 * readable date wins.
 */
const PUBLISHED_AT = [
  'meta[property="article:published"]',
  'meta[itemprop="datePublished"]',
  'time[itemprop="datePublished"]',
  'meta[name="date"]',
  'meta[name="pubdate"]',
  'meta[name="publish-date"]',
  'meta[name="DC.date.issued"]',
  'meta[name="dc.date.issued"]',
  "time[pubdate]",
].join(", ");

/** The first date the page states it was published at (PUBLISHED_AT), as ISO 8601. */
function statedPublished(doc: HtmlDocument): string | undefined {
  for (const el of doc.querySelectorAll(PUBLISHED_AT)) {
    const at = isoDate(el.getAttribute("content") ?? el.getAttribute("datetime") ?? undefined);
    if (at) return at;
  }
  return undefined;
}

/**
 * The article of a parsed page as an item, or undefined when Readability
 * finds no readable article in it: when its isProbablyReaderable says no
 * (what hides Firefox's Reader View button: too little paragraph text)
 * or parse() returns null. The first matters: parse() returns its best
 * attempt for almost any page, so a list page or an error page taken for
 * an article would otherwise become an item of menu text. `url` is the page's canonical link when
 * it gives an http(s) one, else its og:url (but the site's root, for a page elsewhere), else `pageUrl` without
 * its tracking parameters and fragment; the item's id is its canonical URL's, so one article
 * reached by two links is one id. Consumes `doc`.
 *
 * Fields: title, text (the article's text, block boundaries kept as line
 * breaks), author (Readability's byline), publishedAt (ISO 8601: Readability's, else
 * what the page states in PUBLISHED_AT), lang
 * (the page's declared language), siteName, excerpt; absent when empty.
 * Needs loadDom.
 */
export function extractArticle(
  doc: HtmlDocument,
  pageUrl: string | undefined,
): RawItem | undefined {
  const base = baseUrlOf(doc, pageUrl);
  // As fetched, less its tracking parameters and fragment: the canonical spelling (no trailing
  // slash, sorted query) names another address on many sites, one robots.txt may refuse. The
  // item's id is the canonical URL's all the same, so both spellings are one story.
  const own = pageUrl === undefined ? undefined : withoutTracking(pageUrl);
  // Else its og:url, which sites set to the same (heise's pages give only that).
  // Either may repeat the address asked for, token and all: it stays out of the item.
  const named = canonicalLink(doc, base) ?? ogUrl(doc, base);
  const link = named === undefined ? undefined : withoutSecretParams(named);
  // Every page of some sites names the home page as canonical (a template's mistake): taken
  // at its word, all their articles would share the home page's id and be published as one.
  const url = link !== undefined && !(isRoot(link) && own !== undefined && !isRoot(own))
    ? link
    : own;
  const { isProbablyReaderable, Readability } = loaded();
  const page = doc as unknown as ReadabilityDocument;
  const why = tooBig(doc, MAX_DEPTH, MAX_ELEMENTS);
  if (why !== undefined) throw new PageTooBigError(why);
  if (!byReader(() => isProbablyReaderable(page))) return undefined;
  // Read before Readability, which consumes the document.
  const stated = statedPublished(doc);
  const article = byReader(() => new Readability(page).parse());
  if (!article) return undefined;
  const item: RawItem = {};
  const put = (field: string, value: string | null | undefined) => {
    if (value) item[field] = value;
  };
  put("title", oneLine(article.title ?? ""));
  put("url", url);
  put("text", htmlToText(article.content ?? ""));
  put("author", oneLine(article.byline ?? ""));
  put("publishedAt", isoDate(article.publishedTime) ?? stated);
  put("lang", article.lang?.trim());
  put("siteName", oneLine(article.siteName ?? ""));
  put("excerpt", oneLine(article.excerpt ?? ""));
  return item;
}
