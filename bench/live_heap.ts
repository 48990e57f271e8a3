/**
 * What the demo flow's stages keep live while they run, in memory: every
 * 3 s a forced collection, then V8's heap in use plus its typed arrays
 * (`external`), printed as one line of MB figures; peak RSS counts what
 * V8 lets the heap grow to between collections as well, this does not.
 * Behind docs/benchmark_history.md, "Memory" (2026-12-05).
 *
 *   deno run -A --v8-flags=--expose-gc bench/live_heap.ts [items] [dedupe maxItems]
 */
import { builtinRegistry } from "../builtins.ts";
import { parseFlow } from "../config/load_flow.ts";
import { memoryLogger } from "../engine/log.ts";
import { startFlow } from "../engine/run_flow.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");
const items = Number(Deno.args[0] ?? 200_000);
const maxItems = Deno.args[1];
const demo = new URL("../flows/demo.yaml", import.meta.url);
let text = Deno.readTextFileSync(demo)
  .replace("count: 5000", `count: ${items}`)
  .replace("output: out/demo", "output: out/bench/live_heap");
if (maxItems) text = text.replace("ttl: 24h", `ttl: 24h\n      maxItems: ${maxItems}`);
const registry = builtinRegistry();
const flow = parseFlow(text, demo.pathname, registry, {});
await Deno.remove(flow.outDir!, { recursive: true }).catch(() => {});
const running = await startFlow(flow, {
  registry,
  log: memoryLogger(),
  deadLetters: { write: () => Promise.resolve() }, // a file of them would grow with the items
});
const live = () => {
  gc();
  const m = Deno.memoryUsage();
  return ((m.heapUsed + m.external) / 1e6).toFixed(0);
};
const samples = [live()];
const timer = setInterval(() => samples.push(live()), 3000);
await running.done;
clearInterval(timer);
console.log(
  `${items} items: live heap + typed arrays, MB, every 3 s from open: ${samples.join(" ")}`,
);
