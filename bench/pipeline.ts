/**
 * The flow the in-memory benchmarks run: one source and five trivial stages
 * (six actors, like a real flow), built through the same registry and runner
 * as any flow file, so the figure is the engine's own overhead per item.
 */
import type { Actor } from "../engine/actor.ts";
import { MemoryDeadLetters } from "../engine/dead_letters.ts";
import { DEFAULT_DURABLE, type Flow } from "../engine/flow.ts";
import type { RawItem } from "../engine/item.ts";
import { memoryLogger } from "../engine/log.ts";
import { Registry } from "../engine/registry.ts";
import { startFlow } from "../engine/run_flow.ts";
import type { Source } from "../engine/source.ts";
import { z } from "zod";

export interface PipelineOptions {
  items: number;
  /** Items per source batch. */
  batch: number;
  /** Delay in ms the last stage sleeps per batch: a slow sink. */
  slowLastStage?: number;
  capacity?: number;
}

/** A source that makes small items as fast as it can. */
function countingSource(items: number, batch: number): Source {
  return {
    async *read() {
      for (let i = 0; i < items; i += batch) {
        const n = Math.min(batch, items - i);
        const out: RawItem[] = new Array(n);
        for (let k = 0; k < n; k++) {
          out[k] = { title: "item", url: "https://example.com/a/" + (i + k), score: k };
        }
        yield out;
      }
    },
  };
}

const pass: Actor = {
  handle(batch, out) {
    for (let i = 0; i < batch.length; i++) out.emit(batch[i]);
  },
};

export function benchRegistry(opts: PipelineOptions): Registry {
  const empty = z.object({});
  return new Registry()
    .source({
      kind: "counting",
      summary: "bench items",
      schema: empty,
      create: () => countingSource(opts.items, opts.batch),
    })
    // Stages that change no item and emit each once say so (leavesInputs), as a user's may:
    // the engine's own cost is measured, not that of copying items for a stage that might.
    .stage({
      kind: "pass",
      summary: "emits its input",
      schema: empty,
      leavesInputs: true,
      create: () => pass,
    })
    .stage({
      kind: "slow",
      summary: "emits its input after a pause",
      schema: empty,
      leavesInputs: true,
      create: (): Actor => ({
        async handle(batch, out) {
          await new Promise((r) => setTimeout(r, opts.slowLastStage ?? 0));
          for (let i = 0; i < batch.length; i++) out.emit(batch[i]);
        },
      }),
    });
}

export function benchFlow(opts: PipelineOptions): Flow {
  const stage = (id: string, kind: string) => ({
    id,
    kind,
    concurrency: 1,
    retries: 0,
    config: {},
  });
  return {
    name: "bench",
    durability: "memory",
    outDir: "out/bench",
    baseDir: ".",
    capacity: opts.capacity ?? 8192,
    deadLetters: { maxDeliveries: 5 },
    durable: DEFAULT_DURABLE,
    sources: [{ name: "counting", kind: "counting", priority: "normal", config: {} }],
    pipeline: [
      stage("validate", "pass"),
      stage("dedupe", "pass"),
      stage("enrich", "pass"),
      stage("embed", "pass"),
      stage("publish", opts.slowLastStage ? "slow" : "pass"),
    ],
  };
}

/** Runs the pipeline; returns items published and seconds taken. */
export async function runPipeline(opts: PipelineOptions): Promise<{ items: number; secs: number }> {
  const started = performance.now();
  const running = await startFlow(benchFlow(opts), {
    registry: benchRegistry(opts),
    log: memoryLogger(),
    deadLetters: new MemoryDeadLetters(),
  });
  const report = await running.done;
  return { items: report.published, secs: (performance.now() - started) / 1000 };
}
