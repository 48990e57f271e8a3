import { z } from "zod";
import { bytes, duration } from "../../config/units.ts";
import { itemId, type RawItem } from "../../engine/item.ts";
import { hash128 } from "../../engine/hash.ts";
import { SeenPages } from "./_seen_pages.ts";
import type { BuildEnv, SourceSpec } from "../../engine/registry.ts";
import type { Source } from "../../engine/source.ts";
import { cannotRead, checkFiles, eachFile, pathList, readFiles } from "./_input_files.ts";
import { hnItemUrl, readHnDocument } from "./_hn.ts";
import { atPath, MapCheck, mapJsonItems, mapObject } from "./_json_map.ts";
import { type LinesAt, LineSplitter, readJsonLines, type SkippedLines } from "./_json_lines.ts";
import { newestFullname, redditItems } from "./_reddit.ts";
import { DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_MS } from "../http/http_fetch.ts";
import { httpOf } from "../http/http_client.ts";
import { maskSecretsOf, maskUrl } from "../../engine/mask_url.ts";
import { errorMessage } from "../../engine/errors.ts";
import { gzipProblem } from "./_gzip_body.ts";

/** Where `preset: hackernews` reads when neither path nor url is given. */
export const HN_TOP_STORIES = "https://hacker-news.firebaseio.com/v0/topstories.json";

/** Items of an HN id list fetched at once. */
const HN_CONCURRENCY = 8;

/**
 * The `json` source block of a flow file: JSON files or a JSON API, read
 * through a preset that knows the shape (hackernews, reddit) or through a
 * dot path and field renames (none).
 *
 * @example
 * ```yaml
 * sources:
 *   hn:     { kind: json, preset: hackernews, every: 5m }
 *   golang: { kind: json, preset: reddit, url: "https://www.reddit.com/r/golang/new.json?limit=100", every: 10m }
 *   api:    { kind: json, path: dump.json, items: data.posts, map: { title: headline, url: link } }
 * ```
 */
export const jsonConfig = z
  .strictObject({
    path: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe("A JSON file or a list of them, relative to the flow file. Give path or url."),
    url: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        "An http(s) URL fetched on every poll. Give path or url; with preset hackernews the default is the HN top stories list.",
      ),
    preset: z
      .enum(["hackernews", "reddit", "none"])
      .default("none")
      .describe(
        "The document's shape: hackernews (HN API items or id lists), reddit (Listing JSON) or none (use items and map). Default none.",
      ),
    items: z
      .string()
      .optional()
      .describe(
        "preset none: dot path of the array of items in the document, e.g. data.children (format lines: of the item in each line, e.g. payload). Default: the document (the line) itself.",
      ),
    map: z
      .record(z.string(), z.string().min(1))
      .optional()
      .describe(
        "preset none: item field to source dot path, e.g. { title: headline, url: link }. Default: fields kept as they are.",
      ),
    format: z
      .enum(["document", "lines"])
      .optional()
      .describe(
        "document (one JSON document) or lines (JSON Lines: an object per line, read as a stream). Default: lines for paths ending .jsonl or .ndjson, else document.",
      ),
    limit: z
      .int()
      .positive()
      .default(30)
      .describe(
        "preset hackernews with a url of ids (topstories, newstories): items fetched per poll. Default 30.",
      ),
    timeout: duration({ positive: true })
      .default(DEFAULT_TIMEOUT_MS)
      .describe("Deadline of one request, body included. Default 10s."),
    maxBytes: bytes()
      .default(DEFAULT_MAX_BYTES)
      .describe(
        "Largest response body accepted; a larger one fails the poll. Format lines: also the longest line read (a longer one is skipped). Default 10MiB.",
      ),
  })
  .superRefine((c, ctx) => {
    const issue = (message: string) => ctx.addIssue({ code: "custom", message });
    if (c.path !== undefined && c.url !== undefined) issue("give either path or url, not both");
    if (c.path === undefined && c.url === undefined && c.preset !== "hackernews") {
      issue("give path (JSON files) or url (a JSON API to fetch)");
    }
    if (c.preset !== "none" && (c.items !== undefined || c.map !== undefined)) {
      issue(`items and map apply to preset none; preset ${c.preset} knows its own shape`);
    }
    const paths = pathList(c.path);
    const lines = paths.filter(isLinesPath).length;
    if (c.format === undefined && lines > 0 && lines < paths.length) {
      issue(
        "some paths end .jsonl or .ndjson and some do not: set format: lines or format: document",
      );
    }
    if (formatOf(c) === "lines" && c.preset !== "none") {
      issue(
        `format lines reads an item per line, mapped by map; preset ${c.preset} reads its API's documents`,
      );
    }
  });

/** Whether a path names a JSON Lines file by its extension. */
function isLinesPath(path: string): boolean {
  return /\.(jsonl|ndjson)$/i.test(path);
}

/** The format a config reads: as set, else lines for .jsonl and .ndjson paths (or a URL's path). */
export function formatOf(c: Pick<JsonConfig, "format" | "path" | "url">): "document" | "lines" {
  if (c.format !== undefined) return c.format;
  const url = c.url === undefined ? undefined : URL.parse(c.url);
  const paths = c.path !== undefined ? pathList(c.path) : url ? [url.pathname] : [];
  return paths.length > 0 && paths.every(isLinesPath) ? "lines" : "document";
}

export type JsonConfig = z.output<typeof jsonConfig>;

/** Registers as `kind: json`. */
export const jsonSource: SourceSpec<JsonConfig> = {
  kind: "json",
  summary: "Reads JSON files or APIs: Hacker News and reddit presets, or any array of objects",
  files: "path",
  schema: jsonConfig,
  create: (config, env) => new JsonSource(config, env),
};

/**
 * Items of one parsed JSON document under a preset. `name` (a path or URL)
 * prefixes every error. A Hacker News id list or user profile is not items:
 * it throws here; url mode fetches the ids instead (see the source).
 */
export function jsonItems(
  doc: unknown,
  config: Pick<JsonConfig, "preset" | "items" | "map">,
  name: string,
  warn?: (name: string, message: string) => void,
): RawItem[] {
  switch (config.preset) {
    case "hackernews": {
      const hn = readHnDocument(doc);
      if (hn.kind === "items") return hn.items;
      throw new Error(
        hn.kind === "ids"
          ? `${name}: a list of ${hn.ids.length} Hacker News item ids, not items; give its address as url: to fetch the items`
          : `${name}: ${hn.what}, not Hacker News items`,
      );
    }
    case "reddit": {
      const items = redditItems(doc);
      if (!items) throw new Error(`${name}: not a reddit Listing (nor an array of Listings)`);
      return items;
    }
    default:
      return mapJsonItems(doc, config, name, warn);
  }
}

/**
 * Where a json source stands: a reddit listing, the fullname of the newest
 * thing seen; a polled API or file, the keys of what it sent (see SENT_ITEMS).
 */
export interface JsonPosition {
  before?: string;
  sent?: string[];
  /** JSON Lines files: how far each was read, by its path as the flow gives it. */
  lines?: Record<string, LinesAt>;
}

/** Items per batch of a JSON Lines file: a durable flow stores the file's position with each. */
const LINES_PER_BATCH = 500;

/**
 * Items a polled source remembers having sent, each with its content: an
 * API polled with `every` answers with its current items at every poll
 * (Hacker News its top stories), and an item is sent again only when it
 * changed (its score, its comment count). Unchanged, it would only cost the
 * stages a duplicate, and an item a stage refuses (a job post with no url)
 * would be dead-lettered again at every poll. 2,000 keys are about 38 KB of
 * checkpoint.
 */
const SENT_ITEMS = 2_000;

/**
 * Files are read whole on every read(), but JSON Lines files: those are read
 * as a stream, from where each was read to (the checkpoint), so a restarted
 * source resumes after its last stored batch and a polled one reads the
 * lines appended since its last poll. In url mode a reddit source asks
 * only for what is newer than the newest thing it has seen (`before=`), and
 * a Hacker News id list is followed to its first `limit` items. The
 * `before` cursor is the checkpoint of a reddit URL, so a restarted source
 * carries on from it; other modes re-read their whole input and need no
 * position (undefined).
 */
class JsonSource implements Source {
  /** reddit: fullname of the newest thing seen, for `before=`. */
  #newest?: string;
  /** Polled, JSON Lines files aside: what was sent, with its content (SENT_ITEMS). */
  readonly #sent?: SeenPages;
  /** format lines: an item per line. */
  readonly #lines: boolean;
  /** JSON Lines files: where each was read to (a polled one is read on from there: appended lines). */
  readonly #at = new Map<string, LinesAt>();
  /**
   * Polled JSON Lines files, each held open between polls as last read: a
   * file rotated away (renamed, a new file made at its path) is read to its
   * end before the new one, and once more at the next poll (its writer may
   * write to it until it reopens the path), so the lines written to it
   * after the last poll are not lost. One handle per path the flow names.
   */
  readonly #held = new Map<string, Deno.FsFile>();
  /** Files rotated away at the last poll, with where they were read to: read once more, then let go. */
  readonly #rotated = new Map<string, { file: Deno.FsFile; at: LinesAt | undefined }>();

  /** Files and URLs whose skipped elements were said: once each, not at every poll. */
  readonly #said = new Set<string>();
  readonly #warn = (name: string, message: string): void => {
    if (this.#said.has(name)) return;
    this.#said.add(name);
    this.env.log.warn(`${this.env.flow}: ${message} (said once)`);
  };

  constructor(private readonly config: JsonConfig, private readonly env: BuildEnv) {
    this.#lines = formatOf(config) === "lines";
    this.#mapCheck = config.map ? new MapCheck(config.map) : undefined;
    // A reddit listing's cursor (`before=`) asks only for what is new; what is sent is kept
    // for it too, since a thread page (/comments/<id>) has no cursor, and answers whole.
    const offsets = this.#lines && config.path !== undefined;
    if (env.polled && !offsets) this.#sent = new SeenPages(SENT_ITEMS);
  }

  /** Missing files fail the flow before it starts; a URL is only tried when polled. */
  async check(): Promise<void> {
    await checkFiles(this.config.path, this.env.baseDir);
  }

  checkpoint(): JsonPosition | undefined {
    if (this.#at.size > 0) return { lines: Object.fromEntries(this.#at) };
    const before = this.#newest, sent = this.#sent?.size ? this.#sent.keys() : undefined;
    if (before === undefined && sent === undefined) return undefined;
    return { ...(before === undefined ? {} : { before }), ...(sent ? { sent } : {}) };
  }

  resume(position: unknown): void {
    const { path, preset } = this.config;
    if (this.#lines && path !== undefined) {
      this.close();
      this.#at.clear();
      const lines = (position as JsonPosition | undefined | null)?.lines ?? {};
      for (const [file, at] of Object.entries(lines)) {
        if (!isLinesAt(at)) {
          throw new Error(
            `json ${file}: cannot resume from ${
              JSON.stringify(at)
            }: expected { "offset": <bytes>, "line": <lines> }`,
          );
        }
        this.#at.set(file, at);
      }
      return;
    }
    if (this.#sent) {
      const sent = (position as JsonPosition | undefined | null)?.sent ?? [];
      try {
        this.#sent.restore(sent);
      } catch (error) {
        throw new Error(
          `json ${maskUrl(this.config.url ?? String(path))}: cannot resume from its position: ` +
            `sent: ${(error as Error).message}`,
        );
      }
    }
    if (path !== undefined || preset !== "reddit") return;
    if (position === undefined || position === null) {
      this.#newest = undefined;
      return;
    }
    const before = (position as Partial<JsonPosition>).before;
    // A thread page (/comments/<id>) has no cursor: only what it sent.
    if (before === undefined && Array.isArray((position as Partial<JsonPosition>).sent)) return;
    if (typeof before !== "string" || before === "") {
      throw new Error(
        `json ${maskUrl(this.config.url ?? "")}: cannot resume from ${JSON.stringify(position)}: ` +
          `expected { "before": "<reddit fullname>" }`,
      );
    }
    this.#newest = before;
  }

  async *read(signal: AbortSignal): AsyncIterable<RawItem[]> {
    const { path, url } = this.config;
    if (this.#lines && path !== undefined) {
      yield* this.#readLines(pathList(path), signal);
      return;
    }
    if (path === undefined) {
      const items = this.#changed(await this.#poll(url ?? HN_TOP_STORIES, signal));
      if (items.length) yield items;
      return;
    }
    for await (
      const items of readFiles(
        pathList(path),
        this.env.baseDir,
        signal,
        (bytes, p) => jsonItems(parseJson(bytes, p), this.config, p, this.#warn),
      )
    ) {
      const changed = this.#changed(items);
      if (changed.length) yield changed;
    }
  }

  /** A line's item: the object at `items` (the line itself by default), mapped; or why none. */
  readonly #lineItem = (line: Record<string, unknown>): RawItem | string => {
    const at = this.config.items;
    // A JSONL sink's file holds its stories' merge updates too: news of a story, not one.
    if (at && line.update === true && "payload" in line) {
      return "a merge update of a story written before it, not an item";
    }
    const object = at ? atPath(line, at) : line;
    if (object === null || typeof object !== "object" || Array.isArray(object)) {
      return `no object at "${at}"`;
    }
    this.#mapCheck?.saw(object as Record<string, unknown>);
    return mapObject(object as Record<string, unknown>, this.config.map ?? {});
  };

  /** Which of `map`'s fields the lines read so far lack (see MapCheck). */
  readonly #mapCheck: MapCheck | undefined;

  /**
   * JSON Lines files, each from where it was read to, in batches that carry
   * the file's new position (see checkpoint). One-shot, a file's last line
   * needs no newline; polled, it waits for one, as the writer may be
   * mid-line.
   */
  #readLines(paths: string[], signal: AbortSignal): AsyncGenerator<RawItem[]> {
    return eachFile(
      paths,
      this.env.baseDir,
      signal,
      (full, path) => this.#readLinesOf(full, path, signal),
    );
  }

  async *#readLinesOf(full: string, path: string, signal: AbortSignal): AsyncGenerator<RawItem[]> {
    /**
     * The lines of `file` (the path's, opened, when absent) from the position
     * `held.at`, moved on batch by batch; `name` is the file in what is said of it.
     */
    const read = async function* (
      this: JsonSource,
      name: string,
      held: { at: LinesAt | undefined },
      file?: Deno.FsFile,
      complete: boolean | "ifWhole" = false,
    ) {
      let skipped: SkippedLines = { count: 0 };
      try {
        const batches = readJsonLines(full, held.at, {
          batch: LINES_PER_BATCH,
          maxLine: this.config.maxBytes,
          complete: this.env.polled ? complete : true,
          signal,
          toItem: this.#lineItem,
          file,
          restarted: (was) =>
            this.env.log.warn(
              `${this.env.flow}: ${name} is not the file read to line ${was.line} before ` +
                `(shorter, changed before that line, or another file at that path): read from its start`,
            ),
        });
        for await (const batch of batches) {
          held.at = batch.at;
          skipped = batch.skipped;
          this.#mapCheck?.say(batch.items.length, `${name}: `, "read so far", this.#warn);
          yield batch.items;
        }
      } finally {
        this.#saySkipped(name, skipped);
      }
    }.bind(this);
    // The path's position is the checkpoint's: set before each batch goes out.
    const at = this.#at;
    const atPath = {
      get at() {
        return at.get(path);
      },
      set at(to: LinesAt | undefined) {
        if (to) at.set(path, to);
      },
    };
    const rotatedAway = `${path} (rotated away)`;
    try {
      if (!this.env.polled) return yield* read(path, atPath);
      const away = this.#rotated.get(path);
      if (away) {
        // Rotated away a poll ago: what its writer wrote since, before it moved to the new file.
        this.#rotated.delete(path);
        try {
          yield* read(rotatedAway, away, away.file, true);
        } finally {
          away.file.close();
        }
      }
      let file = this.#held.get(path);
      const rotated = file !== undefined && !await sameFile(file, full);
      if (file && rotated) {
        // Rotated: the old file's lines first, a last one with no newline too when it is a
        // whole object. Its writer may still be on it (until it reopens the path): what it
        // writes to it by the next poll is read then, before the file is let go.
        this.#held.delete(path);
        const left = { file, at: this.#at.get(path) };
        this.#rotated.set(path, left);
        yield* read(rotatedAway, left, file, "ifWhole");
        this.#at.set(path, { offset: 0, line: 0 });
        file = undefined;
      }
      if (!file) {
        try {
          file = await Deno.open(full, { read: true });
        } catch (err) {
          // Between the rename and the new file: the next poll reads it (or says it is missing).
          if (err instanceof Deno.errors.NotFound && rotated) return;
          throw err;
        }
        this.#held.set(path, file);
      }
      yield* read(path, atPath, file);
    } catch (err) {
      if (signal.aborted) throw err;
      throw err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied
        ? cannotRead(path, full, err)
        : new Error(`${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  close(): void {
    for (const file of this.#held.values()) file.close();
    for (const { file } of this.#rotated.values()) file.close();
    this.#held.clear();
    this.#rotated.clear();
  }

  /** Says how many lines of `name` a read skipped, and the first with why. */
  #saySkipped(name: string, skipped: SkippedLines): void {
    if (skipped.count === 0 || !skipped.first) return;
    const { line, why } = skipped.first;
    this.env.log.warn(
      `${this.env.flow}: ${name}: ${skipped.count} ${
        skipped.count === 1 ? "line is" : "lines are"
      } not an item: skipped (the first, line ${line}: ${why})`,
    );
  }

  /** Of a polled source's items, those new or changed since it sent them (all, unpolled). */
  #changed(items: RawItem[]): RawItem[] {
    const sent = this.#sent;
    if (!sent) return items;
    const out: RawItem[] = [];
    for (const item of items) {
      const key = `${itemId(item)} ${hash128(JSON.stringify(item))}`;
      if (!sent.has(key)) out.push(item);
      // Met again, it is the newest again: what the API still lists is never forgotten.
      sent.add(key);
    }
    return out;
  }

  async #poll(url: string, signal: AbortSignal): Promise<RawItem[]> {
    const preset = this.config.preset;
    if (this.#lines) {
      const lines = new LineSplitter(
        { offset: 0, line: 0 },
        this.config.maxBytes,
        this.#lineItem,
      );
      lines.feed(await this.#body(url, signal), Infinity);
      lines.end(true);
      this.#saySkipped(maskUrl(url), lines.skipped);
      const items = lines.take();
      this.#mapCheck?.say(items.length, `${maskUrl(url)}: `, "read so far", this.#warn);
      return items;
    }
    const target = preset === "reddit" ? this.#redditUrl(url) : url;
    const doc = await this.#get(target, signal);
    if (preset === "reddit") {
      const items = jsonItems(doc, this.config, maskUrl(target));
      this.#newest = newestFullname(doc) ?? this.#newest;
      return items;
    }
    if (preset === "hackernews") {
      const hn = readHnDocument(doc);
      if (hn.kind === "ids") {
        return await this.#hnItems(url, hn.ids.slice(0, this.config.limit), signal);
      }
    }
    return jsonItems(doc, this.config, maskUrl(target), this.#warn);
  }

  /** Adds raw_json=1 (text without HTML escapes) and the `before=` cursor. */
  #redditUrl(url: string): string {
    const u = new URL(url);
    if (!u.searchParams.has("raw_json")) u.searchParams.set("raw_json", "1");
    if (this.#newest) u.searchParams.set("before", this.#newest);
    return u.href;
  }

  /** Fetches the items of an id list, a few at a time; an item that fails is logged and skipped. */
  async #hnItems(listUrl: string, ids: number[], signal: AbortSignal): Promise<RawItem[]> {
    const items: RawItem[] = [];
    const failures: unknown[] = [];
    for (let i = 0; i < ids.length; i += HN_CONCURRENCY) {
      const docs = await Promise.allSettled(
        ids.slice(i, i + HN_CONCURRENCY).map((id) => this.#get(hnItemUrl(listUrl, id), signal)),
      );
      signal.throwIfAborted();
      for (const d of docs) {
        if (d.status === "rejected") failures.push(d.reason);
        else {
          const hn = readHnDocument(d.value);
          if (hn.kind === "items") items.push(...hn.items);
        }
      }
    }
    if (failures.length && failures.length === ids.length) throw failures[0];
    if (failures.length) {
      // One line a poll, with the count: a line per item, each an "Error: …" in a JSON blob,
      // said neither how many of the list were left nor that they are asked for again.
      this.env.log.warn(
        `${this.env.flow}: ${failures.length} of the ${ids.length} Hacker News items listed ` +
          `could not be fetched, ${
            this.env.polled ? "asked for again at the next poll" : "left out of this read"
          } (the first: ${errorMessage(failures[0])})`,
      );
    }
    return items;
  }

  async #get(url: string, signal: AbortSignal): Promise<unknown> {
    return parseJson(await this.#body(url, signal), maskUrl(url));
  }

  async #body(url: string, signal: AbortSignal): Promise<Uint8Array> {
    let res;
    try {
      res = await httpOf(this.env).get(url, {
        timeout: this.config.timeout,
        maxBytes: this.config.maxBytes,
        headers: { accept: "application/json" },
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw err;
      // Fetch errors quote the URL as given, password and all.
      throw new Error(maskSecretsOf((err as Error)?.message ?? String(err), url), { cause: err });
    }
    const gzip = gzipProblem(res.body);
    if (gzip) throw new Error(`${maskUrl(url)}: ${gzip}`);
    return res.body;
  }
}

/** Whether a stored position of a JSON Lines file is one. */
function isLinesAt(at: unknown): at is LinesAt {
  const { offset, line, ino, tail } = (at ?? {}) as Partial<LinesAt>;
  const count = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  return count(offset) && count(line) && (ino === undefined || typeof ino === "number") &&
    (tail === undefined || typeof tail === "string");
}

/**
 * JSON is UTF-8 (RFC 8259; a BOM is dropped). A body that is gzip bytes
 * nothing decompressed says so rather than "not valid JSON".
 */
function parseJson(bytes: Uint8Array, name: string): unknown {
  const gzip = gzipProblem(bytes);
  if (gzip) throw new Error(`${name}: ${gzip}`);
  let text: string;
  try {
    text = new TextDecoder().decode(bytes);
  } catch (err) {
    // Past about 512 MB no string can hold it: a valid file was said to be "not valid JSON".
    throw new Error(
      `${name}: ${bytes.length.toLocaleString("en-US")} bytes, too large to read as one JSON ` +
        `document (${(err as Error).message}): split it into files of a few hundred MB`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${name}: not valid JSON (${(err as Error).message})`);
  }
}

/**
 * Whether `file` is still the file at `full` (the same inode, where the
 * system gives one): a file renamed away and replaced at its path is not;
 * a path with no file yet (between rename and create) is not either.
 */
async function sameFile(file: Deno.FsFile, full: string): Promise<boolean> {
  const held = (await file.stat()).ino;
  if (held === null || held === undefined) return true;
  try {
    return (await Deno.stat(full)).ino === held;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
