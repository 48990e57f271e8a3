/**
 * Test-only components for the conformance suite, added to the built-in
 * registry. They record what the runtime did to them in a `Probe` the test
 * owns (one per test), so the same assertions hold whichever edge the flow
 * runs on: the components run in the test's process in both modes.
 *
 * - source `feed`: items `{key: "<tag><i>", title, url, text}`, `count` per
 *   read in batches of `batch`, numbering on across reads (so `every:` polls
 *   new items); `hold` keeps a read open until the flow stops; `after` waits
 *   until the feed tagged so has emitted everything.
 * - stage `record`: passes items on; records each batch and how many batches
 *   were in it at once (`gather` waits, at most `gatherMs`, for that many);
 *   `after` holds its first batch until the feed tagged so has finished.
 * - stage `explode`: throws on a batch holding a key listed in `bad`; with
 *   `scribble`, after changing each of its items in place.
 * - sink `recording`: records each write.
 */
import { z } from "zod";
import { builtinRegistry } from "../../builtins.ts";
import { sleep } from "../../engine/backoff.ts";
import type { Envelope, RawItem } from "../../engine/item.ts";
import type { Registry } from "../../engine/registry.ts";

/** What the components saw, for the test to assert on. */
export class Probe {
  /** Keys each source read yielded, in order, per tag. */
  readonly emitted = new Map<string, string[]>();
  /** Tags of `feed` sources whose read is running. */
  readonly open = new Set<string>();
  /** Keys of each batch the `record` stage handled, in order. */
  readonly handled: string[][] = [];
  /** Keys of each write of the `recording` sink, in order. */
  readonly writes: string[][] = [];
  /** The payload the sink was last given for each key. */
  readonly payloads = new Map<string, unknown>();
  /** Batches in the `record` stage right now, and the most there ever were. */
  inFlight = 0;
  maxInFlight = 0;
  readonly #finished = new Map<string, PromiseWithResolvers<void>>();
  #gathered = Promise.withResolvers<void>();

  /** Resolves once the feed tagged `tag` has emitted everything. */
  finished(tag: string): PromiseWithResolvers<void> {
    let p = this.#finished.get(tag);
    if (!p) this.#finished.set(tag, p = Promise.withResolvers<void>());
    return p;
  }

  /** Every key the sink was given, in order (repeats kept). */
  get published(): string[] {
    return this.writes.flat();
  }

  /** Counts a batch in; resolves when `want` are in at once or after `ms`. */
  async enter(want: number, ms: number): Promise<void> {
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    if (this.inFlight >= want) {
      this.#gathered.resolve();
      this.#gathered = Promise.withResolvers<void>();
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#gathered.promise,
      new Promise((r) => timer = setTimeout(r, ms)),
    ]);
    clearTimeout(timer);
  }

  leave(): void {
    this.inFlight--;
  }
}

/** The key a recorded item carries. */
export const keyOf = (item: Envelope<unknown>): string =>
  String((item.payload as { key?: unknown }).key);

const feedSchema = z.strictObject({
  tag: z.string().default("n").describe("Prefix of the keys. Default n."),
  count: z.int().min(0).describe("Items per read. Required."),
  batch: z.int().positive().default(10).describe("Items per yielded batch. Default 10."),
  textChars: z.int().min(0).default(0)
    .describe("Text of item i is textChars × (1 + i % 4) characters. Default 0."),
  heavy: z.array(z.int().min(0)).default([])
    .describe("Indexes whose text is heavyChars long instead. Default none."),
  heavyChars: z.int().min(0).default(0).describe("Length of a heavy item's text. Default 0."),
  hold: z.boolean().default(false)
    .describe("Keep each read open, after its items, until the flow stops. Default false."),
  after: z.string().optional().describe("Emit only once the feed with this tag has finished."),
});

/** The text of item `i` of a feed: its length is what the tests weigh. */
export function feedText(config: z.output<typeof feedSchema>, i: number): string {
  const n = config.heavy.includes(i) ? config.heavyChars : config.textChars * (1 + i % 4);
  return "x".repeat(n);
}

const recordSchema = z.strictObject({
  delayMs: z.int().min(0).default(0).describe("Sleep per batch. Default 0."),
  gather: z.int().min(0).default(0)
    .describe("Wait until this many batches are in the stage at once. Default 0."),
  gatherMs: z.int().min(0).default(200).describe("Longest such a wait lasts. Default 200."),
  after: z.string().optional()
    .describe("Handle nothing until the feed with this tag has finished."),
});

/** The built-in registry plus the test-only components, recording into `probe`. */
export function conformanceRegistry(probe: Probe): Registry {
  return builtinRegistry()
    .source({
      kind: "feed",
      summary: "numbered test items, recorded",
      schema: feedSchema,
      create: (config: z.output<typeof feedSchema>) => {
        let next = 0;
        const emitted = probe.emitted.get(config.tag) ?? [];
        probe.emitted.set(config.tag, emitted);
        return {
          async *read(signal: AbortSignal) {
            probe.open.add(config.tag);
            try {
              if (config.after) await probe.finished(config.after).promise;
              const end = next + config.count;
              while (next < end && !signal.aborted) {
                const batch: RawItem[] = [];
                for (; next < end && batch.length < config.batch; next++) {
                  const key = `${config.tag}${next}`;
                  batch.push({
                    key,
                    title: `item ${key}`,
                    url: `https://example.com/${key}`,
                    text: feedText(config, next),
                  });
                }
                emitted.push(...batch.map((r) => String(r.key)));
                yield batch;
              }
              if (config.hold && !signal.aborted) {
                await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
              }
            } finally {
              probe.open.delete(config.tag);
              probe.finished(config.tag).resolve();
            }
          },
        };
      },
    })
    .stage({
      kind: "record",
      summary: "passes items on, recording batches and how many were in flight",
      schema: recordSchema,
      create: (config: z.output<typeof recordSchema>) => ({
        async handle(batch, out) {
          if (config.after) await probe.finished(config.after).promise;
          probe.handled.push(batch.map(keyOf));
          await probe.enter(config.gather, config.gatherMs);
          try {
            if (config.delayMs > 0) await sleep(config.delayMs);
          } finally {
            probe.leave();
          }
          for (const item of batch) out.emit(item);
        },
      }),
    })
    .stage({
      kind: "explode",
      summary: "throws on a batch that holds a bad key",
      schema: z.strictObject({
        bad: z.array(z.string()).default([]),
        scribble: z.boolean().default(false)
          .describe("First change each item in place: a ! on its title, seen on its tags."),
        hang: z.array(z.string()).default([])
          .describe("Keys on which handle never returns (a promise that never settles)."),
      }),
      create: (config: { bad: string[]; scribble: boolean; hang: string[] }) => ({
        handle(batch, out) {
          if (batch.some((item) => config.hang.includes(keyOf(item)))) {
            return new Promise<void>(() => {});
          }
          if (config.scribble) {
            for (const item of batch) {
              const p = item.payload as { title: string; tags?: string[] };
              p.title += "!";
              (p.tags ??= []).push("seen");
            }
          }
          const bad = batch.find((item) => config.bad.includes(keyOf(item)));
          if (bad) throw new Error(`bad item ${keyOf(bad)}`);
          for (const item of batch) out.emit(item);
        },
      }),
    })
    .sink({
      kind: "recording",
      summary: "records every write",
      schema: z.strictObject({}),
      create: () => ({
        write(batch) {
          probe.writes.push(batch.map(keyOf));
          for (const item of batch) probe.payloads.set(keyOf(item), item.payload);
          return Promise.resolve();
        },
      }),
    });
}
