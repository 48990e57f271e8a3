/**
 * Runs the pipeline with a fast producer and a slow last stage in a process
 * of its own and prints its peak RSS, so each size is measured from a clean
 * heap. Usage: memory_probe.ts ITEMS SLOW_MS
 */
import { runPipeline } from "./pipeline.ts";

const items = Number(Deno.args[0]);
const slow = Number(Deno.args[1] ?? 1);
let peak = Deno.memoryUsage().rss;
let peakHeap = Deno.memoryUsage().heapUsed;
const base = peak;
const sample = () => {
  const m = Deno.memoryUsage();
  peak = Math.max(peak, m.rss);
  peakHeap = Math.max(peakHeap, m.heapUsed);
};
const timer = setInterval(sample, 5);
const { secs } = await runPipeline({ items, batch: 1000, slowLastStage: slow, capacity: 4096 });
clearInterval(timer);
sample();
console.log(JSON.stringify({ items, secs, baseRss: base, peakRss: peak, peakHeap }));
