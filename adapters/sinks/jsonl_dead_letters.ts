import { dirname } from "node:path";
import { type DeadLetter, type DeadLetters, letterItemJson } from "../../engine/dead_letters.ts";
import { errorMessage, FlowEndingError } from "../../engine/errors.ts";
import { hash128 } from "../../engine/hash.ts";
import { fileLines } from "./_file_lines.ts";
import { writeAll } from "./jsonl_sink.ts";

/**
 * Dead letters of a flow without Redis: one JSON line per item,
 * `{time, stage, reason, attempts, item}`, appended to a file
 * (out/<flow>/dead_letters.jsonl) that a person can read and a replay can
 * feed back.
 *
 * Like the JSONL sink it is idempotent across runs, here by stage, item id
 * and reason: a re-run of the flow over the same output adds nothing, so the
 * file says what is wrong rather than how often the flow ran. At open it
 * counts the lines already there per key; a write skips an entry while its
 * key still has lines left from that count. So within one run every event
 * is kept (two copies of an invalid item rejected for the same reason are
 * two lines, as they are two items in the summary), and a later run adds
 * only what goes beyond what an earlier run recorded: a new stage, item or
 * reason, or more events of the same one.
 *
 * @example
 * ```ts
 * import { JsonlDeadLetters } from "../../mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const letters = new JsonlDeadLetters(`${dir}/dead_letters.jsonl`);
 * await letters.write([]);
 * await letters.close();
 * ```
 */
export class JsonlDeadLetters implements DeadLetters {
  /** The JSONL file, one dead letter per line. */
  readonly path: string;
  /** Per key, lines the file held at open that this writer has not matched yet. */
  readonly #recorded = new Map<string, number>();
  /** The lines of letters whose write failed. */
  readonly #unwritten: string[] = [];
  #file?: Promise<Deno.FsFile>;
  #tail: Promise<void> = Promise.resolve();

  /** Opens nothing yet: the file is created (with its directory) at the first write. */
  constructor(path: string) {
    this.path = path;
  }

  /**
   * Appends the entries not in the file yet, in one write; writes are
   * appended in call order. A write that fails (a full disk) ends the run
   * (FlowEndingError), saying why: an item refused with nowhere to record
   * why cannot be accounted for, and the error went up as a bare stack.
   */
  write(entries: readonly DeadLetter[]): Promise<void> {
    const run = this.#tail.then(() => this.#append(entries)).catch((error) => {
      throw new FlowEndingError(
        `cannot write dead letters to ${this.path}: ${errorMessage(error)}`,
        { cause: error },
      );
    });
    this.#tail = run.catch(() => {});
    return run;
  }

  /**
   * The letters a failed write did not record, each as the line it would
   * have been: the run ends at the first (see write), and what it says of
   * them is all there is of their items.
   */
  get unwritten(): readonly string[] {
    return this.#unwritten;
  }

  /** Waits for the writes already asked for, then closes the file. */
  async close(): Promise<void> {
    await this.#tail;
    const file = this.#file;
    this.#file = undefined;
    if (file) (await file).close();
  }

  async #append(entries: readonly DeadLetter[]): Promise<void> {
    if (entries.length === 0) return;
    const time = new Date().toISOString();
    let file: Deno.FsFile;
    try {
      // A failed open is not cached: the next write tries again.
      file = await (this.#file ??= this.#open().catch((error) => {
        this.#file = undefined;
        throw error;
      }));
    } catch (error) {
      for (const entry of entries) this.#unwritten.push(letterLine(time, entry));
      throw error;
    }
    const lines: string[] = [];
    const matched: string[] = [];
    for (const entry of entries) {
      const key = letterKey(entry.stage, entry.item?.id, entry.reason);
      const left = this.#recorded.get(key) ?? 0;
      if (left > 0) {
        this.#recorded.set(key, left - 1);
        matched.push(key);
        continue;
      }
      lines.push(letterLine(time, entry));
    }
    if (lines.length === 0) return;
    const bytes = new TextEncoder().encode(lines.join("\n") + "\n");
    const done = { written: 0 };
    try {
      await writeAll(file, bytes, done);
    } catch (error) {
      // Nothing of this call is settled: a retry of the same entries matches the same lines.
      for (const key of matched) this.#recorded.set(key, (this.#recorded.get(key) ?? 0) + 1);
      // The lines it got in whole are in the file (a cut one is closed off at the next open).
      const encoder = new TextEncoder();
      let end = 0, whole = 0;
      while (whole < lines.length) {
        end += encoder.encode(lines[whole]).length + 1;
        if (end > done.written) break;
        whole++;
      }
      this.#unwritten.push(...lines.slice(whole));
      throw error;
    }
  }

  /** Opens for appending after reading the keys of the lines already there. */
  async #open(): Promise<Deno.FsFile> {
    await Deno.mkdir(dirname(this.path), { recursive: true });
    const file = await Deno.open(this.path, { read: true, append: true, create: true });
    try {
      let partial = false;
      for await (const line of fileLines(file)) {
        if (!line.whole) partial = line.text !== "";
        const key = keyOfLine(line.text);
        if (key !== undefined) this.#recorded.set(key, (this.#recorded.get(key) ?? 0) + 1);
      }
      // Close a cut line off so the next entry starts on a line of its own.
      if (partial) await writeAll(file, new TextEncoder().encode("\n"));
    } catch (error) {
      file.close();
      throw error;
    }
    return file;
  }
}

/**
 * A letter's line: as JSON.stringify({ time, stage, reason, attempts, item })
 * writes it, but an item JSON cannot hold still makes a line (letterItemJson).
 */
function letterLine(time: string, { stage, reason, attempts, item }: DeadLetter): string {
  const head = JSON.stringify({ time, stage, reason, attempts });
  return item === undefined ? head : `${head.slice(0, -1)},"item":${letterItemJson(item)}}`;
}

/** A letter's stage, item id and reason, hashed: held per line of the file, whatever its reason's length. */
function letterKey(stage: string, id: unknown, reason: string): string {
  return hash128(JSON.stringify([stage, id ?? null, reason]));
}

/** The key of one line of the file; undefined for a line that is not a dead letter. */
function keyOfLine(line: string): string | undefined {
  if (line.trim() === "") return undefined;
  try {
    const entry = JSON.parse(line) as {
      stage?: unknown;
      reason?: unknown;
      item?: { id?: unknown };
    };
    if (typeof entry.stage !== "string" || typeof entry.reason !== "string") return undefined;
    return letterKey(entry.stage, entry.item?.id, entry.reason);
  } catch {
    return undefined;
  }
}
