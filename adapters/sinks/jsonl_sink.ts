import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { DEAD_LETTERS_FILE } from "../../engine/dead_letters.ts";
import { checkContext } from "../../config/check_context.ts";
import { type Envelope, MERGED_FIELDS, type RawItem } from "../../engine/item.ts";
import type { SinkSpec } from "../../engine/registry.ts";
import type { Sink } from "../../engine/sink.ts";
import { IdSet } from "./_id_set.ts";
import { afterDelete, type Standing } from "./_after_delete.ts";
import { fileInTheWay } from "./_file_in_the_way.ts";
import { errorMessage, PermanentError } from "../../engine/errors.ts";
import { jsonWithVector } from "../../engine/vector_json.ts";

/** What a line-per-item sink keeps of an item. */
export interface RecordOptions {
  /** Payload fields to keep; all when absent. */
  fields?: string[];
  /** Whether the item's vector goes in the line. */
  vectors: boolean;
}

/**
 * What a line-per-item sink writes once: an item's id, or for a deleted item
 * `<id>:deleted`, so its tombstone is written once even after the item was.
 */
export function recordKey(item: Envelope<RawItem>): string {
  if (item.update === true) return updateKey(item.id, item.payload.revision);
  return item.payload.deleted === true ? item.id + DELETED_SUFFIX : item.id;
}

/** A merge update is written once per story and revision: `<id>:r<revision>`. */
function updateKey(id: string, revision: unknown): string {
  return `${id}:r${typeof revision === "number" ? revision : 0}`;
}

const DELETED_SUFFIX = ":deleted";

/**
 * One item as one JSON line (newline included): `{id, source, seenAt,
 * payload, vector?}`, or for a deleted item a tombstone `{id, deleted: true,
 * source, seenAt}`, or for a merge update (Envelope.update) `{id, update:
 * true, revision, source, seenAt, payload}` whose payload holds the story's
 * merged fields (sources, engagement, lastSeenAt, revision), which a reader
 * lays over the item's. `id` comes first so a reader can find it without
 * parsing the line (the sink reads the ids of lines other writers appended).
 * A reader folds lines by id: a tombstone removes the item written before it,
 * and the sink writes an item after its tombstone only when it was seen
 * after the delete (see afterDelete).
 */
export function recordLine(item: Envelope<RawItem>, options: RecordOptions): string {
  return recordJson(item, options) + "\n";
}

/**
 * recordLine without its newline: a sink that encodes lines into bytes adds
 * the newline as a byte, since encoding `json + "\n"` first copies the two
 * into one flat string (4.4 KB per demo item, garbage at once). An item JSON
 * cannot hold (a BigInt, a cycle) fails with a PermanentError naming it: no
 * retry can write it, so the stage splits its batch down to it at once.
 */
function recordJson(item: Envelope<RawItem>, options: RecordOptions): string {
  try {
    return itemJson(item, options);
  } catch (error) {
    throw new PermanentError(
      `item ${item.id} cannot be written as JSON: ${errorMessage(error)}`,
      { cause: error },
    );
  }
}

function itemJson(item: Envelope<RawItem>, options: RecordOptions): string {
  if (item.update === true) {
    const { revision } = item.payload;
    const update = {
      id: item.id,
      update: true,
      revision,
      source: item.source,
      seenAt: item.seenAt,
      payload: options.fields ? kept(item.payload, options.fields) : item.payload,
    };
    return JSON.stringify(update);
  }
  if (item.payload.deleted === true) {
    const tombstone = { id: item.id, deleted: true, source: item.source, seenAt: item.seenAt };
    return JSON.stringify(tombstone);
  }
  const payload = options.fields ? kept(item.payload, options.fields) : item.payload;
  return jsonWithVector({
    id: item.id,
    source: item.source,
    seenAt: item.seenAt,
    payload,
    vector: options.vectors ? item.vector : undefined,
  });
}

/** The payload's `fields` that it has. */
function kept(payload: RawItem, fields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) if (f in payload) out[f] = payload[f];
  return out;
}

/**
 * Whether a line-per-item sink writes merge updates (Envelope.update): not
 * when its `fields` keep none of the merged fields, whose update lines would
 * hold nothing the reader asked for.
 */
export function writesUpdates(options: RecordOptions): boolean {
  return options.fields === undefined || options.fields.some((f) => MERGED_FIELDS.includes(f));
}

/** Lines are appended to the end of a file, so a writer never overwrites one it did not write. */
export const jsonlSinkSchema = z.strictObject({
  path: z.string().min(1).check((ctx) => {
    const flow = checkContext();
    if (flow?.durability === "memory" && flow.outDir && isDeadLettersFile(ctx.value, flow.outDir)) {
      ctx.issues.push({ code: "custom", message: deadLettersPath(ctx.value), input: ctx.value });
    }
    if (!flow?.outDir) return;
    const inTheWay = fileInTheWay(dirname(resolve(flow.outDir, ctx.value)));
    // A memory flow's output folder is checked itself (config/check_flow.ts): said there once.
    const saidAtOutput = flow.durability === "memory" && inTheWay !== undefined &&
      fileInTheWay(flow.outDir) === inTheWay;
    if (inTheWay !== undefined && !saidAtOutput) {
      ctx.issues.push({
        code: "custom",
        message: `${ctx.value} cannot be made: ${inTheWay} is a file, not a folder; ` +
          "give the items another path",
        input: ctx.value,
      });
    }
  }).describe("File to append to; a relative path is under the flow's outDir. Required."),
  fields: z.array(z.string().min(1)).min(1).optional()
    .describe("Payload fields to keep in each line; default all of them."),
  vectors: z.boolean().default(true).describe("Write each item's vector; default true."),
}).describe("Appends one JSON line per item to a local file, once per item id.");

export type JsonlSinkConfig = z.output<typeof jsonlSinkSchema>;

/**
 * Appends one JSON line per item, at most once per item id, so a retried
 * batch, a redelivered item, a re-run of the flow over the same file, or
 * another process writing the same file adds nothing twice. It keeps every
 * id of the file in memory (about 100 bytes each), which suits the local
 * files this sink is for.
 *
 * The file is append-only, so a deleted item is written as a tombstone line
 * `{"id":…,"deleted":true,"source":…,"seenAt":…}`, once per id, after the
 * item's own line if it had one; a reader keeps, per id, the last line. A
 * merge update is a line `{"id":…,"update":true,"revision":…,…}`, once per
 * id and revision; a reader lays the payload of the highest revision over
 * the item's.
 *
 * Each batch is written under an exclusive lock on the file (flock, which
 * every JsonlSink on the machine takes, in this process or another): the
 * sink first reads what others appended since it last looked (only those
 * bytes, from the offset it remembers), drops the ids already there, then
 * appends the rest as one string with one write. So processes sharing a
 * file never interleave lines and never write an id twice. The lock is
 * advisory: a writer that does not take it is not kept out.
 *
 * A line cut short by a crash is not counted as written (its item is
 * written again) and is closed off with a newline so it cannot corrupt the
 * next line.
 *
 * The file is append-only, so a publish stage's `retention` does not apply
 * to it (the sink has no `expire`): rotate or prune the file outside millrace.
 * A file renamed away (rotated) or removed is noticed at the next batch,
 * which starts a new file at the path.
 */
export class JsonlSink implements Sink {
  readonly path: string;
  readonly #options: RecordOptions;
  /** Whether merge updates are written (writesUpdates): fixed by the options. */
  readonly updates: boolean;
  readonly #ids = new IdSet();
  /** Where each id the file holds a tombstone of stands (see afterDelete). */
  readonly #standing = new Map<string, Standing>();
  #file?: Deno.FsFile;
  #ready?: Promise<void>;
  #tail: Promise<void> = Promise.resolve();
  /** The batch's lines as UTF-8, reused from batch to batch (writes are one at a time). */
  readonly #bytes = new Utf8Buffer();
  /** Where the lines this sink has not read yet start: every byte before is a line it read. */
  #offset = 0;

  constructor(path: string, options: Partial<RecordOptions> = {}) {
    this.path = path;
    this.#options = { fields: options.fields, vectors: options.vectors ?? true };
    this.updates = writesUpdates(this.#options);
  }

  /** Creates the parent directory and opens the file (the ids in it are read by the first write). */
  open(): Promise<void> {
    // A failed open is not cached: the next write tries again.
    return this.#ready ??= this.#open().catch((error) => {
      this.#ready = undefined;
      throw error;
    });
  }

  /** Appends the items whose ids this file does not hold yet. */
  write(batch: readonly Envelope<RawItem>[], signal: AbortSignal): Promise<void> {
    const run = this.#tail.then(() => this.#append(batch, signal));
    this.#tail = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    await this.#tail;
    this.#file?.close();
    this.#file = undefined;
    this.#ready = undefined;
  }

  /**
   * Whether the path names another file than the one open (rotated by
   * rename, as logrotate does by default, or removed): the open one is then
   * closed, and what was known of it forgotten, so the next write opens the
   * path afresh. Appending to the open one wrote every later line into the
   * rotated file, under its old name.
   */
  async #rotated(): Promise<boolean> {
    const open = await this.#file!.stat();
    const named = await Deno.stat(this.path).catch(() => undefined);
    if (open.ino === null || (named && named.ino === open.ino && named.dev === open.dev)) {
      return false;
    }
    this.#file!.close();
    this.#file = undefined;
    this.#ready = undefined;
    this.#forget();
    return true;
  }

  async #open(): Promise<void> {
    await Deno.mkdir(dirname(this.path), { recursive: true });
    this.#file = await Deno.open(this.path, { read: true, append: true, create: true });
  }

  async #append(batch: readonly Envelope<RawItem>[], signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    await this.open();
    if (await this.#rotated()) await this.open();
    const file = this.#file!;
    await file.lock(true);
    try {
      const { end, torn } = await this.#catchUp(file);
      const out = this.#bytes.clear();
      // A cut line is closed off with a space before its newline, so that it never ends in the
      // brace idOfLine's fast path takes for a whole line: cut just after its payload's "}", a
      // process reading the file later would count its item as written, and never write it.
      if (torn) out.add(torn === "cut" ? " \n" : "\n");
      const fresh: string[] = [];
      const stood: [string, Standing | undefined][] = [];
      // Until the batch is written, its ids are not: an item that cannot be
      // encoded, or a failed write, leaves them all to the retry.
      const unwritten = () => {
        for (const id of fresh) this.#ids.delete(id);
        for (const [id, was] of stood.reverse()) {
          if (was) this.#standing.set(id, was);
          else this.#standing.delete(id);
        }
      };
      try {
        for (const item of batch) {
          if (item.update === true && !this.updates) continue;
          const key = recordKey(item);
          const standing = this.#standing.get(item.id);
          if (item.update === true) {
            // News of a deleted story brings back no part of it: a reader laid its fields
            // over nothing.
            if (this.#ids.has(key) || standing?.deleted) continue;
          } else {
            // An item whose delete the file holds stays out unless seen after it, a delete
            // came first or not (two processes, batches in flight at once, a durable edge
            // that cut an entry): a reader keeps the last line per id.
            const deleted = item.payload.deleted === true;
            const rule = afterDelete(standing, deleted, item.seenAt);
            if (rule === "once") {
              if (this.#ids.has(key)) continue;
              if (deleted) {
                stood.push([item.id, standing]);
                this.#standing.set(item.id, { deleted, at: item.seenAt });
              }
            } else {
              stood.push([item.id, standing]);
              this.#standing.set(item.id, rule.standing);
              if (!rule.write) continue;
            }
          }
          this.#ids.add(key); // a repeat within the batch is skipped too
          fresh.push(key);
          out.add(recordJson(item, this.#options));
          out.newline();
        }
      } catch (error) {
        unwritten();
        throw error;
      }
      if (fresh.length === 0) return;
      const bytes = out.bytes();
      try {
        await writeAll(file, bytes);
        this.#offset = end + bytes.length;
      } catch (error) {
        unwritten();
        // Why goes with it (a full disk): the cause alone reaches no log line or dead letter.
        throw new Error(`jsonl sink: cannot append to ${this.path}: ${errorMessage(error)}`, {
          cause: error,
        });
      }
    } finally {
      await file.unlock();
    }
  }

  /**
   * Reads the lines appended since this sink last looked into #ids. Returns
   * the file's size and whether it ends in a line with no newline: one
   * whole but for it ("whole", counted as written) or cut short ("cut");
   * #offset stays at the start of that line, so once someone closes it off
   * it is read again.
   */
  async #catchUp(
    file: Deno.FsFile,
  ): Promise<{ end: number; torn: "whole" | "cut" | undefined }> {
    const end = (await file.stat()).size;
    if (end < this.#offset) {
      // Truncated or replaced behind our back: what we knew of it is gone.
      this.#forget();
    }
    if (end === this.#offset) return { end, torn: undefined };
    const rest = await readLines(file, this.#offset, end, (line) => this.#read(line));
    this.#offset = end - rest.length;
    if (rest.length === 0) return { end, torn: undefined };
    // A last line whole but for its newline (a crash between the two) counts as written.
    return { end, torn: this.#read(new TextDecoder().decode(rest), true) ? "whole" : "cut" };
  }

  /**
   * Takes in a line of the file: its key, and where its id stands after it
   * when the id was ever deleted. False when it is no line of ours.
   */
  #read(line: string, parsed = false): boolean {
    const key = parsed ? idOfParsedLine(line) : idOfLine(line);
    if (key === undefined) return false;
    this.#ids.add(key);
    if (key.endsWith(DELETED_SUFFIX)) {
      const id = key.slice(0, -DELETED_SUFFIX.length);
      this.#standing.set(id, { deleted: true, at: seenAtOf(line) });
    } else if (this.#standing.has(key)) {
      this.#standing.set(key, { deleted: false, at: seenAtOf(line) });
    }
    return true;
  }

  #forget(): void {
    this.#ids.clear();
    this.#standing.clear();
    this.#offset = 0;
  }
}

/**
 * A line's `seenAt`: the first `"seenAt":` of a line is its own (it comes
 * before the payload, and a string before it holds no bare quote).
 */
function seenAtOf(line: string): number {
  const at = line.indexOf('"seenAt":');
  return at < 0 ? 0 : parseFloat(line.slice(at + 9, at + 40));
}

/**
 * Strings encoded one after another into one growing buffer: each line is
 * encoded where it goes, so a batch costs no joined string (which encoding
 * would flatten and copy) and no new buffer once the first batches grew it;
 * about a quarter less time per line than encoding the batch's string.
 */
class Utf8Buffer {
  #buffer = new Uint8Array(1 << 16);
  #length = 0;
  readonly #encoder = new TextEncoder();

  clear(): this {
    this.#length = 0;
    return this;
  }

  add(text: string): void {
    // A UTF-16 unit takes at most 3 bytes (a surrogate pair's two take 4).
    if (this.#buffer.length - this.#length < text.length * 3) {
      const grown = new Uint8Array(
        Math.max(2 * this.#buffer.length, this.#length + text.length * 3),
      );
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
    }
    this.#length += this.#encoder.encodeInto(text, this.#buffer.subarray(this.#length)).written;
  }

  /** Adds "\n" as one byte (through `add` only when the buffer is full). */
  newline(): void {
    if (this.#length === this.#buffer.length) this.add("\n");
    else this.#buffer[this.#length++] = 0x0a;
  }

  /** What was added since `clear`, valid until the next `add` or `clear`. */
  bytes(): Uint8Array {
    return this.#buffer.subarray(0, this.#length);
  }
}

/**
 * Appends `bytes` in one write call, unless the OS accepts only part of it;
 * `done.written` counts what went in, for a caller whose write failed part-way.
 */
export async function writeAll(
  w: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
  done = { written: 0 },
): Promise<void> {
  while (done.written < bytes.length) done.written += await w.write(bytes.subarray(done.written));
}

const CHUNK = 1 << 20;
const NEWLINE = 10;

/**
 * Hands every complete line in bytes [from, to) of `file` to `read`, a
 * chunk at a time, so a large file costs no more memory than what `read`
 * keeps of it. Returns the bytes after the last newline (a torn line, or none).
 */
async function readLines(
  file: Deno.FsFile,
  from: number,
  to: number,
  read: (line: string) => void,
): Promise<Uint8Array> {
  await file.seek(from, Deno.SeekMode.Start);
  const decoder = new TextDecoder();
  let carry = new Uint8Array(0);
  for (let at = from; at < to;) {
    const chunk = new Uint8Array(Math.min(CHUNK, to - at) + carry.length);
    chunk.set(carry);
    const n = await file.read(chunk.subarray(carry.length));
    if (n === null || n === 0) break;
    at += n;
    const filled = chunk.subarray(0, carry.length + n);
    const last = filled.lastIndexOf(NEWLINE);
    if (last < 0) {
      carry = filled;
      continue;
    }
    for (const line of decoder.decode(filled.subarray(0, last)).split("\n")) read(line);
    carry = filled.slice(last + 1);
  }
  return carry;
}

const ID_PREFIX = '{"id":"';
const TOMBSTONE = '","deleted":true';
const UPDATE = '","update":true';

/**
 * The record key (see recordKey) of a complete line; the fast path reads the
 * prefix our own lines start with.
 */
function idOfLine(line: string): string | undefined {
  if (line.startsWith(ID_PREFIX) && line.endsWith("}")) {
    const end = line.indexOf('"', ID_PREFIX.length);
    if (end > 0) {
      const id = line.slice(ID_PREFIX.length, end);
      if (line.startsWith(UPDATE, end)) return idOfParsedLine(line);
      return line.startsWith(TOMBSTONE, end) ? id + DELETED_SUFFIX : id;
    }
  }
  return idOfParsedLine(line);
}

function idOfParsedLine(line: string): string | undefined {
  try {
    const record = JSON.parse(line);
    const id = record?.id;
    if (typeof id !== "string") return undefined;
    if (record.update === true) return updateKey(id, record.revision);
    return record.deleted === true ? id + DELETED_SUFFIX : id;
  } catch {
    return undefined;
  }
}

/**
 * ```yaml
 * - publish:
 *     - jsonl: { path: items.jsonl, fields: [title, url], vectors: false }
 * ```
 */
export const jsonlSink: SinkSpec<JsonlSinkConfig> = {
  kind: "jsonl",
  summary: "Appends one JSON line per item to a local file, once per item id.",
  schema: jsonlSinkSchema,
  create(config, env) {
    const path = isAbsolute(config.path) ? config.path : join(env.outDir, config.path);
    if (!env.durable && isDeadLettersFile(config.path, env.outDir)) {
      throw new Error(deadLettersPath(config.path));
    }
    return new JsonlSink(path, config);
  },
};

/**
 * Whether a jsonl sink's `path` (relative to `outDir`) is the file a memory
 * flow's dead letters go to, through links too: items written there were
 * read back by `dlq list` as malformed letters. Checked when the flow is,
 * and again when the sink is made (a flow built in code).
 */
function isDeadLettersFile(path: string, outDir: string): boolean {
  // Links are followed only where reading is allowed: a library checking a flow asks no prompt.
  const links = Deno.permissions.querySync({ name: "read" }).state === "granted";
  const real = (p: string): string => {
    if (!links) return p;
    try {
      return Deno.realPathSync(p);
    } catch {
      // Not there yet: its folder's real path, and its own name.
      const dir = dirname(p);
      return dir === p ? p : join(real(dir), basename(p));
    }
  };
  const file = isAbsolute(path) ? path : join(outDir, path);
  return real(resolve(file)) === real(resolve(outDir, DEAD_LETTERS_FILE));
}

function deadLettersPath(path: string): string {
  return `path ${path} is the file this flow's dead letters go to; give the items another`;
}
