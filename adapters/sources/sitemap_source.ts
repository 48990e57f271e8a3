import { z } from "zod";
import { bytes, duration, parseDuration } from "../../config/units.ts";
import type { RawItem } from "../../engine/item.ts";
import { maskUrl } from "../../engine/mask_url.ts";
import type { BuildEnv, SourceSpec } from "../../engine/registry.ts";
import type { Source } from "../../engine/source.ts";
import { httpOf } from "../http/http_client.ts";
import {
  keptMarks,
  marksIn,
  marksOut,
  sitemapUrls,
  type SitemapWalk,
  stampsIn,
  walkWarnings,
} from "./_sitemap.ts";

export { sitemapUrls } from "./_sitemap.ts";
export type { SitemapOptions, SitemapUrl, SitemapWalk } from "./_sitemap.ts";

/** The protocol's largest sitemap: 50 MB (52,428,800 bytes) uncompressed. */
export const SITEMAP_MAX_BYTES = 52_428_800;

/** URLs per batch the source yields. */
const BATCH = 1000;

/**
 * The `sitemap` source block of a flow file: the pages a site lists in its
 * sitemap (or sitemap index, gzipped or not), one item per page, and on
 * later polls only the pages whose `<lastmod>` moved.
 *
 * @example
 * ```yaml
 * sources:
 *   site: { kind: sitemap, url: https://example.com/sitemap.xml, cron: "0 * * * *", since: 7d }
 * ```
 */
export const sitemapConfig = z.strictObject({
  url: z.url({ protocol: /^https?$/ })
    .describe("The sitemap or sitemap index to read (.xml or .xml.gz). Required."),
  since: z.string({
    error: (iss) =>
      `expected a duration such as 7d or a date such as 2026-01-31, got ${
        JSON.stringify(iss.input)
      }`,
  })
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms !== undefined) return { ago: ms, at: undefined };
      const at = /^\d{4}-\d\d-\d\d/.test(v.trim()) ? Date.parse(v) : NaN;
      if (Number.isFinite(at)) return { ago: undefined, at };
      ctx.addIssue({
        code: "custom",
        message: `expected a duration such as 7d or a date such as 2026-01-31, got ${
          JSON.stringify(v)
        }`,
      });
      return z.NEVER;
    })
    .optional()
    .describe(
      "First poll only: emit pages changed at or after this date (2026-01-31), or this long before the poll (7d). Later polls emit what changed since the newest lastmod seen. Default: every page.",
    ),
  timeout: duration({ positive: true }).default(30_000)
    .describe("Deadline of each sitemap fetch, body included. Default 30s."),
  maxBytes: bytes().default(SITEMAP_MAX_BYTES)
    .describe(
      "Largest sitemap accepted, after gunzip; a larger one fails the poll. Default 50MB (the protocol's limit).",
    ),
  maxSitemaps: z.int().positive().default(1000)
    .describe(
      "Most sitemap documents one poll reads, the index included; more fails the poll. Default 1000.",
    ),
  maxDepth: z.int().min(0).default(3)
    .describe(
      "Most levels of sitemap indexes above the pages (0: url must be a urlset). Default 3.",
    ),
});

export type SitemapConfig = z.output<typeof sitemapConfig>;

/** Registers as `kind: sitemap`. */
export const sitemapSource: SourceSpec<SitemapConfig> = {
  kind: "sitemap",
  summary:
    "Lists a site's pages from its sitemap or sitemap index (gzip too); when polled, only pages whose lastmod moved",
  schema: sitemapConfig,
  create: (config, env) => new SitemapSource(config, env),
};

/**
 * Where a sitemap source stands: the newest lastmod it has seen, ISO 8601,
 * and each sitemap document's own (SitemapOptions.marks).
 */
export interface SitemapPosition {
  since: string;
  sitemaps?: Record<string, string>;
  /** What each index said of each child sitemap (SitemapOptions.stamps). */
  stamps?: Record<string, string>;
}

/**
 * Walks the sitemap on every read and yields `{ url, title, lastmod }` per
 * page. Its position is the newest lastmod seen in the last complete walk
 * (the site's clock, not ours, so a clock skewed against ours or a sitemap
 * slow to regenerate loses nothing), capped at the time of the walk so one lastmod in the
 * future cannot hide every later change. A poll emits the pages whose
 * lastmod is at or after it: a lastmod often carries only a date, and a page
 * changed later the same day must not be missed, so the newest day's pages
 * come again (dedupe drops them). Pages without a lastmod come on every
 * poll: nothing says they are old. It keeps marks, not the pages it has
 * seen: a page added with a lastmod before its sitemap's mark (a post
 * backdated) is taken for an old one (README says so).
 */
class SitemapSource implements Source {
  /** The newest lastmod of the last complete walk (ms). */
  #since?: number;
  /** Each sitemap document's mark at the last complete walk; undefined before one (or an old position). */
  #marks?: Map<string, number>;
  /** What each index said of each child sitemap at the last complete walk. */
  #stamps?: Map<string, string>;
  /** Warnings of walks said already (walkWarnings). */
  readonly #said = new Set<string>();

  constructor(private readonly config: SitemapConfig, private readonly env: BuildEnv) {}

  checkpoint(): SitemapPosition | undefined {
    if (this.#since === undefined) return undefined;
    const sitemaps = this.#marks && marksOut(this.#marks);
    const stamps = this.#stamps?.size ? Object.fromEntries(this.#stamps) : undefined;
    return {
      since: new Date(this.#since).toISOString(),
      ...(sitemaps ? { sitemaps } : {}),
      ...(stamps ? { stamps } : {}),
    };
  }

  resume(position: unknown): void {
    if (position === undefined || position === null) {
      this.#since = undefined;
      this.#marks = undefined;
      this.#stamps = undefined;
      return;
    }
    const since = (position as SitemapPosition).since;
    const ms = typeof since === "string" ? Date.parse(since) : NaN;
    let marks: Map<string, number> | undefined, stamps: Map<string, string> | undefined;
    try {
      if (typeof position !== "object" || !Number.isFinite(ms)) throw new Error("");
      marks = marksIn((position as SitemapPosition).sitemaps);
      stamps = stampsIn((position as SitemapPosition).stamps);
    } catch {
      throw new Error(
        `sitemap ${maskUrl(this.config.url)}: cannot resume from ${JSON.stringify(position)}: ` +
          `expected { "since": "<ISO 8601 date>", "sitemaps"?: { "<url>": "<ISO 8601 date>" } }`,
      );
    }
    this.#since = ms;
    this.#marks = marks;
    this.#stamps = stamps;
  }

  /**
   * The position moves only once a walk completes: a walk cut short (a
   * child sitemap that failed, a stop) is done again from the old one. The last
   * batch is yielded after it moved, so the position is stored with it;
   * when that batch would be empty, an empty batch carries it.
   */
  async *read(signal: AbortSignal): AsyncIterable<RawItem[]> {
    const started = Date.now();
    const first = this.config.since;
    const cutoff = first === undefined
      ? undefined
      : first.ago !== undefined
      ? started - first.ago
      : first.at;
    // With marks per sitemap, one not read before is held to the first poll's cutoff only (a
    // new month's sitemap is news); a position from before marks holds all to its one mark.
    const since = this.#marks ? cutoff : this.#since ?? cutoff;
    const walk = sitemapUrls(this.config.url, {
      http: httpOf(this.env),
      timeout: this.config.timeout,
      maxBytes: this.config.maxBytes,
      maxSitemaps: this.config.maxSitemaps,
      maxDepth: this.config.maxDepth,
      since,
      marks: this.#marks,
      ...(this.#stamps && this.#since !== undefined
        ? { stamps: { of: this.#stamps, before: this.#since } }
        : {}),
      batchSize: BATCH,
      signal,
    });
    let held: RawItem[] | undefined;
    let done: SitemapWalk;
    for (;;) {
      const next = await walk.next();
      if (next.done) {
        done = next.value;
        break;
      }
      if (held) yield held;
      held = next.value.map((u) => ({
        url: u.url,
        title: u.url,
        ...(u.lastmod !== undefined ? { lastmod: u.lastmod } : {}),
      }));
    }
    for (const warning of walkWarnings(done, this.config.url, this.#said)) {
      this.env.log.warn(`${this.env.flow}: ${warning}`);
    }
    const before = JSON.stringify(this.checkpoint());
    // A child sitemap that failed may hold pages (one the site has lost, a 404, holds none): it
    // keeps its mark, and so do the sitemaps it lists, unread; the overall mark stays, but on a
    // first poll, which must keep the marks it moved (a restart emitted every page again). The
    // sitemaps read move on: held back, each poll emitted their every page again.
    const incomplete = done.failed.some((f) => !f.gone);
    const marks = incomplete ? new Map([...(this.#marks ?? []), ...done.marks]) : done.marks;
    if (incomplete && !this.#marks && this.#since !== undefined) {
      // A position from before marks held every sitemap to its one mark: a failed child keeps it.
      for (const f of done.failed) if (!marks.has(f.url)) marks.set(f.url, this.#since);
    }
    // Never behind this walk's own cutoff: the first poll's `since: 7d` over
    // a sitemap of old pages would leave the position at their old lastmod,
    // and the next poll would emit them all.
    if (done.newest !== undefined && (!incomplete || this.#since === undefined)) {
      this.#since = Math.max(this.#since ?? since ?? -Infinity, Math.min(done.newest, started));
    }
    this.#marks = keptMarks(marks, started, since);
    this.#stamps = done.stamps;
    if (held) yield held;
    else if (JSON.stringify(this.checkpoint()) !== before) yield [];
  }
}
