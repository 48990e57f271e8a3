import v8 from "node:v8";

/**
 * V8's old generation, the part of the heap `--max-old-space-size` limits
 * and whose filling ends the process: bytes in use (live, and garbage not
 * yet collected) and the limit.
 */
export interface HeapUse {
  used: number;
  limit: number;
}

/** The spaces of the young generation, which the old-space limit does not count. */
const YOUNG = new Set(["new_space", "new_large_object_space"]);

/**
 * V8 reserves three semi-spaces for the young generation beside the old
 * space's limit (`heap_size_limit` is their sum): 96 MiB at its default
 * semi-space of 32 MiB on 64-bit. It does not say its semi-space size, so
 * that default is assumed: with `--max-semi-space-size` set lower the
 * estimated limit is below the real one (the warning comes early), higher
 * above it (late).
 */
const YOUNG_RESERVE = 3 * 32 * 2 ** 20;

/** This process's old generation, from V8. */
export function readHeap(): HeapUse {
  let used = 0;
  for (const space of v8.getHeapSpaceStatistics()) {
    if (!YOUNG.has(space.space_name)) used += space.space_used_size;
  }
  return { used, limit: v8.getHeapStatistics().heap_size_limit - YOUNG_RESERVE };
}

/** Above this share of its limit the old space is said to be near it. */
const NEAR = 0.85;

const mib = (bytes: number) => Math.round(bytes / 2 ** 20).toLocaleString("en-US");

/**
 * Watches the heap of `deno task run` and warns once when its old space
 * holds more than 85% of its limit. `deno task run` sets that limit
 * (deno.json: `--max-old-space-size=2000`, which keeps V8 from growing its
 * heap to 4x what is live: README, "The command line"), and a flow that
 * keeps more than that live is ended by V8 ("Reached heap limit") with no
 * word of millrace's: this says beforehand what to raise. Old space holds
 * garbage between collections, so one reading above the share is not yet a
 * flow out of room; it is a flow whose live heap is within reach of the
 * limit.
 *
 * Returns a `check` (called every `everyMs`, 1 s by default, on a timer
 * that does not keep the process alive) and a `close`. A check costs a few
 * µs; every second, since a flow filling its heap at 10 MB/s crosses the
 * last 15% of a 200 MiB limit in 3 s.
 *
 * @example
 * ```ts
 * import { watchHeap } from "./heap_watch.ts";
 *
 * const told: string[] = [];
 * const watch = watchHeap((message) => told.push(message), {
 *   read: () => ({ used: 1_800 * 2 ** 20, limit: 2_000 * 2 ** 20 }),
 * });
 * watch.check();
 * watch.close();
 * if (!told[0].startsWith("old space holds 1,800 MiB of its 2,000 MiB limit")) throw new Error();
 * ```
 */
export function watchHeap(
  warn: (message: string, fields: Record<string, unknown>) => void,
  opts: { everyMs?: number; read?: () => HeapUse } = {},
): { check(): void; close(): void } {
  const read = opts.read ?? readHeap;
  let told = false;
  const check = () => {
    if (told) return;
    const { used, limit } = read();
    if (used <= NEAR * limit) return;
    told = true;
    warn(
      `old space holds ${mib(used)} MiB of its ${mib(limit)} MiB limit; past it V8 ends the ` +
        `process ("Reached heap limit"). What a flow keeps grows with a dedupe's maxItems ` +
        `(about 0.6 KB per item in process) and the flow's capacity; to raise the limit, run ` +
        `deno run --v8-flags=--max-old-space-size=MiB with the run task's other flags ` +
        `(README, "The command line": Memory)`,
      { oldSpaceMiB: Math.round(used / 2 ** 20), limitMiB: Math.round(limit / 2 ** 20) },
    );
  };
  const timer = setInterval(check, opts.everyMs ?? 1_000);
  Deno.unrefTimer(timer);
  return { check, close: () => clearInterval(timer) };
}
