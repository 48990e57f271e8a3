/**
 * What each of the demo flow's actors costs per item, in CPU time (this
 * process's user + system time, which other load on a shared machine moves
 * less than wall time), for this checkout and optionally other checkouts of
 * millrace (a `git worktree` of an older commit), built and run alternately
 * in one process so that their ratios come from one run:
 *
 *   deno run -A bench/actor_costs.ts [--items N] [--rounds R] [--against DIR]...
 *
 * Each round builds the demo flow's stages (flows/demo.yaml) afresh and
 * calls each actor's `handle` on batches of 500 generated items, what one
 * stage emits being the next one's batch; two more Enrichers (canonical-url,
 * domain and word-count; language alone) run on the batches enrich got. A
 * figure is the best round's µs per item the actor received.
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";

const HERE = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const ROWS = [
  "validate",
  "dedupe",
  "enrich, all five steps",
  "enrich, canonical-url/domain/word-count",
  "enrich, language only",
  "embed",
  "publish",
];
const EXTRA_ENRICH = [["canonical-url", "domain", "word-count"], ["language"]];

// deno-lint-ignore no-explicit-any
type Any = any;

/** One checkout's modules, imported from its own files. */
async function checkout(root: string) {
  return {
    root,
    registry: (await import(`${root}/builtins.ts`)).builtinRegistry(),
    parseFlow: (await import(`${root}/config/load_flow.ts`)).parseFlow,
    envelope: (await import(`${root}/engine/item.ts`)).envelope,
    memoryLogger: (await import(`${root}/engine/log.ts`)).memoryLogger,
    generateItems: (await import(`${root}/adapters/sources/generator_source.ts`)).generateItems,
    enricher: await import(`${root}/actors/enricher.ts`),
  };
}

/** One round: µs of CPU per item received, per row. */
async function round(c: Awaited<ReturnType<typeof checkout>>, items: number, out: string) {
  const demo = `${c.root}/flows/demo.yaml`;
  const flow = c.parseFlow(Deno.readTextFileSync(demo), demo, c.registry, {});
  const log = c.memoryLogger();
  const env = { flow: "demo", baseDir: out, outDir: out, log, registry: c.registry, vectors: {} };
  const ctx = { flow: "demo", stage: "bench", signal: new AbortController().signal, log };
  const actors: Any[] = [];
  for (const entry of flow.pipeline) {
    const actor = await c.registry.stages.get(entry.kind).create(entry.config, env);
    await actor.open?.(ctx);
    actors.push(actor);
  }
  const extra: Any[] = await Promise.all(
    EXTRA_ENRICH.map((steps) =>
      c.enricher.createEnricher(c.enricher.enrichConfigSchema.parse({ steps }))
    ),
  );
  const cpu = ROWS.map(() => 0), received = ROWS.map(() => 0);
  const timed = async (row: number, actor: Any, batch: unknown[]) => {
    const emitted: unknown[] = [];
    const outcome = { emit: (e: unknown) => emitted.push(e), drop() {}, reject() {} };
    const before = process.cpuUsage();
    await actor.handle(batch, outcome, ctx);
    const used = process.cpuUsage(before);
    cpu[row] += used.user + used.system;
    received[row] += batch.length;
    return emitted;
  };
  const raw = c.generateItems({ count: items, seed: 42 }).items;
  for (let k = 0; k < raw.length; k += 500) {
    let batch = raw.slice(k, k + 500).map((r: unknown) => c.envelope(r, "newsroom"));
    batch = await timed(0, actors[0], batch);
    batch = await timed(1, actors[1], batch);
    for (const [i, enricher] of extra.entries()) await timed(3 + i, enricher, batch);
    batch = await timed(2, actors[2], batch);
    batch = await timed(5, actors[3], batch);
    await timed(6, actors[4], batch);
  }
  for (const actor of actors) await actor.close?.();
  return cpu.map((us, i) => us / Math.max(1, received[i]));
}

const USAGE = "usage: deno run -A bench/actor_costs.ts [--items N] [--rounds R] [--against DIR]...";

if (import.meta.main) {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        items: { type: "string", default: "10000" },
        rounds: { type: "string", default: "4" },
        against: { type: "string", multiple: true, default: [] },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (error) {
    console.error(`actor_costs: ${(error as Error).message}\n${USAGE}`);
    Deno.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const checkouts = await Promise.all(
    [HERE, ...values.against.map((d) => d.replace(/\/$/, ""))].map(checkout),
  );
  const best = checkouts.map(() => ROWS.map(() => Infinity));
  const out = await Deno.makeTempDir({ prefix: "millrace-actor-costs-" });
  try {
    for (let r = 0; r < Number(values.rounds); r++) {
      for (const [j, c] of checkouts.entries()) {
        const us = await round(c, Number(values.items), `${out}/${r}-${j}`);
        best[j] = best[j].map((b, i) => Math.min(b, us[i]));
      }
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
  const names = checkouts.map((c) => c.root === HERE ? "this checkout" : c.root);
  console.log(`CPU µs per item, best of ${values.rounds} rounds of ${values.items} items`);
  console.log(["actor".padEnd(42), ...names.map((n) => n.padStart(16))].join(" "));
  const totals = best.map((b) => b.reduce((a, x, i) => a + (i === 3 || i === 4 ? 0 : x), 0));
  ROWS.forEach((row, i) => {
    console.log([row.padEnd(42), ...best.map((b) => b[i].toFixed(1).padStart(16))].join(" "));
  });
  console.log(
    ["demo stages together".padEnd(42), ...totals.map((t) => t.toFixed(1).padStart(16))].join(" "),
  );
  for (let j = 1; j < checkouts.length; j++) {
    console.log(`${names[j]} / this checkout: ${(totals[j] / totals[0]).toFixed(2)}x`);
  }
}
