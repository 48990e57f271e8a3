import v8 from "node:v8";

/** What V8 says of its heap: bytes in use (live, and garbage not yet collected) and its limit. */
export interface HeapUse {
  used: number;
  limit: number;
}

/** This process's heap, from V8. */
export function readHeap(): HeapUse {
  const stats = v8.getHeapStatistics();
  return { used: stats.used_heap_size, limit: stats.heap_size_limit };
}

/** Above this share of its limit the heap is said to be near it. */
const NEAR = 0.85;

const mib = (bytes: number) => Math.round(bytes / 2 ** 20).toLocaleString("en-US");

/**
 * Watches the heap of `deno task run` and warns once when it holds more
 * than 85% of its limit. `deno task run` sets that limit (deno.json:
 * `--max-old-space-size=2000`, which keeps V8 from growing its heap to 4x
 * what is live: README, "The command line"), and a flow that keeps more
 * than that live is ended by V8 ("Reached heap limit") with no word of
 * millrace's: this says beforehand what to raise. The heap holds garbage
 * between collections, so one reading above the share is not yet a flow
 * out of room; it is a flow whose live heap is within reach of the limit.
 *
 * Returns a `check` (called every `everyMs`, 5 s by default, on a timer
 * that does not keep the process alive) and a `close`.
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
      `the heap holds ${mib(used)} MiB of its ${mib(limit)} MiB limit; past it V8 ends the ` +
        `process ("Reached heap limit"). What a flow keeps grows with a dedupe's maxItems ` +
        `(about 1 KB per item in process) and the flow's capacity; to raise the limit, run ` +
        `deno run --v8-flags=--max-old-space-size=MiB with the run task's other flags ` +
        `(README, "The command line": Memory)`,
      { heapUsedMiB: Math.round(used / 2 ** 20), heapLimitMiB: Math.round(limit / 2 ** 20) },
    );
  };
  const timer = setInterval(check, opts.everyMs ?? 5_000);
  Deno.unrefTimer(timer);
  return { check, close: () => clearInterval(timer) };
}
