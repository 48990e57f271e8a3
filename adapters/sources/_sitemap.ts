/**
 * URL discovery from sitemaps (sitemaps.org): a `<urlset>` lists pages, a
 * `<sitemapindex>` lists more sitemaps. Kept apart from the `sitemap` source
 * so another source (an article fetcher) can walk a site's sitemap the same
 * way.
 *
 * A sitemap may hold 50,000 URLs in 50 MB, gzipped or not, so nothing here
 * holds a parsed document: the body is gunzipped, decoded and parsed in
 * chunks by a streaming XML parser (sax), and URLs leave in batches as they
 * are found. What one poll holds is one body (capped by `maxBytes`), one
 * batch, and the list of sitemaps still to read.
 */
import sax from "sax";
import type { HttpClient } from "../../engine/http.ts";
import { maskUrl, maskUrlsIn, withoutSecretParams } from "../../engine/mask_url.ts";
import { isoDate } from "./_parse_date.ts";

/** One page a sitemap lists. */
export interface SitemapUrl {
  /** The page's URL, resolved against the sitemap's; as written when it cannot be. */
  url: string;
  /** ISO 8601 of `<lastmod>`; absent when the entry has none or it cannot be read. */
  lastmod?: string;
}

export interface SitemapOptions {
  http: HttpClient;
  /** Deadline of each fetch, body included (ms). */
  timeout: number;
  /** Largest sitemap accepted, after gunzip (bytes); a larger one fails the walk. */
  maxBytes: number;
  /** Most sitemap documents read in one walk, the first included. */
  maxSitemaps: number;
  /** Most levels of sitemap indexes above a urlset (1: the URL is an index of urlsets). */
  maxDepth: number;
  /**
   * Only pages (and child sitemaps) whose lastmod is at or after this (ms)
   * are wanted; entries without a lastmod always are. Undefined: everything.
   */
  since?: number;
  /**
   * The mark of each sitemap document read before (the newest lastmod of its
   * pages at the last complete walk): its pages, and its index entry, are
   * held to its own mark, not `since`, which is for documents not in it.
   * One mark for all lost pages: a section's sitemap regenerated later than
   * another listed a page older than the other's newest, and it was never
   * emitted.
   */
  marks?: ReadonlyMap<string, number>;
  /**
   * The lastmod each index gave each child sitemap at the last complete
   * walk, with the newest page lastmod of that walk: a child whose entry is
   * unchanged and ended before it is not read again. Its own mark alone
   * would read a child stamped a day after its newest page at every poll.
   */
  stamps?: { of: ReadonlyMap<string, string>; before: number };
  /** URLs per yielded batch. */
  batchSize: number;
  signal?: AbortSignal;
  /** Called with each sitemap document before it is read (its URL), for logs and tests. */
  onSitemap?(url: string): void;
}

/** What a walk found, beyond the URLs it yielded. */
export interface SitemapWalk {
  /** Sitemap documents read. */
  sitemaps: number;
  /** The newest lastmod seen on any page (ms), whether emitted or not; index entries aside. */
  newest?: number;
  /** Pages left out because their lastmod is before `since`. */
  older: number;
  /**
   * The mark of each sitemap document listed in this walk (see
   * SitemapOptions.marks): the newest page lastmod of one read, at least its
   * mark before; the mark before of one left unread (its index lastmod said
   * no news). Documents with no mark (no page lastmod) are not in it.
   */
  marks: Map<string, number>;
  /** The lastmod each index of this walk gave each child sitemap (see SitemapOptions.stamps). */
  stamps: Map<string, string>;
  /** Entries with no `<loc>` (or an empty one): they name nothing, so they were left out. */
  noLoc: number;
  /**
   * Child sitemaps that could not be read, the walk going on without them:
   * `gone` when the server answered 404 or 410 (an index listing a sitemap
   * the site no longer has), which costs no page; any other failure (an
   * HTTP error, a deadline, a document that is no sitemap) may hide pages,
   * so a caller keeps its position until a walk reads them.
   */
  failed: { url: string; from: string; reason: string; gone: boolean }[];
}

/** Bytes of an XML text node kept at most (`<loc>` may be 2,048 chars by the protocol). */
const MAX_TEXT = 16_384;

/** Bytes of a gzip body inflated at a time: at most about 1 MB of XML each. */
const GZIP_SLICE = 1024;

/** Bytes handed to the parser at a time. */
const CHUNK = 64 * 1024;

/**
 * Walks the sitemap at `url` and the sitemaps its indexes list (depth
 * first, each at most once), yielding the pages whose lastmod is not before
 * `since`. Throws an Error naming the sitemap when the first one cannot be
 * read (a fetch that fails, a document that is not a sitemap or not
 * well-formed XML, a gzip body that is corrupt or too large), for an index
 * nested deeper than `maxDepth` or more sitemaps than `maxSitemaps`, and
 * when none of the sitemaps an index lists could be read. A child that
 * fails is left out and named in the walk's `failed` (the rest are read:
 * one lost child kept a whole site unread), for the caller to say and to
 * keep its position by. Returns what it saw.
 */
export async function* sitemapUrls(
  url: string,
  options: SitemapOptions,
): AsyncGenerator<SitemapUrl[], SitemapWalk> {
  const walk: SitemapWalk = {
    sitemaps: 0,
    older: 0,
    marks: new Map(),
    stamps: new Map(),
    noLoc: 0,
    failed: [],
  };
  /** Child sitemaps read whole, or left unread as unchanged: the walk's good news of them. */
  let childrenFine = 0;
  const sinceOf = (doc: string) => options.marks?.get(doc) ?? options.since;
  const seen = new Set<string>();
  /** Sitemaps still to read, with their depth; the next is at the end. */
  const todo: { url: string; depth: number; from?: string }[] = [{ url, depth: 0 }];
  let batch: SitemapUrl[] = [];
  while (todo.length > 0) {
    const next = todo.pop()!;
    if (seen.has(next.url)) continue;
    seen.add(next.url);
    if (walk.sitemaps >= options.maxSitemaps) {
      throw new Error(
        `sitemap ${maskUrl(url)}: lists more than ${options.maxSitemaps} sitemaps ` +
          `(maxSitemaps); raise maxSitemaps to read them all`,
      );
    }
    walk.sitemaps++;
    options.onSitemap?.(next.url);
    const children: string[] = [];
    const docSince = sinceOf(next.url);
    let docNewest = options.marks?.get(next.url);
    /** Children this document stamped, forgotten if it fails partway. */
    const stampedHere: string[] = [];
    const reading = readSitemap(next.url, options, walk);
    let read: IteratorResult<Entry[]>;
    for (;;) {
      try {
        read = await reading.next();
      } catch (error) {
        // The first sitemap failing fails the walk. A child's is the caller's to say: one
        // listed sitemap the site has lost (a 404) must not keep every later one from being read.
        if (next.depth === 0 || options.signal?.aborted) throw error;
        const status = (error as { status?: unknown }).status;
        walk.failed.push({
          url: next.url,
          from: next.from!,
          reason: (error as Error).message ?? String(error),
          gone: status === 404 || status === 410,
        });
        // Judged afresh by the next walk, and held to its old mark: nothing of it was read whole.
        walk.stamps.delete(next.url);
        for (const child of stampedHere) walk.stamps.delete(child);
        docNewest = options.marks?.get(next.url);
        children.length = 0;
        break;
      }
      if (read.done) {
        if (next.depth > 0) childrenFine++;
        break;
      }
      for (const found of read.value) {
        const lastmod = found.lastmod === undefined ? undefined : Date.parse(found.lastmod);
        // Only pages move the mark: an index often stamps its entries with the
        // time it was generated, which would hide pages a lagging child lists later.
        if (lastmod !== undefined && found.kind !== "sitemap") {
          walk.newest = Math.max(walk.newest ?? lastmod, lastmod);
          docNewest = Math.max(docNewest ?? lastmod, lastmod);
        }
        // A lastmod of a day (or a month, a year) says the page changed some
        // time in it: old only when all of it is before the mark, or a page
        // (or a child sitemap) dated the day of a mark set at 09:00 is missed.
        const since = found.kind === "sitemap" ? sinceOf(found.url) : docSince;
        let old = found.lastmodEnd !== undefined && since !== undefined &&
          found.lastmodEnd < since;
        if (found.kind === "sitemap" && found.lastmod !== undefined) {
          walk.stamps.set(found.url, found.lastmod);
          stampedHere.push(found.url);
          const stamped = options.stamps?.of.get(found.url);
          // A child stamped before is judged by its stamp alone: a changed one is news whatever
          // its date (an index dating its children before their pages hid their new pages for
          // ever); an unchanged one is old at its end, not only before it (an index stamping each
          // child with the day of its pages, as the newest page is dated, had every child read
          // at every poll).
          if (stamped !== undefined) {
            old = stamped === found.lastmod && found.lastmodEnd! <= options.stamps!.before;
          }
        }
        if (found.kind === "sitemap") {
          if (next.depth + 1 > options.maxDepth) {
            throw new Error(
              `sitemap ${maskUrl(next.url)}: is a sitemap index (it lists sitemaps) at level ` +
                `${next.depth + 1}, past maxDepth ${options.maxDepth} (${
                  options.maxDepth === 0
                    ? "url must list pages"
                    : `at most ${options.maxDepth} level(s) of indexes above the pages`
                })${
                  next.from ? `; reached from ${maskUrl(next.from)}` : ""
                }; raise maxDepth if the site really nests its indexes that deep`,
            );
          }
          // An index entry's lastmod says when that sitemap last changed: an older one has no news.
          if (!old) children.push(found.url);
          else {
            childrenFine++;
            if (options.marks?.has(found.url)) {
              walk.marks.set(found.url, options.marks.get(found.url)!);
            } else if (!options.marks && options.since !== undefined) {
              // A position from before marks held every sitemap to its one mark: one left unread
              // keeps it, or once it changed it was read whole, its old pages emitted again.
              walk.marks.set(found.url, options.since);
            }
          }
          continue;
        }
        if (old) {
          walk.older++;
          continue;
        }
        batch.push({ url: found.url, ...(found.lastmod ? { lastmod: found.lastmod } : {}) });
        if (batch.length >= options.batchSize) {
          yield batch;
          batch = [];
        }
      }
    }
    if (docNewest !== undefined) walk.marks.set(next.url, docNewest);
    // Depth first, in document order: the first child is read next.
    for (let i = children.length - 1; i >= 0; i--) {
      todo.push({ url: children[i], depth: next.depth + 1, from: next.url });
    }
  }
  if (batch.length > 0) yield batch;
  const lost = walk.failed.find((f) => !f.gone);
  if (childrenFine === 0 && lost) {
    throw new Error(
      `sitemap ${maskUrl(url)}: none of the sitemaps it lists could be read (the first: ` +
        `${maskUrlsIn(lost.reason)})`,
    );
  }
  return walk;
}

/**
 * A lastmod as the sitemap protocol writes it (W3C Datetime: a year, a
 * month, a day, or a day and time), or as an HTTP date naming its month,
 * in ms; NaN for anything else. A
 * time with no zone is read as UTC: Date.parse read it in the machine's
 * zone, so the marks moved by hours from one machine to another; and it
 * took `1` for 2001.
 */
function lastmodMs(value: string): number {
  const w3c = W3C_DATETIME.exec(value);
  if (w3c) return Date.parse(w3c[1] !== undefined && w3c[2] === undefined ? value + "Z" : value);
  // Not the protocol's, but some sites write an HTTP date (`Sat, 01 Jun 2024 10:00:00 GMT`):
  // read as a feed's date is, when it names a month.
  const iso = MONTH_NAME.test(value) ? isoDate(value) : undefined;
  return iso === undefined ? NaN : Date.parse(iso);
}

const MONTH_NAME = /\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b/i;

/** W3C Datetime: YYYY[-MM[-DD[Thh:mm[:ss[.s]][zone]]]]; groups: the time, the zone. */
const W3C_DATETIME =
  /^\d{4}(?:-\d{2}(?:-\d{2}([T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?)?)?$/i;

/**
 * The last ms a lastmod can mean: the end of its day, month or year when
 * it gives no time (W3C Datetime: YYYY-MM-DD, YYYY-MM, YYYY), else itself.
 */
function lastmodEnd(text: string, ms: number): number {
  const t = text.trim();
  if (/^\d{4}-\d{2}-\d{2}$/.test(t)) return ms + 86_400_000 - 1;
  const d = new Date(ms);
  if (/^\d{4}-\d{2}$/.test(t)) return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1) - 1;
  if (/^\d{4}$/.test(t)) return Date.UTC(d.getUTCFullYear() + 1, 0) - 1;
  return ms;
}

/** An entry of one sitemap document: a page of a urlset or a sitemap of an index. */
interface Entry {
  kind: "url" | "sitemap";
  url: string;
  lastmod?: string;
  /** The last ms `lastmod` can mean (lastmodEnd): later than it when it gives no time of day. */
  lastmodEnd?: number;
}

/** The sax parser's surface used here (the package ships no types). */
interface SaxParser {
  onopentag: (tag: { name: string }) => void;
  onclosetag: (name: string) => void;
  ontext: (text: string) => void;
  oncdata: (text: string) => void;
  onerror: (error: Error) => void;
  write(chunk: string): SaxParser;
  close(): SaxParser;
  line: number;
}

const newParser = (sax as unknown as {
  parser(strict: boolean, opts: { trim: boolean; normalize: boolean }): SaxParser;
}).parser;

/**
 * Fetches one sitemap and yields its entries in batches as the parser finds
 * them. The root element decides what it is: `urlset` or `sitemapindex`,
 * with or without a namespace prefix; anything else is an error.
 */
async function* readSitemap(
  url: string,
  options: SitemapOptions,
  walk: SitemapWalk,
): AsyncGenerator<Entry[]> {
  const res = await options.http.get(url, {
    timeout: options.timeout,
    maxBytes: options.maxBytes,
    headers: {
      accept: "application/xml, text/xml;q=0.9, application/x-gzip;q=0.8, */*;q=0.1",
    },
    signal: options.signal,
  });
  // Without the token it was fetched with: a <loc> that is only "#s1" keeps its base's query.
  const base = withoutSecretParams(res.url || url);
  const name = `sitemap ${maskUrl(url)}`;
  let found: Entry[] = [];
  let root: string | undefined;
  let entry: Entry | undefined;
  /** Elements open inside the entry: its own `<loc>` and `<lastmod>` are at 1. */
  let inEntry = 0;
  let field: "loc" | "lastmod" | undefined;
  let text = "";
  let failed: Error | undefined;
  const parser = newParser(true, { trim: false, normalize: false });
  const local = (tag: string) => tag.slice(tag.indexOf(":") + 1);
  parser.onopentag = (tag) => {
    const el = local(tag.name);
    if (root === undefined) {
      root = el;
      if (el !== "urlset" && el !== "sitemapindex") {
        throw new Error(
          `${name}: not a sitemap (root element <${tag.name}>, ` +
            `expected <urlset> or <sitemapindex>)`,
        );
      }
      return;
    }
    if (entry) {
      // Only the entry's own children: an image sitemap's <image:loc> inside
      // <image:image> names the picture, not the page.
      if (++inEntry === 1 && (el === "loc" || el === "lastmod")) {
        field = el;
        text = "";
      }
    } else if (
      (el === "url" && root === "urlset") || (el === "sitemap" && root === "sitemapindex")
    ) {
      entry = { kind: el, url: "" };
      inEntry = 0;
    }
  };
  const onText = (t: string) => {
    if (field && text.length < MAX_TEXT) text += t.slice(0, MAX_TEXT - text.length);
  };
  parser.ontext = onText;
  parser.oncdata = onText;
  parser.onclosetag = (tagName) => {
    if (!entry) return;
    const el = local(tagName);
    if (inEntry > 0) {
      // One of the entry's elements closes: its <loc> or <lastmod> when it opened one.
      if (inEntry-- !== 1 || field !== el) return;
      const value = text.trim();
      // An empty <loc> is none: resolved, it would name the sitemap itself.
      if (el === "loc") entry.url = value === "" ? "" : absolute(value, base);
      else {
        const ms = lastmodMs(value);
        if (Number.isFinite(ms)) {
          entry.lastmod = new Date(ms).toISOString();
          entry.lastmodEnd = lastmodEnd(value, ms);
        }
      }
      field = undefined;
      return;
    }
    // The entry closes. One with no <loc> names nothing to read: counted, not passed on.
    if (entry.url === "") walk.noLoc++;
    else found.push(entry);
    entry = undefined;
  };
  parser.onerror = (error) => {
    failed ??= error;
  };
  try {
    for await (const chunk of textChunks(res.body, name, options.maxBytes)) {
      parser.write(chunk);
      if (failed) break;
      if (found.length >= options.batchSize) {
        yield found;
        found = [];
      }
    }
    if (!failed) parser.close();
  } catch (error) {
    if (String((error as Error).message).startsWith(name)) throw error;
    failed ??= error as Error;
  }
  if (failed) {
    throw new Error(`${name}: not well-formed XML (${saxError(failed)})`);
  }
  if (root === undefined) {
    throw new Error(`${name}: not a sitemap (no XML root element)`);
  }
  if (found.length > 0) yield found;
}

/** sax's "Unexpected close tag\nLine: 0\nColumn: 52\nChar: >" as "line 1, column 52: Unexpected close tag". */
function saxError(error: Error): string {
  const text = String(error.message ?? error);
  const m = /^([^\n]*)\nLine: (\d+)\nColumn: (\d+)/.exec(text);
  if (!m) return text.replace(/\s+/g, " ");
  return `line ${Number(m[2]) + 1}, column ${m[3]}: ${m[1]}`;
}

/** A `<loc>` as an absolute URL; as written when it is not one (the Validator says why). */
function absolute(loc: string, base: string): string {
  try {
    return new URL(loc, base).href;
  } catch {
    return loc;
  }
}

/**
 * The body as text in chunks: gunzipped first when it is gzip (its magic
 * bytes, whatever the URL or Content-Type say: a server that already undid
 * its Content-Encoding hands over plain XML), and cut off with an error past
 * `maxBytes` of XML, so a small gzip bomb cannot fill memory.
 */
async function* textChunks(
  body: Uint8Array,
  name: string,
  maxBytes: number,
): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8");
  if (!(body[0] === 0x1f && body[1] === 0x8b)) {
    for (let at = 0; at < body.length; at += CHUNK) {
      yield decoder.decode(body.subarray(at, at + CHUNK), { stream: true });
    }
    yield decoder.decode();
    return;
  }
  // Fed a slice at a time, as it asks: deflate inflates up to ~1000:1, so a
  // whole body in one write could come out as one chunk of any size.
  let offset = 0;
  const compressed = new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(controller) {
      if (offset >= body.length) return controller.close();
      controller.enqueue(body.slice(offset, offset += GZIP_SLICE));
    },
  }, { highWaterMark: 0 });
  const stream = compressed.pipeThrough(new DecompressionStream("gzip"));
  const reader = stream.getReader();
  let size = 0;
  try {
    for (;;) {
      let read: ReadableStreamReadResult<Uint8Array>;
      try {
        read = await reader.read();
      } catch (error) {
        throw new Error(`${name}: corrupt gzip body (${(error as Error).message ?? error})`);
      }
      if (read.done) break;
      size += read.value.byteLength;
      if (size > maxBytes) {
        throw new Error(
          `${name}: larger than the limit of ${maxBytes} bytes once gunzipped (maxBytes)`,
        );
      }
      yield decoder.decode(read.value, { stream: true });
    }
    yield decoder.decode();
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Stamps read back from a position; throws on what is not one. */
export function stampsIn(stamps: unknown): Map<string, string> | undefined {
  if (stamps === undefined) return undefined;
  if (
    typeof stamps !== "object" || stamps === null || Array.isArray(stamps) ||
    !Object.values(stamps).every((v) => typeof v === "string")
  ) {
    throw new Error(`stamps is not a map of sitemap URL to lastmod: ${JSON.stringify(stamps)}`);
  }
  return new Map(Object.entries(stamps as Record<string, string>));
}

/** Marks as a position keeps them: ISO 8601 by sitemap URL. */
export function marksOut(marks: ReadonlyMap<string, number>): Record<string, string> | undefined {
  if (marks.size === 0) return undefined;
  return Object.fromEntries([...marks].map(([url, ms]) => [url, new Date(ms).toISOString()]));
}

/** Marks read back from a position; throws on what is not one. */
export function marksIn(sitemaps: unknown): Map<string, number> | undefined {
  if (sitemaps === undefined) return undefined;
  const marks = new Map<string, number>();
  if (typeof sitemaps !== "object" || sitemaps === null || Array.isArray(sitemaps)) {
    throw new Error(`sitemaps is not a map of sitemap URL to date: ${JSON.stringify(sitemaps)}`);
  }
  for (const [url, iso] of Object.entries(sitemaps)) {
    const ms = typeof iso === "string" ? Date.parse(iso) : NaN;
    if (!Number.isFinite(ms)) throw new Error(`sitemaps[${JSON.stringify(url)}] is not a date`);
    marks.set(url, ms);
  }
  return marks;
}

/**
 * A walk's marks as kept: at most the walk's start (a lastmod in the future
 * would hide every later change) and at least `floor` (the first poll's cutoff).
 */
export function keptMarks(
  marks: ReadonlyMap<string, number>,
  started: number,
  floor: number | undefined,
): Map<string, number> {
  return new Map(
    [...marks].map(([url, ms]) => [url, Math.max(floor ?? -Infinity, Math.min(ms, started))]),
  );
}

/** Warnings a source keeps from saying twice: at most this many remembered. */
const SAID_MAX = 1000;

/**
 * What a walk left out, as warnings for a source to log: each failed child
 * sitemap and the entries with no `<loc>`, each said once per source (`said`
 * remembers), since a site's lost sitemap is lost again at every poll.
 */
export function walkWarnings(walk: SitemapWalk, root: string, said: Set<string>): string[] {
  const out: string[] = [];
  const once = (key: string, text: string) => {
    if (said.has(key)) return;
    if (said.size < SAID_MAX) said.add(key);
    out.push(text);
  };
  for (const f of walk.failed) {
    once(
      `${f.gone} ${f.url}`,
      `sitemap ${maskUrl(root)}: left out ${maskUrl(f.url)} (listed by ${maskUrl(f.from)}): ` +
        `${maskUrlsIn(f.reason)}; ` +
        (f.gone
          ? "the site no longer has it, so the other sitemaps were read without it"
          : "the other sitemaps were read, and this one is read again at the next poll " +
            "(its mark stays until it is)"),
    );
  }
  if (walk.noLoc > 0) {
    once(
      "noLoc",
      `sitemap ${maskUrl(root)}: ${walk.noLoc} entr${walk.noLoc === 1 ? "y" : "ies"} with no ` +
        `<loc> left out (said once)`,
    );
  }
  return out;
}
