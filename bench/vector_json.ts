/**
 * What writing an item with its vector costs, as one JSON.stringify call and
 * as jsonWithVector (engine/vector_json.ts), on the demo's items after its
 * stages (their strings made as sources and steps make them) with vectors of
 * 256 and 1536 numbers, alternated in one process:
 *
 *   deno run -A bench/vector_json.ts [--items N] [--rounds R]
 */
import { parseArgs } from "node:util";
import { builtinRegistry } from "../builtins.ts";
import { parseFlow } from "../config/load_flow.ts";
import type { Actor } from "../engine/actor.ts";
import { type Envelope, envelope } from "../engine/item.ts";
import { memoryLogger } from "../engine/log.ts";
import { jsonWithVector } from "../engine/vector_json.ts";
import { generateItems } from "../adapters/sources/generator_source.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { items: { type: "string", default: "5000" }, rounds: { type: "string", default: "5" } },
});

/** The demo's items as its stages before publish leave them. */
async function demoItems(n: number): Promise<Envelope[]> {
  const registry = builtinRegistry();
  const file = new URL("../flows/demo.yaml", import.meta.url).pathname;
  const flow = parseFlow(Deno.readTextFileSync(file), file, registry, {});
  const log = memoryLogger();
  const env = { flow: "demo", baseDir: ".", outDir: ".", log, registry, vectors: {} };
  const ctx = { flow: "demo", stage: "bench", signal: new AbortController().signal, log };
  const actors: Actor[] = [];
  for (const entry of flow.pipeline.slice(0, -1)) {
    const actor = await registry.stages.get(entry.kind)!.create(entry.config, env) as Actor;
    await actor.open?.(ctx);
    actors.push(actor);
  }
  const out: Envelope[] = [];
  const raw = generateItems({ count: n, seed: 42 }).items;
  for (let k = 0; k < raw.length; k += 500) {
    let batch: Envelope[] = raw.slice(k, k + 500).map((r) => envelope(r, "newsroom"));
    for (const actor of actors) {
      const emitted: Envelope[] = [];
      await actor.handle(batch, { emit: (e) => emitted.push(e), drop() {}, reject() {} }, ctx);
      batch = emitted;
    }
    out.push(...batch);
  }
  return out;
}

const items = await demoItems(Number(values.items));
const wide = items.map((item) => ({
  ...item,
  vector: Array.from({ length: 1536 }, () => Math.fround(Math.random() - 0.5) / 10),
}));
const time = (batch: Envelope[], write: (item: Envelope) => string) => {
  const started = performance.now();
  for (const item of batch) write(item);
  return (performance.now() - started) * 1000 / batch.length;
};
for (
  const [label, batch] of [["256 numbers (the demo's)", items], ["1536 numbers", wide]] as const
) {
  let plain = Infinity, apart = Infinity;
  for (let r = 0; r < Number(values.rounds); r++) {
    plain = Math.min(plain, time(batch, (item) => JSON.stringify(item)));
    apart = Math.min(apart, time(batch, jsonWithVector));
  }
  console.log(
    `${label}: JSON.stringify ${plain.toFixed(1)} µs per item, jsonWithVector ${
      apart.toFixed(1)
    } µs (${
      (plain / apart).toFixed(2)
    }x), best of ${values.rounds} rounds of ${items.length} items`,
  );
}
