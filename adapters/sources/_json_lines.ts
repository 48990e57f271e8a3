import type { RawItem } from "../../engine/item.ts";
import { hash128 } from "../../engine/hash.ts";
import { gzipProblem } from "./_gzip_body.ts";

/**
 * Where a JSON Lines file was read to: the byte just past the last line
 * taken, and how many lines that was (for line numbers in warnings), with
 * the file's inode when the system gives one, so a file replaced at the
 * same path (rotated) is read from its start.
 */
export interface LinesAt {
  offset: number;
  line: number;
  ino?: number;
  /**
   * A hash of the bytes just before `offset` (up to TAIL of them): a file
   * truncated and written again past the position, or another file given
   * the same inode, no longer holds them there, and is read from its start.
   */
  tail?: string;
}

/** Bytes before a position that its `tail` hashes. */
const TAIL = 64;

/** What a read of lines skipped: how many, and the first with why. */
export interface SkippedLines {
  count: number;
  first?: { line: number; why: string };
}

/** Bytes read from a file at a time. */
const CHUNK = 256 * 1024;

const NEWLINE = 0x0a;

/**
 * Splits bytes fed in chunks into JSON Lines and turns each into an item,
 * in batches. Works on bytes, so every position it reports is a byte offset
 * a reader can seek to. A line that is blank is passed over; one that is
 * not a JSON object, not UTF-8, or longer than `maxLine` bytes is skipped
 * and tallied (never held whole: a longer line is dropped as it streams by).
 */
export class LineSplitter {
  readonly skipped: SkippedLines = { count: 0 };
  #items: RawItem[] = [];
  #rest: Uint8Array[] = [];
  #restBytes = 0;
  /** The line under way is longer than maxLine: dropped up to its newline. */
  #overlong = false;
  readonly #decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

  constructor(
    /** The position of the first byte fed, moved on (in place) as lines are taken. */
    readonly at: LinesAt,
    readonly maxLine: number,
    /** The line's item, or why the line holds none. */
    readonly toItem: (object: Record<string, unknown>) => RawItem | string,
  ) {}

  /**
   * Takes lines from `chunk` until `limit` items are pending; returns the
   * bytes it used (all of them, a partial last line kept for the next chunk,
   * unless it stopped at the limit).
   */
  feed(chunk: Uint8Array, limit: number): number {
    let start = 0;
    while (this.#items.length < limit) {
      const nl = chunk.indexOf(NEWLINE, start);
      if (nl < 0) break;
      this.#line(chunk.subarray(start, nl), nl - start + 1);
      start = nl + 1;
    }
    if (this.#items.length >= limit) return start;
    if (start < chunk.length) this.#keep(chunk.subarray(start));
    return chunk.length;
  }

  /**
   * The file ended: a last line with no newline is a line (a one-shot
   * read), or left for later; `ifWhole`, a line when it is a whole JSON
   * object (a writer mid-line has written no such prefix of a line).
   */
  end(complete: boolean | "ifWhole"): void {
    if (this.#restBytes === 0 && !this.#overlong) return;
    if (complete === "ifWhole" ? !this.#restIsObject() : !complete) return;
    this.#line(new Uint8Array(0), 0);
  }

  #restIsObject(): boolean {
    if (this.#overlong) return false;
    try {
      const value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(this.#joined()));
      return value !== null && typeof value === "object" && !Array.isArray(value);
    } catch {
      return false;
    }
  }

  /** The items of the lines taken since the last call. */
  take(): RawItem[] {
    const items = this.#items;
    this.#items = [];
    return items;
  }

  get pending(): number {
    return this.#items.length;
  }

  #keep(part: Uint8Array): void {
    if (this.#overlong) {
      this.#restBytes += part.length;
      return;
    }
    this.#rest.push(part.slice());
    this.#restBytes += part.length;
    if (this.#restBytes > this.maxLine) {
      this.#overlong = true;
      this.#rest = [];
    }
  }

  /** The parts of the line under way kept so far, then `tail`, in one buffer. */
  #joined(tail: Uint8Array = new Uint8Array(0)): Uint8Array {
    const line = new Uint8Array(this.#restBytes + tail.length);
    let at = 0;
    for (const part of this.#rest) {
      line.set(part, at);
      at += part.length;
    }
    line.set(tail, at);
    return line;
  }

  /** A line ends: `tail` is its last part, `consumed` the bytes of it (newline included) in this chunk. */
  #line(tail: Uint8Array, consumed: number): void {
    const bytes = this.#restBytes + consumed;
    const length = this.#restBytes + tail.length;
    const overlong = this.#overlong || length > this.maxLine;
    const line = !overlong && this.#rest.length > 0 ? this.#joined(tail) : tail;
    this.#rest = [];
    this.#restBytes = 0;
    this.#overlong = false;
    const number = ++this.at.line;
    this.at.offset += bytes;
    if (overlong) return this.#skip(number, `longer than ${this.maxLine} bytes (maxBytes)`);
    let text: string;
    try {
      // A BOM at the line's start (the file's) is dropped: each decode is a stream of its own.
      text = this.#decoder.decode(line);
    } catch {
      return this.#skip(number, "not UTF-8");
    }
    if (text.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return this.#skip(number, `not valid JSON (${(err as Error).message})`);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      const shown = text.length > 60 ? text.slice(0, 60) + "…" : text;
      return this.#skip(number, `not an object (${shown.trim()})`);
    }
    const item = this.toItem(value as Record<string, unknown>);
    if (typeof item === "string") return this.#skip(number, item);
    this.#items.push(item);
  }

  #skip(line: number, why: string): void {
    this.skipped.count++;
    this.skipped.first ??= { line, why };
  }
}

/**
 * Reads the JSON Lines file at `full` from `from`, yielding batches of up
 * to `batch` items, each with where the file was read to after it: a reader
 * that stores that position with the batch resumes after it, losing and
 * repeating no line. The last batch may be empty, to carry the position
 * past trailing lines that held no item. `complete` reads a last line that
 * has no newline; a polled file leaves it, as its writer may be mid-line.
 * A file smaller than the position, another file at the path (another
 * inode), or one that no longer holds the bytes the position ends with
 * (truncated and written again, or replaced under the same inode) is read
 * from its start (`restarted` says so). A gzip file is refused: it is not
 * lines of text.
 */
export async function* readJsonLines(
  full: string,
  from: LinesAt | undefined,
  opts: {
    batch: number;
    maxLine: number;
    /** Whether a last line with no newline is a line: see LineSplitter.end. */
    complete: boolean | "ifWhole";
    signal: AbortSignal;
    toItem: (object: Record<string, unknown>) => RawItem | string;
    restarted?: (was: LinesAt) => void;
    /** The file, opened by the caller, who closes it (a polled source holds it between polls). */
    file?: Deno.FsFile;
  },
): AsyncGenerator<{ items: RawItem[]; at: LinesAt; skipped: SkippedLines }> {
  using opened = opts.file ? null : await Deno.open(full, { read: true });
  const file = opts.file ?? opened!;
  const stat = await file.stat();
  const ino = stat.ino ?? undefined;
  /** Where the file is read to (what its reads have taken so far). */
  let read = 0;
  /** The hash of the TAIL bytes before `offset`, read apart (the file is read on after it). */
  const tailAt = async (offset: number): Promise<string | undefined> => {
    const n = Math.min(TAIL, offset);
    if (n === 0) return undefined;
    const bytes = new Uint8Array(n);
    await file.seek(offset - n, Deno.SeekMode.Start);
    let got = 0;
    while (got < n) {
      const r = await file.read(bytes.subarray(got));
      if (r === null) break;
      got += r;
    }
    await file.seek(read, Deno.SeekMode.Start);
    return got === n ? hash128(String.fromCharCode(...bytes)) : "";
  };
  let at: LinesAt = { offset: 0, line: 0, ...(ino !== undefined ? { ino } : {}) };
  if (from !== undefined) {
    const same = (from.ino === undefined || ino === undefined || from.ino === ino) &&
      from.offset <= stat.size &&
      (from.tail === undefined || await tailAt(from.offset) === from.tail);
    if (same) at = { ...from, ...(ino !== undefined ? { ino } : {}) };
    else opts.restarted?.(from);
  }
  read = at.offset;
  await file.seek(at.offset, Deno.SeekMode.Start); // a held file is where its last read left it
  const lines = new LineSplitter(at, opts.maxLine, opts.toItem);
  const buffer = new Uint8Array(CHUNK);
  const position = async () => ({ ...lines.at, tail: await tailAt(lines.at.offset) });
  let told = at.offset; // the position the last yielded batch carried
  for (;;) {
    opts.signal.throwIfAborted();
    const n = await file.read(buffer);
    if (n === null) break;
    if (read === 0) {
      const gzip = gzipProblem(buffer.subarray(0, n));
      if (gzip) throw new Error(gzip);
    }
    read += n;
    let view = buffer.subarray(0, n);
    for (;;) {
      const used = lines.feed(view, opts.batch);
      if (lines.pending >= opts.batch) {
        yield { items: lines.take(), at: await position(), skipped: lines.skipped };
        told = lines.at.offset;
      }
      if (used === view.length) break;
      view = view.subarray(used);
    }
  }
  lines.end(opts.complete);
  if (lines.pending > 0 || lines.at.offset !== told) {
    yield { items: lines.take(), at: await position(), skipped: lines.skipped };
  }
}
