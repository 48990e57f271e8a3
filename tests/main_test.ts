import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateItems } from "../adapters/generator_source.ts";
import { builtinRegistry } from "../actors/builtins.ts";
import { loadFlow } from "../config/load_flow.ts";
import { MemoryDeadLetters } from "../engine/dead_letters.ts";
import { memoryLogger } from "../engine/log.ts";
import { runFlow } from "../engine/run_flow.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const MAIN = join(ROOT, "main.ts");
const DEMO = join(ROOT, "flows", "demo.yaml");
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"];

function readJsonl(path: string): Record<string, unknown>[] {
  return Deno.readTextFileSync(path).split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/** The demo flow file, pointed at a fresh output directory. */
async function demoIn(dir: string, patch = (text: string) => text): Promise<string> {
  const text = (await Deno.readTextFile(DEMO)).replace("output: out/demo", `output: ${dir}`);
  const path = join(dir, "flow.yaml");
  await Deno.writeTextFile(path, patch(text));
  return path;
}

function cli(args: string[], cwd = ROOT) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, MAIN, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
}

Deno.test("the demo publishes exactly N - D - V items, each once, and dead-letters the invalid ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-demo-" });
  const registry = builtinRegistry();
  const flow = await loadFlow(await demoIn(dir), registry);
  const deadLetters = new MemoryDeadLetters();
  const report = await runFlow(flow, { registry, deadLetters, log: memoryLogger() });

  const { stats } = generateItems({ count: 5000, seed: 42 });
  const expected = stats.total - stats.duplicates - stats.nearDuplicates - stats.invalid;
  assert.ok(stats.duplicates > 0 && stats.nearDuplicates > 0 && stats.invalid > 0);
  const lines = readJsonl(join(dir, "items.jsonl"));
  assert.equal(lines.length, expected);
  assert.equal(new Set(lines.map((l) => l.id)).size, expected, "each item once");
  assert.equal(report.published, expected);
  assert.ok(lines.every((l) => Array.isArray(l.vector) && (l.vector as number[]).length === 256));
  assert.ok(
    lines.every((l) => typeof (l.payload as Record<string, unknown>).language === "string"),
  );

  assert.equal(deadLetters.entries.length, stats.invalid);
  assert.ok(deadLetters.entries.every((d) => d.stage === "validate" && d.reason.length > 0));
  const dedupe = report.stages.find((s) => s.id === "dedupe")!;
  assert.equal(dedupe.dropped["duplicate"], stats.duplicates);
  assert.equal(dedupe.dropped["near-duplicate"], stats.nearDuplicates);
});

Deno.test("`main.ts` runs a flow file, prints per-stage counts and writes dead letters beside the output", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-cli-" });
  const out = await cli([await demoIn(dir)]).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.match(stderr, /demo: finished in .*: 4200 published, 200 dead letters/);
  assert.match(stderr, /dedupe\s+4800\s+4200\s+600\s+0/);
  assert.match(stderr, /400 duplicate, 200 near-duplicate/);
  const dead = readJsonl(join(dir, "dead_letters.jsonl"));
  assert.equal(dead.length, 200);
  assert.ok(dead.every((d) => typeof d.reason === "string" && d.stage === "validate"));
});

Deno.test("SIGTERM mid-run stops the sources and still publishes everything that was accepted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-sigterm-" });
  // Many items and small edges: the run is far from done when the signal comes.
  const flow = await demoIn(dir, (t) =>
    t.replace("count: 5000", "count: 400000, batch: 200")
      .replace("durability: memory", "durability: memory\ncapacity: 512"));
  const child = cli([flow, "--log-format", "json"]).spawn();
  const items = join(dir, "items.jsonl");
  for (let i = 0; i < 300; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const size = await Deno.stat(items).then((s) => s.size, () => 0);
    if (size > 0) break;
  }
  child.kill("SIGTERM");
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  const done = stderr.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.report);
  assert.ok(done, "a final report line");
  const report = done.report;
  assert.equal(report.stopped, true);
  const scraped = report.sources[0].emitted;
  assert.ok(scraped < 400000, "the sources stopped early");
  const lines = readJsonl(items);
  assert.equal(lines.length, report.published, "everything published reached the sink");
  // Every item the sources emitted is accounted for: published, dropped or dead-lettered.
  let dropped = 0;
  let dead = 0;
  for (const s of report.stages) {
    dropped += Object.values(s.dropped as Record<string, number>).reduce((a, b) => a + b, 0);
    dead += Object.values(s.rejected as Record<string, number>).reduce((a, b) => a + b, 0) +
      s.failed;
  }
  assert.equal(report.published + dropped + dead, scraped);
});

Deno.test("`main.ts check` validates a flow without running it", async () => {
  const out = await cli(["check", DEMO]).output();
  assert.equal(out.code, 0);
  assert.match(
    new TextDecoder().decode(out.stdout),
    /ok: flow demo.*\n.*newsroom \(generator\)\n.*validate → dedupe → enrich → embed → publish/,
  );
});

Deno.test("bad input: one clear line, exit code 2, nothing written", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-bad-" });
  const out = join(dir, "out");
  const cases: [string, string, RegExp][] = [
    ["empty.yaml", "", /empty\.yaml.*empty/i],
    ["binary.yaml", "\u0000\u0001\u0002name", /binary\.yaml/],
    [
      "unknown.yaml",
      `name: x\noutput: ${out}\nsources: { g: { kind: generator } }\npipeline:\n  - validat: {}\n`,
      /unknown\.yaml:5:5: .*did you mean "validate"/,
    ],
    [
      "negative.yaml",
      `name: x\noutput: ${out}\nsources: { g: { kind: generator } }\npipeline:\n  - embed: { batch: { size: -4 } }\n`,
      /negative\.yaml:5:.*pipeline\[0\]\.embed\.batch\.size/,
    ],
    [
      "missing-source.yaml",
      `name: x\noutput: ${out}\nsources: { f: { kind: rss, path: ${dir}/nope.xml } }\npipeline:\n  - publish: [ { jsonl: { path: items.jsonl } } ]\n`,
      /nope\.xml/,
    ],
  ];
  for (const [name, text, message] of cases) {
    await t.step(name, async () => {
      const path = join(dir, name);
      await Deno.writeTextFile(path, text);
      const run = await cli([path]).output();
      const stderr = new TextDecoder().decode(run.stderr).trim();
      assert.equal(run.code, 2, stderr);
      assert.match(stderr, message);
      assert.equal(stderr.split("\n").length <= 2, true, `short error, got:\n${stderr}`);
      assert.equal(await Deno.stat(out).then(() => true, () => false), false, "nothing written");
    });
  }
});

Deno.test("flows/feeds.yaml runs the real fixture feeds end to end", async () => {
  const registry = builtinRegistry();
  const flow = await loadFlow(join(ROOT, "flows", "feeds.yaml"), registry);
  flow.outDir = await Deno.makeTempDir({ prefix: "millrace-feeds-" });
  const deadLetters = new MemoryDeadLetters();
  const report = await runFlow(flow, { registry, deadLetters, log: memoryLogger() });
  // guardian 55 + heise 15 + rss-1 69 + encoding 40 + reddit 24 + rss2sample 4 + incomplete 1, intertwingly 20
  assert.deepEqual(report.sources.map((s) => s.emitted), [208, 20]);
  assert.equal(report.published, 226);
  assert.deepEqual(
    deadLetters.entries.map((d) => d.reason),
    ['missing required field "title"', 'missing required field "title"'],
  );
  const lines = readJsonl(join(flow.outDir, "items.jsonl"));
  assert.equal(lines.length, 226);
  const blog = lines.filter((l) => l.source === "blog");
  assert.ok(
    blog.every((l) =>
      String((l.payload as { url: string }).url).startsWith("http://intertwingly.net/")
    ),
  );
  const german = lines.filter((l) => (l.payload as { language: string }).language === "de");
  assert.ok(german.length >= 15, `heise entries are German, got ${german.length}`);
});
