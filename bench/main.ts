/**
 * deno task bench: each figure next to a baseline measured in the same run,
 * because the machines this runs on are shared and noisy; quote the ratios.
 *
 *   deno task bench               in-memory engine vs a bare async-generator chain, and memory
 *   deno task bench --items N     items for the throughput run (default 1,000,000)
 *   deno task bench --durable-items N   items for the durable run over Redis (default 100,000)
 *   deno task bench --pg-rows N   rows for the Postgres sink run (default 50,000; bench/postgres.ts)
 *   deno task bench --dedupe-items N   items for the dedupe run (default 100,000; bench/dedupe.ts)
 *   deno task bench --near-items N   items for near-duplicate bytes per item (default 200,000)
 *   deno task bench --only html   only the named sections, comma-separated: engine, memory,
 *                                 durable, pipeline, embedding, postgres, dedupe, near, feeds, html (default all)
 *   deno task bench --only pipeline   the demo flow's real stages against their bare actors
 *                                 (bench/real_pipeline.ts): --pipeline-items N (default 100,000),
 *                                 --short (10,000), --big (also 10x the items in memory, for
 *                                 peak RSS), --workers N (also memory runs with `workers: N` on
 *                                 enrich, then on enrich and embed, and a fused durable run with
 *                                 them on enrich)
 *   (then embedding throughput under rpm/tpm limits against a local endpoint: bench/embedding.ts,
 *   feed parsing against bare xml2js: bench/feeds.ts, and HTML extraction against bare
 *   Readability: bench/html.ts)
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { runBareChain } from "./bare_chain.ts";
import { roundRatios } from "./round_ratios.ts";
import { printDedupeSection } from "./dedupe.ts";
import { printNearSection } from "./near.ts";
import { printDurableSection } from "./durable.ts";
import { printEmbeddingSection } from "./embedding.ts";
import { FIXTURES, printFeedSection } from "./feeds.ts";
import { printHtmlSection } from "./html.ts";
import { printPostgresSection } from "./postgres.ts";
import { runPipeline } from "./pipeline.ts";
import { printRealPipelineSection } from "./real_pipeline.ts";

const SECTIONS = [
  "engine",
  "memory",
  "durable",
  "pipeline",
  "embedding",
  "postgres",
  "dedupe",
  "near",
  "feeds",
  "html",
];

const USAGE = `usage: deno task bench [--only SECTION[,SECTION]] [--items N] [--rounds R]
  [--durable-items N] [--pg-rows N] [--dedupe-items N] [--near-items N]
  [--pipeline-items N] [--short] [--big] [--workers N]
sections: ${SECTIONS.join(", ")} (default all; README, "Benchmarks", says what each measures)`;

let values;
try {
  ({ values } = parseArgs({
    args: Deno.args,
    options: {
      items: { type: "string", default: "1000000" },
      rounds: { type: "string", default: "3" },
      "durable-items": { type: "string", default: "100000" },
      "pg-rows": { type: "string", default: "50000" },
      "dedupe-items": { type: "string", default: "100000" },
      "near-items": { type: "string", default: "200000" },
      only: { type: "string" },
      "pipeline-items": { type: "string", default: "100000" },
      short: { type: "boolean", default: false },
      big: { type: "boolean", default: false },
      workers: { type: "string", default: "0" },
      help: { type: "boolean", default: false },
    },
  }));
} catch (error) {
  console.error(`bench: ${(error as Error).message}\n${USAGE}`);
  Deno.exit(2);
}
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const only = values.only?.split(",").map((s) => s.trim());
const unknown = only?.filter((s) => !SECTIONS.includes(s)) ?? [];
if (unknown.length) {
  console.error(`bench: --only: no section ${unknown.join(", ")}\n${USAGE}`);
  Deno.exit(2);
}
const want = (section: string) => !only || only.includes(section);
const items = Number(values.items);
const rounds = Number(values.rounds);
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

console.log(`# millrace bench (${Deno.build.os}/${Deno.build.arch}, deno ${Deno.version.deno})\n`);
if (want("engine")) {
  console.log(
    `## in-memory flow, 6 actors with trivial stages, ${fmt(items)} items, best of ${rounds}`,
  );
  let bestEngine = 0;
  let bestBare = 0;
  const pairs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Interleaved, so a noisy neighbour hurts both sides alike.
    const bare = await runBareChain(items);
    const engine = await runPipeline({ items, batch: 1000 });
    if (engine.items !== items || bare.items !== items) throw new Error("an item went missing");
    bestBare = Math.max(bestBare, bare.items / bare.secs);
    bestEngine = Math.max(bestEngine, engine.items / engine.secs);
    pairs.push((engine.items / engine.secs) / (bare.items / bare.secs));
  }
  console.log(`engine:                   ${fmt(bestEngine)} items/s`);
  console.log(`bare async-generator chain: ${fmt(bestBare)} items/s (baseline, same run)`);
  console.log(`ratio engine / baseline:  ${(bestEngine / bestBare).toFixed(2)}x`);
  console.log(`${roundRatios(pairs)}\n`);
}

if (want("memory")) {
  console.log("## memory with a fast producer and a slow last stage (1 ms per 1,000-item batch)");
  console.log("each size in a fresh process; the second pair runs with V8's heap capped at 64 MiB");
  const probe = fileURLToPath(new URL("./memory_probe.ts", import.meta.url));
  const mib = (n: number) => (n / 2 ** 20).toFixed(1) + " MiB";
  for (const cap of [undefined, 64]) {
    const results = [];
    for (const n of [100_000, 1_000_000]) {
      const flags = cap ? [`--v8-flags=--max-old-space-size=${cap}`] : [];
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", "--allow-env", ...flags, probe, String(n), "1"],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      if (!out.success) throw new Error(`memory probe failed for ${n} items (heap cap ${cap})`);
      const r = JSON.parse(new TextDecoder().decode(out.stdout));
      results.push(r);
      console.log(
        `${fmt(n).padStart(9)} items${cap ? ` (heap cap ${cap} MiB)` : ""}: ` +
          `peak RSS ${mib(r.peakRss)}, peak heap used ${mib(r.peakHeap)}, ${r.secs.toFixed(2)}s`,
      );
    }
    const [small, large] = results;
    console.log(
      `  10x the items -> peak RSS x${(large.peakRss / small.peakRss).toFixed(2)}, ` +
        `peak heap x${(large.peakHeap / small.peakHeap).toFixed(2)} (flat is about x1)`,
    );
  }
}

if (want("durable")) {
  console.log();
  await printDurableSection(Number(values["durable-items"]), rounds);
}

if (want("pipeline")) {
  await printRealPipelineSection({
    items: values.short ? 10_000 : Number(values["pipeline-items"]),
    big: values.big,
    workers: Number(values.workers),
  });
}

if (want("embedding")) await printEmbeddingSection();

if (want("postgres")) await printPostgresSection(Number(values["pg-rows"]), rounds);

if (want("dedupe")) await printDedupeSection(Number(values["dedupe-items"]), rounds);
if (want("near")) await printNearSection(Number(values["near-items"]));

// Both read the shared fixtures, which a clone without ../shared lacks.
if ((want("feeds") || want("html")) && !existsSync(FIXTURES)) {
  console.log(
    `\nfeeds, html: skipped, the shared fixtures are not at ${FIXTURES} (MILLRACE_FIXTURES)`,
  );
} else {
  if (want("feeds")) await printFeedSection(Math.max(rounds, 10));
  if (want("html")) await printHtmlSection();
}
