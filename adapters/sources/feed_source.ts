import { z } from "zod";
import { bytes, duration } from "../../config/units.ts";
import { itemId, type RawItem } from "../../engine/item.ts";
import type { BuildEnv, SourceSpec } from "../../engine/registry.ts";
import type { Source } from "../../engine/source.ts";
import { checkFiles, pathList, readFiles } from "./_input_files.ts";
import { charsetOf, isKnownCharset } from "./_decode_xml.ts";
import { maskSecretsOf, maskUrl, withoutSecretParams } from "../../engine/mask_url.ts";
import { parseFeed } from "./_parse_feed.ts";
import { SeenPages } from "./_seen_pages.ts";
import { DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_MS } from "../http/http_fetch.ts";
import { httpOf } from "../http/http_client.ts";

export { parseFeed } from "./_parse_feed.ts";
export type { ParseFeedOptions } from "./_parse_feed.ts";

/**
 * The `rss` source block of a flow file. One kind reads RSS 2.0, RSS 1.0
 * (RDF) and Atom alike: which one a document is shows in its root element.
 *
 * @example
 * ```yaml
 * sources:
 *   blog:   { kind: rss, url: https://example.com/feed.xml, every: 15m }
 *   sample: { kind: rss, path: [feeds/a.rss, feeds/b.atom], baseUrl: https://example.com/ }
 *   legacy: { kind: rss, url: https://example.org/rss.php, charset: windows-1252 }
 * ```
 */
export const feedConfig = z
  .strictObject({
    path: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe(
        "A feed file or a list of them, relative to the flow file. Give path or url. No default.",
      ),
    url: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        "An http(s) URL to fetch the feed from on every poll. Give path or url. No default.",
      ),
    baseUrl: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        "Resolves relative entry links. Default: the feed URL (after redirects), else the feed's own absolute link.",
      ),
    charset: z
      .string()
      .refine(isKnownCharset, {
        message: "not an encoding label TextDecoder knows (e.g. utf-8, iso-8859-1, windows-1252)",
      })
      .optional()
      .describe(
        "Reads the feed in this encoding whatever it declares. Default: byte-order mark, then the XML declaration, then the HTTP charset, then UTF-8 if valid, else windows-1252 with a warning.",
      ),
    timeout: duration({ positive: true })
      .default(DEFAULT_TIMEOUT_MS)
      .describe("Deadline of one fetch, body included (url only). Default 10s."),
    maxBytes: bytes()
      .default(DEFAULT_MAX_BYTES)
      .describe(
        "Largest feed body accepted; a larger one fails the poll (url only). Default 10MiB.",
      ),
  })
  .refine((c) => (c.path === undefined) !== (c.url === undefined), {
    message: "give either path (feed files) or url (a feed to fetch), not both and not neither",
  });

export type FeedConfig = z.output<typeof feedConfig>;

/** Registers as `kind: rss`. */
export const feedSource: SourceSpec<FeedConfig> = {
  kind: "rss",
  summary:
    "Reads RSS 2.0, RSS 1.0 and Atom feeds from files or a URL (conditional GET when polled)",
  files: "path",
  schema: feedConfig,
  create: (config, env) => new FeedSource(config, env),
};

/** Where a feed URL stands: the validators of its last answer, for a conditional GET. */
export interface FeedPosition {
  etag?: string;
  lastModified?: string;
  /** Keys of the items already emitted (see _seen_pages.ts), oldest first. */
  seen?: string[];
}

/**
 * Items of a polled feed remembered as emitted: a feed re-sends its last
 * 10 to 100 items (730 in the largest fixture) with every change, and each
 * should go downstream once (else an item a stage refuses would be
 * dead-lettered again at every poll). The same for feed files read again
 * at every poll (`path` with `every` or `cron`). 2,000 keys are about 38 KB
 * of checkpoint.
 */
const SEEN_ITEMS = 2_000;

/**
 * Files are read whole on every read(). A URL is fetched with
 * If-None-Match / If-Modified-Since from the previous answer, so a poll of
 * an unchanged feed costs the server a 304 and yields nothing. Those
 * validators are its checkpoint, so a restarted source still asks
 * conditionally. Polled, its items already emitted are its checkpoint too,
 * files' as well; files read once need no position (undefined).
 */
class FeedSource implements Source {
  #etag?: string;
  #lastModified?: string;
  readonly #seen = new SeenPages(SEEN_ITEMS);

  constructor(private readonly config: FeedConfig, private readonly env: BuildEnv) {}

  /**
   * Warnings logged so far, counts and quoted examples left out: a feed
   * polled every minute says each once, whatever its first bad date or
   * relative link is this time.
   */
  readonly #warned = new Set<string>();

  /** Logs what was read but may be wrong; messages name the feed, its URL masked. */
  #warn = (message: string): void => {
    // The file or URL the message starts with is kept whole: feed1.xml's problem is not feed2's.
    const at = message.indexOf(": ");
    const kind = message.slice(0, at + 1) +
      message.slice(at + 1).replace(/"(?:[^"\\]|\\.)*"/g, '"…"').replace(/\d+/g, "#");
    if (this.#warned.has(kind)) return;
    this.#warned.add(kind);
    this.env.log.warn(`${this.env.flow}: ${message}`);
  };

  /** Missing files fail the flow before it starts; a URL is only tried when polled. */
  async check(): Promise<void> {
    await checkFiles(this.config.path, this.env.baseDir);
  }

  /** Whether items already emitted are left out: a URL's, or files read at every poll. */
  get #remembers(): boolean {
    return this.config.url !== undefined || this.env.polled === true;
  }

  checkpoint(): FeedPosition | undefined {
    if (!this.#remembers || (!this.#etag && !this.#lastModified && !this.#seen.size)) {
      return undefined;
    }
    const position: FeedPosition = {};
    if (this.#etag) position.etag = this.#etag;
    if (this.#lastModified) position.lastModified = this.#lastModified;
    if (this.#seen.size) position.seen = this.#seen.keys();
    return position;
  }

  resume(position: unknown): void {
    if (!this.#remembers) return;
    if (position === undefined || position === null) position = {};
    const { etag, lastModified, seen } = position as FeedPosition;
    const bad = () =>
      new Error(
        `rss ${maskUrl(this.config.url ?? String(this.config.path))}: cannot resume from ${
          JSON.stringify(position).slice(0, 200)
        }: expected { "etag"?: string, "lastModified"?: string, "seen"?: string[] }`,
      );
    if (
      typeof position !== "object" ||
      (etag !== undefined && typeof etag !== "string") ||
      (lastModified !== undefined && typeof lastModified !== "string")
    ) {
      throw bad();
    }
    try {
      this.#seen.restore(seen ?? []);
    } catch {
      throw bad();
    }
    this.#etag = etag;
    this.#lastModified = lastModified;
  }

  async *read(signal: AbortSignal): AsyncIterable<RawItem[]> {
    if (this.config.url) {
      const items = await this.#poll(this.config.url, signal);
      if (items.length) yield items;
      return;
    }
    const files = readFiles(
      pathList(this.config.path),
      this.env.baseDir,
      signal,
      (doc, path) =>
        parseFeed(doc, {
          name: path,
          baseUrl: this.config.baseUrl,
          forceCharset: this.config.charset,
          onWarning: this.#warn,
        }),
    );
    for await (const items of files) {
      const fresh = this.#remembers ? this.#fresh(items) : items;
      if (fresh.length) yield fresh;
    }
  }

  /**
   * The items not emitted before. Each one read is marked newest again, so
   * what the feed still lists is never forgotten.
   */
  #fresh(items: RawItem[]): RawItem[] {
    const fresh = items.filter((item) => !this.#seen.has(itemId(item)));
    for (const item of items) this.#seen.add(itemId(item));
    return fresh;
  }

  async #poll(url: string, signal: AbortSignal): Promise<RawItem[]> {
    const headers: Record<string, string> = {
      accept:
        "application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1",
    };
    if (this.#etag) headers["if-none-match"] = this.#etag;
    if (this.#lastModified) headers["if-modified-since"] = this.#lastModified;
    const name = maskUrl(url);
    let res;
    try {
      res = await httpOf(this.env).get(url, {
        timeout: this.config.timeout,
        maxBytes: this.config.maxBytes,
        headers,
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw err;
      // Fetch errors quote the URL as given, password and all.
      throw new Error(maskSecretsOf((err as Error)?.message ?? String(err), url), { cause: err });
    }
    if (res.status === 304) {
      if (!this.#etag && !this.#lastModified) {
        this.#warn(
          `${name}: answered 304 Not Modified to a request that was not conditional ` +
            `(no If-None-Match, no If-Modified-Since): a cache or proxy in between misbehaves; 0 items`,
        );
      }
      return [];
    }
    let lost = false;
    const items = await parseFeed(res.body, {
      name,
      onLoss: () => lost = true,
      // Without the token it was fetched with: a link that is only "#a1" keeps its base's query.
      baseUrl: this.config.baseUrl ?? withoutSecretParams(res.url),
      charset: charsetOf(res.headers.get("content-type")),
      forceCharset: this.config.charset,
      onWarning: this.#warn,
    });
    // Remember validators only once the body parsed whole, so a bad answer is fetched again:
    // one cut short and read up to its last whole item was answered 304 ever after, its other
    // items never read.
    this.#etag = lost ? undefined : res.headers.get("etag") ?? undefined;
    this.#lastModified = lost ? undefined : res.headers.get("last-modified") ?? undefined;
    return this.#fresh(items);
  }
}
