import { z } from "zod";
import { FlowEndingError } from "../../engine/errors.ts";
import type { Envelope, RawItem } from "../../engine/item.ts";
import type { SinkSpec } from "../../engine/registry.ts";
import type { Sink } from "../../engine/sink.ts";
import {
  recordKey,
  recordLine,
  type RecordOptions,
  writeAll,
  writesUpdates,
} from "./jsonl_sink.ts";
import { IdSet } from "./_id_set.ts";

export const stdoutSinkSchema = z.strictObject({
  fields: z.array(z.string().min(1)).min(1).optional()
    .describe("Payload fields to print; default all of them."),
  vectors: z.boolean().default(false)
    .describe("Print each item's vector; default false (hundreds of numbers per line)."),
}).describe("Prints one JSON line per item on stdout, once per item id.");

export type StdoutSinkConfig = z.output<typeof stdoutSinkSchema>;

/**
 * stdout's reader has gone (`| head -2` read its lines and exited): nothing
 * more can be printed, by any retry, for any item, so the run ends rather
 * than dead-letter everything still to come. `main.ts` exits 141 for it,
 * as a program that SIGPIPE ended does.
 */
export class StdoutClosedError extends FlowEndingError {
  constructor(options?: ErrorOptions) {
    super("stdout was closed by its reader (such as head)", options);
    this.name = "StdoutClosedError";
  }
}

/** Where the lines go; Deno.stdout unless a test gives its own. */
export interface LineWriter {
  write(p: Uint8Array): Promise<number>;
}

/**
 * The ids each sink printed on each stream, a sink known by its flow, its
 * publish stage and what it prints (fields, vectors). A stream outlives the
 * sinks that write to it: `--watch` builds a new flow, and new sinks, in the
 * same process, whose sources read again from the start, and the stream's
 * reader had every item of them already. Two publish stages' sinks print
 * each item each (the second may see it enriched); two alike in one stage
 * print it once.
 */
const printedOn = new WeakMap<LineWriter, Map<string, IdSet>>();

function printedIds(out: LineWriter, sink: string): IdSet {
  let bySink = printedOn.get(out);
  if (!bySink) printedOn.set(out, bySink = new Map());
  let ids = bySink.get(sink);
  if (!ids) bySink.set(sink, ids = new IdSet());
  return ids;
}

/**
 * Prints one JSON line per item, the same line the JSONL sink writes, so a
 * flow can be piped into `jq` or another program (a deleted item prints its
 * tombstone, `{"id":…,"deleted":true,…}`). Logs go to stderr, so
 * stdout holds nothing but items. It prints an id once per process (see
 * printedOn): a retried batch, or a flow `--watch` swapped in, does not
 * print its items twice, but a re-run prints them again.
 * What is printed cannot be taken back, so a publish stage's `retention`
 * does not apply to it (the sink has no `expire`).
 */
export class StdoutSink implements Sink {
  readonly #options: RecordOptions;
  /** Whether merge updates are written (writesUpdates): fixed by the options. */
  readonly updates: boolean;
  readonly #out: LineWriter;
  readonly #ids: IdSet;
  #closed?: StdoutClosedError;
  #tail: Promise<void> = Promise.resolve();

  /** `sink` names it across runs of its flow in this process: its flow and publish stage. */
  constructor(options: Partial<RecordOptions> = {}, out: LineWriter = Deno.stdout, sink = "") {
    this.#options = { fields: options.fields, vectors: options.vectors ?? false };
    this.updates = writesUpdates(this.#options);
    this.#out = out;
    this.#ids = printedIds(out, JSON.stringify([sink, this.#options]));
  }

  write(batch: readonly Envelope<RawItem>[], signal: AbortSignal): Promise<void> {
    const run = this.#tail.then(() => this.#print(batch, signal));
    this.#tail = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    await this.#tail;
  }

  async #print(batch: readonly Envelope<RawItem>[], signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.#closed) throw this.#closed;
    let text = "";
    const fresh: string[] = [];
    try {
      for (const item of batch) {
        if (item.update === true && !this.updates) continue;
        const key = recordKey(item);
        if (this.#ids.has(key)) continue;
        this.#ids.add(key);
        fresh.push(key);
        text += recordLine(item, this.#options);
      }
    } catch (error) {
      // An item that cannot be encoded: none of the batch was printed.
      for (const id of fresh) this.#ids.delete(id);
      throw error;
    }
    if (text === "") return;
    try {
      await writeAll(this.#out, new TextEncoder().encode(text));
    } catch (error) {
      for (const id of fresh) this.#ids.delete(id);
      if (error instanceof Deno.errors.BrokenPipe) {
        throw this.#closed = new StdoutClosedError({ cause: error });
      }
      throw new Error("stdout sink: cannot write", { cause: error });
    }
  }
}

/**
 * ```yaml
 * - publish:
 *     - stdout: { fields: [title, url] }
 * ```
 */
export const stdoutSink: SinkSpec<StdoutSinkConfig> = {
  kind: "stdout",
  summary: "Prints one JSON line per item on stdout, once per item id.",
  schema: stdoutSinkSchema,
  create: (config, env) => new StdoutSink(config, Deno.stdout, `${env.flow} ${env.stage ?? ""}`),
};
