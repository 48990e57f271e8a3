import { z } from "zod";
import { bytes, duration } from "../../config/units.ts";
import type { RawItem } from "../../engine/item.ts";
import { FieldError } from "../../engine/flow_error.ts";
import { thrownEnding } from "../../engine/errors.ts";
import { maskUrl, maskUrlsIn, withoutSecretParams } from "../../engine/mask_url.ts";
import type { BuildEnv, SourceSpec } from "../../engine/registry.ts";
import type { Source } from "../../engine/source.ts";
import { checkFiles, pathList, readFiles } from "./_input_files.ts";
import { type DecodedHtml, decodeHtml } from "./_decode_html.ts";
import { charsetOf } from "./_decode_xml.ts";
import {
  extractArticle,
  type HtmlDocument,
  loadDom,
  PageTooBigError,
  parseHtml,
  UnreadablePageError,
} from "./_extract_article.ts";
import { followLinks, selectorProblem } from "./_follow_links.ts";
import { SeenPages } from "./_seen_pages.ts";
import { concurrently, HostTurns, TICK, ticking, type Turn } from "./_concurrently.ts";
import { ITEMS_PER_BATCH, PageBatches, type PageResult } from "./_page_batches.ts";
import { keptMarks, marksIn, marksOut, sitemapUrls, stampsIn, walkWarnings } from "./_sitemap.ts";
import { SITEMAP_MAX_BYTES } from "./sitemap_source.ts";
import { DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_MS } from "../http/http_fetch.ts";
import { httpOf } from "../http/http_client.ts";
import { HostPausedError, RobotsDisallowedError } from "../http/polite_http.ts";
import { withoutTracking } from "../../engine/canonical_url.ts";

/** Refused links remembered as warned (past it, the oldest may be warned about again). */
const REFUSED_SAID = 10_000;

const httpUrl = z.url({ protocol: /^https?$/ });

/**
 * Pages fetched at once by default: four hosts at the default perHost
 * concurrency of 2, so a crawl of several sites reaches each at its own rate
 * instead of one after the other. Each page in flight may hold up to
 * maxBytes, and a page of several MiB makes a DOM of hundreds: peak memory
 * grows with the pages held at once, and a site of such pages wants
 * `concurrency: 1`.
 */
const DEFAULT_CONCURRENCY = 8;

/**
 * The longest Retry-After pause a polled source with no `every` (a cron)
 * waits out within a poll; past it, the host's links wait for the next poll.
 */
const PAUSE_WAITED_MS = 60_000;

/**
 * The `html` source block of a flow file: article pages turned into items
 * by Readability (see _extract_article.ts), fetched from `url` or read from
 * `path`. With `follow`, the pages at `url` are list pages and the links
 * the selector picks on them are the articles.
 *
 * @example
 * ```yaml
 * sources:
 *   news:  { kind: html, url: https://example.com/news/, follow: "h2.headline a", every: 15m }
 *   one:   { kind: html, url: https://example.com/2026/12/a-story.html }
 *   site:  { kind: html, sitemap: https://example.com/sitemap.xml, every: 1h }
 *   saved: { kind: html, path: [pages/a.html, pages/b.html] }
 * ```
 */
export const htmlConfig = z
  .strictObject({
    url: z
      .union([httpUrl, z.array(httpUrl).min(1)])
      .optional()
      .describe(
        "An http(s) page or a list of them, fetched on every poll: the articles, or with follow the list pages. Give url, sitemap or path. No default.",
      ),
    path: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe(
        "An HTML file or a list of them, relative to the flow file. Give url, sitemap or path. No default.",
      ),
    sitemap: httpUrl
      .optional()
      .describe(
        "A sitemap.xml or sitemap index (gzip too) whose pages are the articles: each poll fetches those whose lastmod is not before the last complete walk's newest. Give url, sitemap or path. No default.",
      ),
    follow: z
      .string()
      .min(1)
      .optional()
      .describe(
        "CSS selector of the article links on the pages at url (an <a>, or an element holding one). Default: none, the pages at url are the articles.",
      ),
    depth: z
      .int()
      .positive()
      .optional()
      .describe(
        "With follow: levels of links between the pages at url and the articles (2: list of lists). Default 1.",
      ),
    maxPages: z
      .int()
      .positive()
      .default(100)
      .describe(
        "Pages fetched per poll at most, list pages included; links left over wait for the next poll. Default 100.",
      ),
    sameSite: z
      .boolean()
      .optional()
      .describe(
        "With follow: follow only links to the host of the page they are on (www. aside). Default true.",
      ),
    timeout: duration({ positive: true })
      .default(DEFAULT_TIMEOUT_MS)
      .describe("Deadline of one page fetch, body included (url only). Default 10s."),
    maxBytes: bytes()
      .default(DEFAULT_MAX_BYTES)
      .describe(
        "Largest page accepted; a larger one is skipped with a warning (url only). Default 10MiB.",
      ),
    concurrency: z
      .int()
      .positive()
      .max(256)
      .default(DEFAULT_CONCURRENCY)
      .describe(
        "Pages fetched at once, hosts taken in turn; each host still gets at most its perHost concurrency of them, at its rate. Default 8.",
      ),
  })
  .superRefine((c, ctx) => {
    const issue = (message: string, path?: string) =>
      ctx.addIssue({ code: "custom", message, ...(path ? { path: [path] } : {}) });
    if ([c.url, c.path, c.sitemap].filter((x) => x !== undefined).length !== 1) {
      issue(
        "give one of url (pages to fetch), sitemap (a sitemap of them) or path (HTML files)",
      );
    }
    if (c.follow !== undefined && c.url === undefined) {
      issue("follow applies to pages fetched from url", "follow");
    }
    for (const key of ["depth", "sameSite"] as const) {
      if (c[key] !== undefined && c.follow === undefined) {
        issue(`${key} applies with follow (the selector of the links to follow)`, key);
      }
    }
    const lists = c.url === undefined ? 0 : typeof c.url === "string" ? 1 : c.url.length;
    if (c.follow !== undefined && c.maxPages <= lists) {
      issue(
        `${c.maxPages} is not above the ${lists} page(s) at url: with follow those are list ` +
          `pages, fetched at every poll before any article, so no article would ever be fetched`,
        "maxPages",
      );
    }
    const problem = c.follow === undefined ? undefined : selectorProblem(c.follow);
    if (problem) issue(problem, "follow");
  });

export type HtmlConfig = z.output<typeof htmlConfig>;

/** Registers as `kind: html`. */
export const htmlSource: SourceSpec<HtmlConfig> = {
  kind: "html",
  summary:
    "Turns article pages (URLs, list pages and the links they hold, or files) into items with Readability",
  files: "path",
  schema: htmlConfig,
  prepare: loadDom,
  create: (config, env) => new HtmlSource(config, env),
};

/**
 * Where an html source stands: keys of the pages it already fetched, oldest
 * first, and with `sitemap` the newest lastmod of its last complete walk.
 */
export interface HtmlPosition {
  seen: string[];
  since?: string;
  /** With `sitemap`: each sitemap document's own mark (see sitemap_source.ts). */
  sitemaps?: Record<string, string>;
  /** With `sitemap`: what each index said of each child sitemap (see sitemap_source.ts). */
  stamps?: Record<string, string>;
}

/** What a source did since it was made, summed over its polls. */
export interface HtmlCounts {
  /** Pages fetched, list pages included. */
  fetched: number;
  items: number;
  /** Pages that failed to fetch or decode (HTTP errors, deadlines, not HTML). */
  failed: number;
  /** Pages fetched in which Readability found no article. */
  noArticle: number;
  /** Article links not fetched because an earlier poll had. */
  alreadySeen: number;
  /** Links left for a later poll because maxPages was reached. */
  overBudget: number;
  /**
   * Links robots.txt's rules refuse: not requested, so neither fetched nor
   * spent from maxPages; but one that redirects where they refuse was
   * requested, and is counted fetched too.
   */
  disallowed: number;
  /**
   * Links left for the next poll, unrequested, because their host asked for
   * a pause (Retry-After) longer than the source's `every` (a minute when
   * it has none): a polled source does not hold its poll for one host.
   */
  paused: number;
}

/**
 * Pages at `url` are fetched on every poll. Without `follow` they are the
 * articles; with it they are list pages, and the links `follow` picks are
 * fetched breadth first, `depth` levels down, within `maxPages` fetches
 * per poll. An article page is fetched once: its canonical URL goes into a
 * bounded set (see _seen_pages.ts) that is the source's checkpoint, so a
 * later poll, or a durable flow's restarted source, skips it. List pages
 * are fetched again every poll, which is how new articles are found.
 *
 * Up to `concurrency` pages are fetched at once, at most the client's
 * per-host concurrency of one host's (HostTurns); per-host politeness is the
 * HTTP client's to enforce. A page is remembered as seen only when the batch
 * holding its items is yielded (PageBatches), so a checkpoint taken after a
 * batch names exactly the pages whose items were yielded (and those skipped).
 *
 * A page that fails (HTTP error, deadline, too large, not HTML) or holds
 * no article is counted and warned, with its URL masked, and the poll goes
 * on; only a poll in which every page at `url` failed fails as a whole.
 * A failed page is not remembered, so the next poll tries it again, except
 * for 404 and 410, which say it is gone.
 */
class HtmlSource implements Source {
  readonly counts: HtmlCounts = {
    fetched: 0,
    items: 0,
    failed: 0,
    noArticle: 0,
    alreadySeen: 0,
    overBudget: 0,
    disallowed: 0,
    paused: 0,
  };
  /** Hosts of this poll that asked for a longer pause than the poll waits: their links wait. */
  readonly #pausedHosts = new Set<string>();
  readonly #seen = new SeenPages();
  /** With `sitemap`: the newest lastmod of the last complete walk (ms). */
  #since?: number;
  /** With `sitemap`: each sitemap document's mark at the last complete walk. */
  #marks?: Map<string, number>;
  /** With `sitemap`: what each index said of each child sitemap at the last complete walk. */
  #stamps?: Map<string, string>;
  /** Pages that answered 404 or 410: failed, but not to be tried again. */
  #gone = 0;
  /** Why the last page this source could not use was skipped: the cause a failed poll names. */
  #lastSkip?: string;
  /** Links robots.txt refused that were warned about: each is said once, not at every poll. */
  readonly #refusedSaid = new SeenPages(REFUSED_SAID);
  /** Hosts whose unlabelled, not-UTF-8 pages were said to be read as windows-1252. */
  readonly #guessSaid = new SeenPages(REFUSED_SAID);
  /** Sitemap walks' warnings said already (walkWarnings). */
  readonly #walkSaid = new Set<string>();

  constructor(private readonly config: HtmlConfig, private readonly env: BuildEnv) {}

  /**
   * Missing files and a `follow` that is no CSS selector fail the flow
   * before it starts (a flow built in code is checked here, not at load:
   * see selectorProblem); a URL is only tried when polled.
   */
  async check(): Promise<void> {
    await checkFiles(this.config.path, this.env.baseDir);
    if (this.config.follow === undefined) return;
    await loadDom();
    const problem = selectorProblem(this.config.follow);
    if (problem) throw new FieldError(["follow"], problem);
  }

  checkpoint(): HtmlPosition | undefined {
    if (this.#seen.size === 0 && this.#since === undefined) return undefined;
    const since = this.#since === undefined ? {} : { since: new Date(this.#since).toISOString() };
    const sitemaps = this.#marks && marksOut(this.#marks);
    const stamps = this.#stamps?.size ? Object.fromEntries(this.#stamps) : undefined;
    return {
      seen: this.#seen.keys(),
      ...since,
      ...(sitemaps ? { sitemaps } : {}),
      ...(stamps ? { stamps } : {}),
    };
  }

  resume(position: unknown): void {
    if (this.config.path !== undefined) return;
    if (position === undefined || position === null) position = { seen: [] };
    try {
      const { seen, since, sitemaps, stamps } = position as Partial<HtmlPosition>;
      this.#seen.restore(seen);
      this.#marks = marksIn(sitemaps);
      this.#stamps = stampsIn(stamps);
      this.#since = undefined;
      if (since !== undefined) {
        const ms = Date.parse(since);
        if (!Number.isFinite(ms)) throw new Error(`since is not a date: ${JSON.stringify(since)}`);
        this.#since = ms;
      }
    } catch (err) {
      throw new Error(
        `html ${this.#name()}: cannot resume from ${JSON.stringify(position).slice(0, 200)}: ` +
          (err as Error).message,
      );
    }
  }

  async *read(signal: AbortSignal): AsyncIterable<RawItem[]> {
    await loadDom();
    if (this.config.sitemap !== undefined) {
      yield* this.#pollSitemap(this.config.sitemap, signal);
      return;
    }
    if (this.config.url === undefined) {
      yield* readFiles(pathList(this.config.path), this.env.baseDir, signal, (b, p) => {
        const page = decodeHtml(b);
        this.#charsetNote(p, page);
        return this.#articleOf(parseHtml(page.text), undefined, p, []) ?? [];
      });
      return;
    }
    yield* this.#poll(urlList(this.config.url), signal);
  }

  async *#poll(urls: string[], signal: AbortSignal): AsyncGenerator<RawItem[]> {
    this.#seen.beginPoll();
    this.#pausedHosts.clear();
    const { follow, maxPages } = this.config;
    const depth = follow === undefined ? 0 : this.config.depth ?? 1;
    const before = { ...this.counts };
    let level = unique(urls);
    const pages = new PageBatches(this.#seen);
    let exhausted = false;
    for (let d = 0; d <= depth && level.length > 0; d++) {
      const isArticle = d === depth;
      const listPages = this.counts.fetched - before.fetched;
      // Each list page's links, taken in the level's order whatever order the pages came in.
      const links = new Map<string, string[]>();
      const turns = new HostTurns(level, this.#perHost());
      const next = () =>
        turns.take((url) => {
          if (isArticle && (pages.gave(url) || this.#seen.seen(url))) {
            this.counts.alreadySeen++;
            return false;
          }
          if (this.#hostPaused(url)) return false;
          // Spent by pages requested, and by those under way (not yet counted in `fetched`):
          // one robots.txt refuses costs nothing.
          if (this.counts.fetched - before.fetched + turns.running >= maxPages) return undefined;
          return true;
        });
      const fetchOne = async (turn: Turn): Promise<PageResult> => {
        try {
          if (isArticle) return await this.#article(turn.url, signal);
          const marks: string[] = [];
          const page = await this.#fetch(turn.url, signal, marks);
          if (page) {
            const found = followLinks(page.doc, follow!, page.url, this.config.sameSite ?? true);
            if (found.length === 0) this.#noLinks(page.doc, page.url);
            links.set(turn.url, found);
          }
          return { items: [], marks };
        } finally {
          turns.done(turn);
        }
      };
      yield* this.#gather(concurrently(this.config.concurrency, next, fetchOne), pages);
      const rest = turns.rest();
      if (rest.length > 0) {
        const left = rest.filter((u) => !isArticle || !(pages.gave(u) || this.#seen.has(u)))
          .length;
        if (depth > 0 && (!isArticle || this.counts.fetched - before.fetched === listPages)) {
          // Every poll fetches the list pages again, first: links left here
          // would be left at every poll, and no article ever fetched.
          this.env.log.warn(
            `${this.env.flow}: html ${this.#name()}: maxPages ${maxPages} was spent on list ` +
              `pages (depth ${Math.min(d, depth - 1)} of ${depth}) before any article: no ` +
              `article is fetched while the list pages take the whole budget; raise maxPages ` +
              `above the list pages (${maxPages} fetched, ${left} more ${
                isArticle ? "links to articles" : "at this depth"
              }) or lower depth`,
          );
          if (isArticle) this.counts.overBudget += left;
        } else if (isArticle) this.#overBudget(left);
        exhausted = true;
      }
      const failed = this.counts.failed - before.failed + this.counts.disallowed -
        before.disallowed;
      if (d === 0 && urls.length > 0 && failed === level.length) {
        // The cause goes with it: the report's lastError and a JSON log are read without the warnings.
        throw new Error(
          `html ${this.#name()}: no page at url could be fetched (the last: ${
            this.#lastSkip ?? "see warnings"
          })`,
        );
      }
      // Warned once: the levels below wait for the next poll with the rest.
      if (exhausted) break;
      level = unique(level.flatMap((url) => links.get(url) ?? []));
    }
    // Yielded empty too: the pages that gave no item (gone, no article) are marked seen in
    // it, and a durable flow stores the checkpoint with it, or a restart fetched them again.
    yield pages.take();
    this.#summary(before);
  }

  /**
   * Takes the pages' results into `pages`, and yields each batch once due:
   * full, or on time (BATCH_WAIT_MS) even while no page is finishing (a
   * host that asked for a pause holding the places it has).
   */
  async *#gather(
    results: AsyncGenerator<PageResult>,
    pages: PageBatches,
  ): AsyncGenerator<RawItem[]> {
    for await (const result of ticking(results, () => pages.dueAt())) {
      if (result !== TICK && !pages.add(result)) {
        // A link sent to an article another link of this poll gave: counted as that one.
        this.counts.items -= result.items.length;
        this.counts.alreadySeen++;
      }
      if (pages.due()) yield pages.take();
    }
  }

  /**
   * The pages a sitemap lists, as articles, within `maxPages` fetches per
   * poll. The walk's mark moves only when a walk completed within the
   * budget: pages left over are not older than the old mark, so the next
   * poll finds them again (and skips what it fetched, by the seen set). The
   * last batch is yielded after the mark moved, so it is stored with it.
   */
  async *#pollSitemap(url: string, signal: AbortSignal): AsyncGenerator<RawItem[]> {
    this.#seen.beginPoll();
    this.#pausedHosts.clear();
    const started = Date.now();
    const before = { ...this.counts };
    const goneBefore = this.#gone;
    let left = 0;
    const pages = new PageBatches(this.#seen);
    const walkSince = this.#marks ? undefined : this.#since;
    const walk = sitemapUrls(url, {
      http: httpOf(this.env),
      // A sitemap may be 50 MB (the protocol's limit): the sitemap source's defaults.
      timeout: Math.max(this.config.timeout, 30_000),
      maxBytes: SITEMAP_MAX_BYTES,
      maxSitemaps: 1000,
      maxDepth: 3,
      // Per sitemap document once marks are kept; a position from before them holds all to one.
      since: walkSince,
      marks: this.#marks,
      ...(this.#stamps && this.#since !== undefined
        ? { stamps: { of: this.#stamps, before: this.#since } }
        : {}),
      batchSize: ITEMS_PER_BATCH,
      signal,
    });
    for (;;) {
      let next;
      try {
        next = await walk.next();
      } catch (error) {
        // The articles fetched so far are seen: they go on before the poll fails.
        const last = pages.take();
        if (last.length) yield last;
        throw error;
      }
      if (next.done) {
        const newest = next.value.newest;
        if (left > 0) this.#overBudget(left);
        for (const warning of walkWarnings(next.value, url, this.#walkSaid)) {
          this.env.log.warn(`${this.env.flow}: html: ${warning}`);
        }
        // A page or a child sitemap that failed (not gone), or a page left while its host
        // pauses, keeps the mark, so the next walk lists it again.
        const failed = this.counts.failed - before.failed - (this.#gone - goneBefore) +
          next.value.failed.filter((f) => !f.gone).length;
        const whole = left === 0 && failed === 0 && this.counts.paused === before.paused;
        if (whole && newest !== undefined) {
          this.#since = Math.max(this.#since ?? -Infinity, Math.min(newest, started));
        }
        if (whole) {
          this.#marks = keptMarks(next.value.marks, started, walkSince);
          this.#stamps = next.value.stamps;
        }
        break;
      }
      const turns = new HostTurns(next.value.map((page) => page.url), this.#perHost());
      const pick = () =>
        turns.take((url) => {
          if (pages.gave(url) || this.#seen.seen(url)) {
            this.counts.alreadySeen++;
            return false;
          }
          if (this.#hostPaused(url)) return false;
          // As in #poll: pages under way count until robots.txt's verdict is known.
          if (this.counts.fetched - before.fetched + turns.running < this.config.maxPages) {
            return true;
          }
          // A request running may yet be refused by robots.txt, and cost nothing.
          if (turns.running > 0) return undefined;
          left++;
          return false;
        });
      const fetchArticle = async (turn: Turn): Promise<PageResult> => {
        try {
          return await this.#article(turn.url, signal);
        } finally {
          turns.done(turn);
        }
      };
      yield* this.#gather(concurrently(this.config.concurrency, pick, fetchArticle), pages);
      if (pages.due()) yield pages.take();
    }
    yield pages.take();
    this.#summary(before);
  }

  /**
   * The article at `url`, fetched and remembered as seen; none when it
   * failed (warned). A page with no article at its own address is
   * remembered too, so no poll fetches it again; one sent elsewhere (a
   * login or consent page, a paywall's landing) is not, nor where it was
   * sent: the next poll asks again, when the redirect may be gone.
   */
  async #article(url: string, signal: AbortSignal): Promise<PageResult> {
    const marks: string[] = [];
    const page = await this.#fetch(url, signal, marks);
    if (page === undefined) return { items: [], marks };
    const items = this.#articleOf(page.doc, page.url, page.url, marks);
    if (items === undefined) return { items: [], marks };
    if (items.length > 0 || page.url === url) {
      marks.push(url);
      if (page.url !== url) marks.push(page.url);
    }
    return { items, marks, address: page.url };
  }

  /**
   * The page's article as a one-item list, or none (counted and warned);
   * undefined when Readability failed on it (counted failed, warned, and
   * not remembered: a later poll, or a later millrace, tries it again).
   */
  #articleOf(
    doc: HtmlDocument,
    url: string | undefined,
    name: string,
    marks: string[],
  ): RawItem[] | undefined {
    let item: RawItem | undefined, why = "no readable article";
    try {
      item = extractArticle(doc, url);
    } catch (error) {
      // Readability's failure on a page is that page's, as a page too big is: the poll goes
      // on (it failed whole, the pages after this one unread, at every poll).
      if (error instanceof UnreadablePageError) {
        this.counts.failed++;
        this.env.log.warn(
          `${this.env.flow}: html skipped ${maskUrl(name)}: ${maskUrlsIn(error.message)} ` +
            `(tried again at the next poll)`,
        );
        return undefined;
      }
      if (!(error instanceof PageTooBigError)) throw error;
      why = error.message;
    }
    if (item === undefined) {
      this.counts.noArticle++;
      this.env.log.warn(`${this.env.flow}: html skipped ${maskUrl(name)}: ${why}`);
      return [];
    }
    if (item.url !== undefined && url !== undefined) marks.push(item.url);
    this.counts.items++;
    return [item];
  }

  /**
   * The page decoded and parsed, or undefined when it failed (counted once
   * as fetched and as failed, and warned). A page that is gone (404, 410)
   * or is no HTML page (a PDF, an image a list links to) is remembered as
   * seen: no poll fetches it again, nor spends `maxPages` on it.
   */
  async #fetch(
    url: string,
    signal: AbortSignal,
    marks: string[],
  ): Promise<{ url: string; doc: HtmlDocument } | undefined> {
    // A sitemap's <loc> as written ("http://exa mple.com/a b"): no request, and never asked again.
    if (!/^https?:$/.test(URL.parse(url)?.protocol ?? "")) {
      return this.#skipped(url, "not an absolute http(s) URL", true, marks);
    }
    let res;
    try {
      res = await httpOf(this.env).get(url, {
        timeout: this.config.timeout,
        maxBytes: this.config.maxBytes,
        headers: { accept: "text/html, application/xhtml+xml;q=0.9, */*;q=0.1" },
        signal,
        // Polled, a page whose host asks for a longer pause waits for the next poll.
        ...(this.env.polled ? { maxWait: this.env.every ?? PAUSE_WAITED_MS } : {}),
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason ?? err;
      // Not this page's fault (a right Redis refuses the politeness buckets): every page would
      // fail alike, and the run ends with it.
      if (thrownEnding(err)) throw err;
      if (err instanceof HostPausedError) {
        this.#paused(err);
        return undefined;
      }
      if (err instanceof RobotsDisallowedError && err.ruled) {
        this.#refused(url, err);
        if (err.redirected) {
          // The link itself was asked for, and said to go where robots.txt refuses: spent, and
          // remembered as seen, or each poll would ask for it again past maxPages.
          this.counts.fetched++;
          marks.push(url);
        }
        return undefined;
      }
      const status = (err as { status?: unknown }).status;
      this.counts.fetched++; // a request that failed was made all the same
      return this.#skipped(url, skipped(err, url), status === 404 || status === 410, marks);
    }
    this.counts.fetched++;
    const type = res.headers.get("content-type");
    if (type && !/^\s*(text\/html|application\/xhtml\+xml)\b/i.test(type)) {
      return this.#skipped(
        url,
        `not an HTML page (content-type ${type.split(";")[0].trim()})`,
        true,
        marks,
      );
    }
    try {
      const page = decodeHtml(res.body, charsetOf(type));
      this.#charsetNote(url, page);
      // The item's url, as sinks and dead letters get it: not the token the flow fetched it with.
      return { url: withoutSecretParams(res.url || url), doc: parseHtml(page.text) };
    } catch (err) {
      return this.#skipped(url, skipped(err, url), false, marks);
    }
  }

  /**
   * A page fetched (or tried) that gives nothing: counted as failed, warned,
   * and when `gone` remembered as seen.
   */
  #skipped(url: string, why: string, gone: boolean, marks: string[]): undefined {
    this.counts.failed++;
    this.#lastSkip = `${maskUrl(url)}: ${why}`;
    if (gone) {
      marks.push(url);
      this.#gone++;
    }
    this.env.log.warn(`${this.env.flow}: html skipped ${maskUrl(url)}: ${why}`);
    return undefined;
  }

  /**
   * Says, once per host, what decoding a page had to guess: that it was not
   * UTF-8 and named no other charset, so it was read as windows-1252 (right
   * for Western pages, mojibake for others, Shift-JIS or windows-1251, that
   * no later stage can undo), or that a UTF-8 page held bytes that are not,
   * which became U+FFFD.
   */
  #charsetNote(url: string, page: DecodedHtml): void {
    const guessed = page.from === "default" && page.encoding === "windows-1252";
    if (!guessed && !page.replaced) return;
    // Saved files are one "host": said once for all of them.
    const origin = URL.parse(url)?.origin ?? "files";
    const key = `${guessed ? "guessed" : "replaced"} ${origin}`;
    if (this.#guessSaid.has(key)) return;
    this.#guessSaid.add(key);
    const once = `said once per ${origin === "files" ? "source's files" : "host"}`;
    const said = page.falseUtf8 === "http header"
      ? "says it is UTF-8 (its Content-Type) but is not"
      : page.falseUtf8 === "meta"
      ? "says it is UTF-8 (its <meta>) but is not"
      : "is not UTF-8 and names no other charset (Content-Type or <meta>)";
    this.env.log.warn(
      `${this.env.flow}: html ${maskUrl(url)}: ` +
        (guessed
          ? `${said}, so it was read as windows-1252 (Latin-1); text in another encoding comes ` +
            `out garbled (${once})`
          : `is UTF-8 but for ${page.replaced} byte sequence(s) that are not, which became ` +
            `U+FFFD, as a browser shows them (${once})`),
    );
  }

  /** Says why a list page gave no link: the selector, or sameSite dropping every link it found. */
  #noLinks(doc: HtmlDocument, url: string): void {
    const follow = JSON.stringify(this.config.follow);
    const elsewhere = this.config.sameSite ?? true
      ? followLinks(doc, this.config.follow!, url, false).length
      : 0;
    this.env.log.warn(
      `${this.env.flow}: html ${maskUrl(url)}: follow ${follow} ` +
        (elsewhere > 0
          ? `matched ${elsewhere} link(s), all to other hosts than this page's: sameSite (default ` +
            `true) leaves them out; set sameSite: false to follow them`
          : `matched no links to follow there`),
    );
  }

  /**
   * Whether `url`'s host asked this poll for a longer pause than it waits:
   * then the link is counted and left for the next poll, unrequested.
   */
  #hostPaused(url: string): boolean {
    if (this.#pausedHosts.size === 0 || !this.#pausedHosts.has(URL.parse(url)?.host ?? "")) {
      return false;
    }
    this.counts.paused++;
    return true;
  }

  /** A page not sent because its host asked for a pause: it and the host's other links wait. */
  #paused(err: HostPausedError): void {
    this.counts.paused++;
    if (this.#pausedHosts.has(err.host)) return;
    this.#pausedHosts.add(err.host);
    this.env.log.warn(
      `${this.env.flow}: html ${this.#name()}: ${err.host} asked for a pause (Retry-After) of ${
        Math.ceil(err.pausedMs / 1000)
      } s more, longer than this source waits between polls: its links are left for the next ` +
        `poll`,
    );
  }

  /** A link robots.txt's rules refuse: counted at every poll, warned once (it is asked again, unrequested, while they stand). */
  #refused(url: string, err: RobotsDisallowedError): void {
    this.counts.disallowed++;
    this.#lastSkip = `${maskUrl(url)}: ${skipped(err, url)}`;
    if (this.#refusedSaid.has(url)) return;
    this.#refusedSaid.add(url);
    this.env.log.warn(
      `${this.env.flow}: html skipped ${maskUrl(url)}: ${skipped(err, url)} (said once; ${
        err.redirected ? "not asked for again" : "not fetched while it does"
      })`,
    );
  }

  #overBudget(left: number): void {
    if (left === 0) return;
    this.counts.overBudget += left;
    this.env.log.warn(
      `${this.env.flow}: html ${this.#name()}: maxPages ${this.config.maxPages} reached; ` +
        (this.env.polled === false
          ? `${left} link(s) not fetched: this source is read once (no every or cron), so ` +
            `raise maxPages to fetch them, or poll it`
          : `${left} link(s) left for the next poll`),
    );
  }

  #summary(before: HtmlCounts): void {
    const d = (k: keyof HtmlCounts) => this.counts[k] - before[k];
    if (this.#seen.overLimit > 0) {
      this.env.log.warn(
        `${this.env.flow}: html ${this.#name()}: this poll listed more pages than the ` +
          `${this.#seen.limit.toLocaleString("en-US")} this source remembers: ` +
          `${this.#seen.overLimit} fetched now are not remembered and will be fetched again ` +
          `at the next poll`,
      );
    }
    // A poll that found nothing new says so at debug: at `every: 5s` those lines were nearly
    // all of a flow's log (252 of 268 an hour in a review's run).
    const news = d("items") + d("failed") + d("noArticle") + d("disallowed") + d("paused") > 0;
    const said = `${this.env.flow}: html ${this.#name()}: ${d("fetched")} page(s) fetched, ` +
      `${d("items")} item(s), ${d("alreadySeen")} already seen, ${d("failed")} failed, ` +
      `${d("noArticle")} without an article` +
      (d("disallowed") > 0 ? `, ${d("disallowed")} refused by robots.txt` : "") +
      (d("paused") > 0 ? `, ${d("paused")} left while their host pauses` : "");
    if (news) this.env.log.info(said);
    else this.env.log.debug?.(said);
  }

  /**
   * How many of one host's pages are fetched at once: the HTTP client's
   * per-host concurrency, so that pages waiting for a host's connections
   * or its Retry-After pause do not take every place `concurrency` gives.
   */
  #perHost(): number {
    return httpOf(this.env).perHost?.concurrency ?? Number.POSITIVE_INFINITY;
  }

  /** The source as logs name it: its first URL, masked, and how many more. */
  #name(): string {
    if (this.config.sitemap !== undefined) return maskUrl(this.config.sitemap);
    const urls = urlList(this.config.url ?? []);
    if (urls.length === 0) return pathList(this.config.path).join(", ");
    return maskUrl(urls[0]) + (urls.length > 1 ? ` (+${urls.length - 1})` : "");
  }
}

/**
 * Why a page was skipped, without the fetch's own "GET <url>: " (the
 * warning names the url already; the fetch masked it, so it is matched as
 * any url, not as given).
 */
function skipped(err: unknown, url: string): string {
  return String((err as Error).message ?? err).replace(/^GET \S+: /, "")
    .split(url).join(maskUrl(url));
}

function urlList(url: string | readonly string[]): string[] {
  return typeof url === "string" ? [url] : [...url];
}

/**
 * The URLs, each once by canonical URL, in the first spelling met without
 * its tracking parameters: `a.html?utm_source=x` and `a.html` fetch `a.html`,
 * which robots.txt may allow where it refuses any query.
 */
function unique(urls: string[]): string[] {
  const keys = new SeenPages(Number.POSITIVE_INFINITY);
  const out: string[] = [];
  for (const u of urls) {
    if (keys.has(u)) continue;
    keys.add(u);
    out.push(withoutTracking(u));
  }
  return out;
}
