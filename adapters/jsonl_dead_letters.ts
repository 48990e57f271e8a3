import { dirname } from "node:path";
import type { DeadLetter, DeadLetters } from "../engine/dead_letters.ts";
import { writeAll } from "./jsonl_sink.ts";

/**
 * Dead letters of a flow without Redis: one JSON line per item,
 * `{time, stage, reason, attempts, item}`, appended to a file
 * (out/<flow>/dead_letters.jsonl) that a person can read and a replay can
 * feed back. Unlike a sink it keeps every entry: the same item failing twice
 * is two events worth seeing.
 *
 * @example
 * ```ts
 * import { JsonlDeadLetters } from "./jsonl_dead_letters.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const letters = new JsonlDeadLetters(`${dir}/dead_letters.jsonl`);
 * await letters.write([]);
 * await letters.close();
 * ```
 */
export class JsonlDeadLetters implements DeadLetters {
  readonly path: string;
  #file?: Promise<Deno.FsFile>;
  #tail: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  /** Appends the entries in one write; writes are appended in call order. */
  write(entries: readonly DeadLetter[]): Promise<void> {
    const run = this.#tail.then(() => this.#append(entries));
    this.#tail = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    await this.#tail;
    const file = this.#file;
    this.#file = undefined;
    if (file) (await file).close();
  }

  async #append(entries: readonly DeadLetter[]): Promise<void> {
    if (entries.length === 0) return;
    const time = new Date().toISOString();
    let text = "";
    for (const { stage, reason, attempts, item } of entries) {
      text += JSON.stringify({ time, stage, reason, attempts, item }) + "\n";
    }
    // A failed open is not cached: the next write tries again.
    const file = await (this.#file ??= this.#open().catch((error) => {
      this.#file = undefined;
      throw error;
    }));
    await writeAll(file, new TextEncoder().encode(text));
  }

  async #open(): Promise<Deno.FsFile> {
    await Deno.mkdir(dirname(this.path), { recursive: true });
    return Deno.open(this.path, { append: true, create: true });
  }
}
