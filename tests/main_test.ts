import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateItems } from "../adapters/sources/generator_source.ts";
import { builtinRegistry } from "../builtins.ts";
import { loadFlow } from "../config/load_flow.ts";
import { MemoryDeadLetters } from "../engine/dead_letters.ts";
import { memoryLogger } from "../engine/log.ts";
import { runFlow } from "../engine/run_flow.ts";
import { writeSlowStep } from "./_slow_step.ts";
import { withServer } from "./_http_server.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const MAIN = join(ROOT, "main.ts");
const DEMO = join(ROOT, "flows", "demo.yaml");
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"];

/** The item lines of a JSONL file: merge update lines (`update: true`) are left out. */
function readJsonl(path: string): Record<string, unknown>[] {
  return Deno.readTextFileSync(path).split("\n").filter(Boolean).map((l) => JSON.parse(l))
    .filter((l) => l.update !== true);
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

Deno.test("dead letters that cannot be written end the run saying why, with its summary, not a stack", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-cli-" });
  // Where dead_letters.jsonl goes, a directory: every write of a letter fails, as on a full disk.
  await Deno.mkdir(join(dir, "dead_letters.jsonl"));
  const out = await cli([await demoIn(dir)]).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1, stderr);
  assert.match(
    stderr,
    /^error: demo: cannot write dead letters to \S+dead_letters\.jsonl: Is a directory \(os error 21\).*: stopped; \d+ items in flight were not published$/m,
  );
  assert.match(stderr, /^stage +in +out/m, "the summary is printed");
  assert.doesNotMatch(stderr, /^\s+at /m, "no stack");
  // The letters it could not write are not said to be in the file, and are not lost: each
  // follows as the line it would have been. They were counted as if written, and gone.
  assert.doesNotMatch(stderr, /dead letters in dead_letters\.jsonl/);
  const said = stderr.match(/^error: demo: (\d+) dead letters? could not be written .*:$/m);
  assert.ok(said, stderr);
  const lines = stderr.split("\n").filter((l) => l.startsWith('{"time":'));
  assert.equal(lines.length, Number(said[1]));
  assert.ok(lines.length > 0);
  for (const line of lines) {
    const letter = JSON.parse(line);
    assert.equal(letter.stage, "validate");
    assert.equal(typeof letter.item.id, "string");
  }
  // --quiet too: they are all there is of their items.
  const quiet = await cli([await demoIn(dir), "--quiet"]).output();
  const quietErr = new TextDecoder().decode(quiet.stderr);
  assert.ok(quietErr.split("\n").some((l) => l.startsWith('{"time":')), quietErr);
});

/**
 * Runs a flow with a source `api` (`api` is its block) at a local server
 * answering `answer`, beside a generator polled hourly, until items are
 * published and the server was asked `asks` times; stops it with SIGTERM
 * and returns its exit code and stderr.
 */
async function stoppedWith(
  api: (origin: string) => string,
  answer: (n: number) => Response,
  asks = 2,
): Promise<{ code: number; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "millrace-stopped-" });
  let asked = 0;
  let result = { code: -1, stderr: "" };
  try {
    await withServer(
      (req) =>
        new URL(req.url).pathname === "/robots.txt"
          ? new Response("none", { status: 404 })
          : answer(++asked),
      async (origin) => {
        const flow = join(dir, "stopped.yaml");
        await Deno.writeTextFile(
          flow,
          `name: stopped
output: ${dir}
http: { allow: ["127.0.0.1"] }
sources:
  api: ${api(origin)}
  wire: { kind: generator, count: 20, seed: 1, every: 1h }
pipeline:
  - publish: [{ jsonl: { path: items.jsonl } }]
`,
        );
        const child = cli([flow]).spawn();
        const items = join(dir, "items.jsonl");
        for (let i = 0; i < 300; i++) {
          await new Promise((r) => setTimeout(r, 100));
          const lines = await Deno.readTextFile(items).then((t) => t.split("\n").length, () => 0);
          if (lines > 1 && asked >= asks) break;
        }
        child.kill("SIGTERM");
        const out = await child.output();
        result = { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return result;
}

const story = (n: number) => Response.json([{ title: `story ${n}`, url: `https://e.com/${n}` }]);
const busy = () => new Response("busy", { status: 500 });

Deno.test("a flow stopped by SIGTERM exits 0 after a polled source's failed read it got over, and says so", async () => {
  // A week-long flow that met one 500 exited 1 at every stop: supervisors read a stop as a failure.
  const { code, stderr } = await stoppedWith(
    (origin) => `{ kind: json, url: "${origin}/items", every: 200ms }`,
    (n) => n === 1 ? busy() : story(n),
  );
  assert.equal(code, 0, stderr);
  assert.match(stderr, /^stopped: stopped after 1 failed source read in /m);
});

Deno.test("a flow stopped by SIGTERM exits 1 when a one-shot source failed, or a polled one's last read did", async () => {
  // A one-shot source that failed never reads again: what it should have read is not there.
  const once = await stoppedWith((origin) => `{ kind: json, url: "${origin}/items" }`, busy, 1);
  assert.equal(once.code, 1, once.stderr);
  // A polled source failing when the stop came is failing still.
  const failing = await stoppedWith(
    (origin) => `{ kind: json, url: "${origin}/items", every: 200ms }`,
    (n) => n === 1 ? story(n) : busy(),
  );
  assert.equal(failing.code, 1, failing.stderr);
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

Deno.test("a flow with no publish stage is warned of by check and run, and no output directory is named", async () => {
  // It said "10 published" and "output in out/t/", and wrote nothing anywhere.
  const dir = await Deno.makeTempDir({ prefix: "millrace-nopub-" });
  const file = join(dir, "t.yaml");
  await Deno.writeTextFile(
    file,
    "name: t\nsources:\n  g: { kind: generator, count: 10 }\npipeline:\n  - validate: {}\n",
  );
  const warning =
    /t\.yaml:4:1: the pipeline has no publish stage: what leaves it is counted published and written nowhere/;
  const checked = await cli(["check", file], dir).output();
  assert.equal(checked.code, 0);
  assert.match(new TextDecoder().decode(checked.stdout), warning);
  const ran = await cli([file], dir).output();
  const stderr = new TextDecoder().decode(ran.stderr);
  assert.equal(ran.code, 0, stderr);
  assert.match(stderr, warning);
  assert.doesNotMatch(stderr, /output in/);
  await Deno.remove(dir, { recursive: true });
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

Deno.test("flows/feeds.yaml runs the feeds in flows/data/feeds end to end", async () => {
  const registry = builtinRegistry();
  const flow = await loadFlow(join(ROOT, "flows", "feeds.yaml"), registry);
  flow.outDir = await Deno.makeTempDir({ prefix: "millrace-feeds-" });
  const deadLetters = new MemoryDeadLetters();
  const report = await runFlow(flow, { registry, deadLetters, log: memoryLogger() });
  // news: RSS 2.0 5 + RDF 3 + German Latin-1 3; releases: Atom 3
  assert.deepEqual(report.sources.map((s) => s.emitted), [11, 3]);
  assert.equal(report.published, 12, "one untitled item dead-lettered, one repost dropped");
  assert.deepEqual(
    deadLetters.entries.map((d) => [d.stage, d.reason, (d.item.payload as { url: string }).url]),
    [["validate", 'missing required field "title"', "https://millrace.example/news/untitled"]],
  );
  const lines = readJsonl(join(flow.outDir, "items.jsonl"));
  const payloads = lines.map((l) => l.payload as Record<string, string>);
  assert.equal(lines.length, 12);
  assert.deepEqual(
    lines.filter((l) => l.source === "releases").map((l) => (l.payload as { url: string }).url),
    [
      "https://millrace.example/releases/0.1.0.html",
      "https://millrace.example/releases/0.0.9.html",
      "https://millrace.example/releases/0.0.8.html",
    ],
    "relative Atom links resolve against baseUrl",
  );
  const german = payloads.filter((p) => p.language === "de").map((p) => p.title);
  assert.deepEqual(german, [
    "Große Feeds in kleinen Schritten verarbeiten",
    "Doppelte Einträge erkennen, auch wenn die Überschrift sich ändert",
    "Warum ein Fehler nie still verschwindet",
  ], "the Latin-1 feed decodes by its declaration and reads as German");
  assert.equal(
    payloads.filter((p) => p.url.endsWith("/dead-letters")).length,
    1,
    "the repost is dropped",
  );
});

/**
 * A demo far too big to finish, or to drain in a moment once stopped, started by main.ts. Its
 * vectors have 16,384 dimensions: with the demo's actors as cheap as they are, the thousand or so
 * items in flight at 256 dimensions drain in well under a second.
 */
async function startBig(dir: string, args: string[], perms: string[] = []) {
  const flow = await demoIn(
    dir,
    (t) =>
      t.replace("count: 5000", "count: 100000").replace("dimensions: 256", "dimensions: 16384"),
  );
  return await startWriting(dir, flow, args, perms);
}

/** `main.ts FLOW`, returned once its `items.jsonl` in `dir` has lines: the run is under way. */
async function startWriting(dir: string, flow: string, args: string[], perms: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, ...perms, MAIN, flow, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  // Signal only once items are moving: the run is under way, mid-stream.
  const items = join(dir, "items.jsonl");
  for (let i = 0; i < 300; i++) {
    await new Promise((r) => setTimeout(r, 50));
    if (await Deno.stat(items).then((s) => s.size > 0, () => false)) break;
  }
  return child;
}

Deno.test("past --grace the run is stopped hard: one line says what was lost, the report follows, exit 1", async (t) => {
  await t.step("json: the last line is still the report", async () => {
    const dir = await Deno.makeTempDir({ prefix: "millrace-grace-" });
    const child = await startBig(dir, ["--grace", "50ms", "--log-format", "json"]);
    child.kill("SIGINT");
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    const lines = stderr.trim().split("\n").map((l) => JSON.parse(l));
    const last = lines[lines.length - 1];
    assert.equal(last.report?.killed, true, stderr);
    assert.equal(last.report.stopped, true);
    const lost = lines.find((l) => /grace period/.test(l.msg));
    assert.equal(lost.level, "error");
    // Every line names its flow for a log store, the signal's own too.
    assert.deepEqual(lines.filter((l) => l.flow !== "demo" && !l.report), []);
    assert.match(
      lost.msg,
      /^demo: grace period of 50ms ran out: stopped with \d+ items? still in flight; they are lost, but for those a sink was writing as it ran out, which may be in its output though not counted as published$/,
    );
    // The count is what the report cannot account for otherwise.
    const r = last.report;
    const settled = r.stages.reduce(
      (n: number, s: { dropped: object; rejected: object; failed: number }) =>
        n + [...Object.values(s.dropped), ...Object.values(s.rejected)].reduce((a, b) => a + b, 0) +
        s.failed,
      r.published,
    );
    assert.equal(lost.inFlight, r.sources[0].emitted - settled);
    assert.equal(r.inFlight, lost.inFlight);
  });
  await t.step("text: the summary, then the line, and no stack trace", async () => {
    const dir = await Deno.makeTempDir({ prefix: "millrace-grace-" });
    const child = await startBig(dir, ["--grace", "50ms"]);
    child.kill("SIGINT");
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    assert.match(stderr, /demo: stopped in .*: \d+ published/);
    assert.match(stderr, /\nerror: demo: grace period of 50ms ran out: stopped with \d+ items?/);
    assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
    assert.doesNotMatch(stderr, /ChannelClosedError|killed at/);
  });
});

/**
 * A run whose drain takes seconds whatever the machine: a step that waits 50 ms per batch of 10
 * holds the items in flight, so a second signal 600 ms after the first comes mid-drain (the demo's
 * drain could end within 600 ms, and the second signal then found the process gone).
 */
async function startSlowDrain(dir: string, args: string[], perms: string[]) {
  await writeSlowStep(dir, { first: 50, rest: 50 });
  const flow = join(dir, "slow.yaml");
  await Deno.writeTextFile(
    flow,
    `name: demo\noutput: ${dir}\nsources: { gen: { kind: generator, count: 100000 } }\n` +
      "pipeline:\n  - step: { module: ./slow.ts }\n  - publish: [ { jsonl: { path: items.jsonl } } ]\n",
  );
  return await startWriting(dir, flow, args, perms);
}

Deno.test("a second signal exits 130 at once, however soon past the first's echo window (250 ms) it follows", async (t) => {
  const cases: [Deno.Signal, Deno.Signal, number, string[]][] = [
    ["SIGINT", "SIGINT", 600, []],
    ["SIGTERM", "SIGINT", 600, []],
    ["SIGINT", "SIGTERM", 600, []],
    // A second SIGTERM ends the process itself when it may signal (--allow-run).
    ["SIGTERM", "SIGTERM", 600, ["--allow-run"]],
  ];
  for (const [first, second, gap, perms] of cases) {
    await t.step(`${first}, ${gap} ms, ${second} ${perms.join(" ")}`, async () => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-twice-" });
      const child = await startSlowDrain(dir, ["--log-format", "json"], perms);
      child.kill(first);
      await new Promise((r) => setTimeout(r, gap));
      child.kill(second);
      const out = await child.output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 130, stderr);
      // "At once", told by how it ended rather than by a clock: by SIGINT's
      // default action (nothing of the process ran after it), or, for a
      // SIGTERM without --allow-run, in the handler's exit (its last line);
      // either way the drain the first signal began was cut short.
      const last = JSON.parse(stderr.trim().split("\n").at(-1)!);
      assert.ok(
        out.signal === "SIGINT" || last.msg === "demo: second signal, exiting now",
        `ended by ${out.signal ?? "exit"}, last line: ${last.msg}`,
      );
      assert.ok(!stderr.includes('"report"'), "no drain, no report");
    });
  }
});

Deno.test("a signal right after the first is its echo (one Ctrl-C under `deno task` comes twice): the run drains", async (t) => {
  const cases: [Deno.Signal, Deno.Signal, number][] = [
    ["SIGINT", "SIGINT", 0],
    ["SIGINT", "SIGINT", 30],
    ["SIGTERM", "SIGTERM", 30],
  ];
  for (const [first, second, gap] of cases) {
    await t.step(`${first}, ${gap} ms, ${second}`, async () => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-echo-" });
      const child = await startBig(dir, ["--log-format", "json"], ["--allow-run"]);
      child.kill(first);
      if (gap) await new Promise((r) => setTimeout(r, gap));
      child.kill(second);
      const out = await child.output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const last = JSON.parse(stderr.trim().split("\n").at(-1)!);
      assert.equal(last.report?.stopped, true, stderr);
      assert.equal(last.report.killed, false);
      assert.equal(readJsonl(join(dir, "items.jsonl")).length, last.report.published);
    });
  }
});

Deno.test("`main.ts check` checks every file given, says ok or error for each, exits 2 if any failed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-check-" });
  const bad = join(dir, "bad.yaml");
  await Deno.writeTextFile(
    bad,
    `name: x\noutput: ${dir}\nsources: { g: { kind: generator } }\npipeline:\n  - validat: {}\n`,
  );
  const out = await cli(["check", DEMO, bad, DEMO]).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 2, stderr);
  assert.equal(stdout.match(/demo\.yaml: ok: flow demo/g)?.length, 2, stdout);
  assert.match(stdout, /2 of 3 flow files ok/);
  assert.match(stderr, /^error: .*bad\.yaml:5:5: .*did you mean "validate"/);

  const good = await cli(["check", DEMO, DEMO]).output();
  assert.equal(good.code, 0);
});

Deno.test("a flow's test file given to `check` is checked as a test; given to `run`, it is said in one line", async () => {
  // Before: four schema errors (name, sources, pipeline missing; cases unknown), so
  // `check flows/*.yaml` failed in a fresh clone on flows/demo.test.yaml.
  const test = "flows/demo.test.yaml";
  const checked = await cli(["check", DEMO, test]).output();
  const stdout = new TextDecoder().decode(checked.stdout);
  assert.equal(checked.code, 0, new TextDecoder().decode(checked.stderr));
  assert.match(
    stdout,
    /demo\.test\.yaml: ok: a test of flows\/demo\.yaml, \d+ cases? \(run them with `deno task run test flows\/demo\.test\.yaml`\)/,
  );
  assert.match(stdout, /2 of 2 flow files ok/);
  const ran = await cli(["run", test]).output();
  assert.equal(ran.code, 2);
  assert.equal(
    new TextDecoder().decode(ran.stderr).trim(),
    "error: flows/demo.test.yaml: this is a flow's test file, not a flow: run its cases with " +
      '`deno task run test flows/demo.test.yaml` (see "Testing a flow" in README)',
  );
  // A test file with a mistake is said as `test` says it.
  const dir = await Deno.makeTempDir({ prefix: "millrace-check-" });
  const bad = join(dir, "x.test.yaml");
  await Deno.writeTextFile(bad, `flow: ${DEMO}\ncases:\n  - nme: a\n`);
  const wrong = await cli(["check", bad]).output();
  assert.equal(wrong.code, 2);
  const said = new TextDecoder().decode(wrong.stderr);
  assert.match(said, /x\.test\.yaml:3:\d+: cases\[0\]/);
  assert.doesNotMatch(said, /not a flow/, "said as a test file only");
  // A case naming a sink the flow does not have: `check` said ok, `test` refused it.
  const misnamed = join(dir, "y.test.yaml");
  await Deno.writeTextFile(
    misnamed,
    `flow: ${DEMO}\ncases:\n  - name: a\n    input: [{ title: Hello there, url: "https://e.com/a" }]\n` +
      `    expect: { published: { jsnol: [] } }\n`,
  );
  const checked2 = await cli(["check", misnamed]).output();
  assert.equal(checked2.code, 2, new TextDecoder().decode(checked2.stdout));
  assert.match(
    new TextDecoder().decode(checked2.stderr),
    /y\.test\.yaml:5:\d+: cases\[0\]\.expect\.published\.jsnol: flow demo has no sink "jsnol"; its sinks: jsonl; did you mean "jsonl"\?/,
  );
  // A broken flow checked beside its test file: its errors once, and the test file says why its
  // cases were not checked (they were printed twice, the second time as the test file's).
  const brokenFlow = join(dir, "b.yaml");
  await Deno.writeTextFile(
    brokenFlow,
    "name: b\nsources:\n  g: { kind: generator }\npipeline: [validte]\n",
  );
  const brokenTest = join(dir, "b.test.yaml");
  await Deno.writeTextFile(brokenTest, "cases:\n  - name: a\n    input: []\n    expect: {}\n");
  const both = await cli(["check", brokenFlow, brokenTest]).output();
  assert.equal(both.code, 2);
  const bothSaid = new TextDecoder().decode(both.stderr);
  assert.equal(bothSaid.match(/unknown stage kind "validte"/g)?.length, 1, bothSaid);
  assert.match(
    bothSaid,
    /b\.test\.yaml: its cases are not checked: the flow it tests, \S*b\.yaml, does not load/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("an html source's `follow` selector is checked in a fresh process: a good one passes `check`, a bad one names its line, by file and in code", async () => {
  // linkedom loads lazily, so only a process that has not loaded it yet
  // shows whether the check still works (a valid selector failed here once).
  const dir = await Deno.makeTempDir({ prefix: "millrace-follow-" });
  const flowWith = async (name: string, follow: string) => {
    const path = join(dir, `${name}.yaml`);
    await Deno.writeTextFile(
      path,
      `name: ${name}\noutput: ${dir}\nsources:\n  news:\n    kind: html\n` +
        `    url: http://127.0.0.1:9/list\n    follow: "${follow}"\n` +
        `pipeline:\n  - publish: [{ jsonl: { path: items.jsonl } }]\n`,
    );
    return path;
  };
  const good = await cli(["check", await flowWith("good", "h2 a")]).output();
  assert.equal(good.code, 0, new TextDecoder().decode(good.stderr));
  const bad = await cli(["check", await flowWith("bad", "h2 a[href")]).output();
  assert.equal(bad.code, 2);
  assert.match(
    new TextDecoder().decode(bad.stderr),
    /^error: .*bad\.yaml:7:13: sources\.news\.follow: not a valid CSS selector: "h2 a\[href"/,
  );

  // Built in code (defineFlow checks synchronously): the selector is tried when the flow opens.
  const script = join(dir, "in_code.ts");
  await Deno.writeTextFile(
    script,
    `import { builtinRegistry, defineFlow, MemoryDeadLetters, runFlow } from ${
      JSON.stringify(join(ROOT, "mod.ts"))
    };
const registry = builtinRegistry();
const flow = defineFlow({
  name: "in-code",
  sources: { news: { kind: "html", url: "http://127.0.0.1:9/list", follow: "h2 a[href" } },
  pipeline: [{ publish: [{ stdout: {} }] }],
}, registry);
try {
  await runFlow(flow, { registry, deadLetters: new MemoryDeadLetters() });
} catch (e) {
  console.log(String((e as Error).message));
}
`,
  );
  const code = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, "--config", join(ROOT, "deno.json"), script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.match(
    new TextDecoder().decode(code.stdout),
    /^in-code: sources\.news\.follow: not a valid CSS selector: "h2 a\[href"/,
    new TextDecoder().decode(code.stderr),
  );
});

Deno.test("bad command lines exit 2 with a line that names the likely typo", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-args-" });
  const cases: [string[], RegExp][] = [
    [[DEMO, "extra"], /^error: extra: cannot read the flow file: it does not exist/m],
    [["status", DEMO, "extra"], /unexpected argument "extra": status takes one flow file/],
    [["dlq", "list", DEMO, "extra"], /unexpected argument "extra"/],
    [[DEMO, "--quite"], /^error: unknown option --quite; did you mean --quiet\?$/m],
    [[DEMO, "--stgae", "x"], /^error: unknown option --stgae; did you mean --stage\?$/m],
    [[DEMO, "--frobnicate"], /^error: unknown option --frobnicate$/m],
    [[DEMO, "--grace"], /^error: --grace needs a value$/m],
    // A timer longer than that fires at once: the hard stop came with the first signal.
    [
      [DEMO, "--grace", "30d"],
      /^error: --grace takes a duration such as 10s, at most 24d, got "30d"$/m,
    ],
    [
      [DEMO, "--quiet", "--log-level", "debug"],
      /^error: --quiet is --log-level warn: give one of them, not both$/m,
    ],
    // Before: each printed the help or the version, ran nothing, and exited 0.
    [["help", "check"], /^error: unexpected argument "check": help takes none/m],
    [["help", "--json"], /^error: --json is not an option of help; it is an option of /m],
    [["--version", "extra"], /^error: unexpected argument "extra": --version takes none/m],
    [[DEMO, "--version"], /^error: unexpected argument ".*demo\.yaml": --version takes none/m],
    [
      ["--version", "--quiet"],
      /^error: --quiet is not an option of --version; it is an option of run$/m,
    ],
    [["chek", DEMO], /^error: unknown command "chek"; did you mean "check"\?$/m],
    [["stauts", DEMO], /^error: unknown command "stauts"; did you mean "status"\?$/m],
    // It said the flow file "replay" does not exist.
    [
      ["replay", DEMO],
      /^error: unknown command "replay"; did you mean "dlq replay" \(deno task --cwd \S+ run dlq replay .*demo\.yaml\)\?$/m,
    ],
    // An option a command does not read is refused, not ignored.
    [
      [DEMO, "--json"],
      /^error: --json is not an option of run; did you mean --log-format json\?$/m,
    ],
    [
      ["check", DEMO, "--quiet"],
      /^error: --quiet is not an option of check; it is an option of run$/m,
    ],
    [
      ["dlq", "list", DEMO, "--yes"],
      /^error: --yes is not an option of dlq list; it is an option of dlq purge and reset$/m,
    ],
    [
      ["status", DEMO, "--stage", "x"],
      /^error: --stage is not an option of status; it is an option of dlq list, dlq replay and dlq purge$/m,
    ],
    // Hints name the command a person types: here, outside the checkout, with --cwd.
    [
      ["check"],
      new RegExp(
        `^error: check needs a flow file: deno task --cwd ${escaped(ROOT)} run check ${
          escaped(join(ROOT, "flows/demo.yaml"))
        }\n` +
          `run \`deno task --cwd ${escaped(ROOT)} run help\` for usage$`,
        "m",
      ),
    ],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" ").replace(ROOT, "."), async () => {
      const out = await cli(args, dir).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 2, stderr);
      assert.match(stderr, message);
      assert.doesNotMatch(stderr, /ERR_PARSE_ARGS|positional argument/);
    });
  }
  await t.step("--help after any line prints the help, as README's table says", async () => {
    // Before: `help run --help` exited 2, refused as help with an argument.
    for (const args of [["help", "run", "--help"], [DEMO, "--version", "--help"]]) {
      const out = await cli(args, dir).output();
      assert.equal(out.code, 0, args.join(" "));
      assert.match(new TextDecoder().decode(out.stdout), /^millrace: typed dataflow/);
    }
  });
  await t.step("--version prints the version deno.json gives", async () => {
    const out = await cli(["--version"], dir).output();
    const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
    assert.equal(config.version, "0.1.0");
    assert.equal(out.code, 0);
    assert.match(
      new TextDecoder().decode(out.stdout),
      /^millrace 0\.1\.0 \(@millrace\/millrace, deno \d+\.\d+\.\d+\)\n$/,
    );
  });
  await t.step("a file named like a command is a flow file", async () => {
    await Deno.writeTextFile(join(dir, "chek"), "name: [\n");
    const out = await cli(["chek"], dir).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 2);
    assert.doesNotMatch(stderr, /unknown command/);
    assert.match(stderr, /chek/);
  });
});

Deno.test("dlq --stage naming no stage of the flow exits 2 and lists its stages", async () => {
  const out = await cli(["dlq", "list", DEMO, "--stage", "valdate"]).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 2, stderr);
  assert.equal(
    stderr.trim(),
    'error: flow demo has no stage "valdate"; its stages are validate, dedupe, enrich, embed, ' +
      'publish; did you mean "validate"?',
  );
});

Deno.test("--log-format json: bad input is one JSON line, and --quiet keeps the final report", async (t) => {
  await t.step("a flow file typo", async () => {
    const dir = await Deno.makeTempDir({ prefix: "millrace-json-" });
    const path = join(dir, "typo.yaml");
    await Deno.writeTextFile(
      path,
      `name: x\noutput: ${dir}\nsources: { g: { kind: generator } }\npipeline:\n  - validat: {}\n`,
    );
    const out = await cli([path, "--log-format", "json"]).output();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    assert.equal(out.code, 2, stderr);
    assert.equal(stderr.split("\n").length, 1, stderr);
    const line = JSON.parse(stderr);
    assert.equal(line.level, "error");
    assert.equal(line.file, path);
    assert.equal(line.line, 5);
    assert.match(line.msg, /did you mean "validate"/);
  });
  await t.step("a flow whose Redis does not answer: 75, its line naming the flow", async () => {
    // As every other line of a run names its flow; this one did not.
    const dir = await Deno.makeTempDir({ prefix: "millrace-json-" });
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = closed.addr.port;
    closed.close();
    const path = join(dir, "away.yaml");
    await Deno.writeTextFile(
      path,
      `name: away\ndurability: redis\nredis: redis://127.0.0.1:${port}\noutput: ${dir}\n` +
        `sources: { g: { kind: generator, count: 1 } }\npipeline:\n  - validate: {}\n`,
    );
    const out = await cli([path, "--log-format", "json"]).output();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    assert.equal(out.code, 75, stderr);
    const line = JSON.parse(stderr.split("\n").at(-1)!);
    assert.match(line.msg, /cannot reach Redis/);
    assert.equal(line.flow, "away");
  });
  await t.step("a usage error", async () => {
    const out = await cli([DEMO, "--log-format=json", "--quite"]).output();
    const line = JSON.parse(new TextDecoder().decode(out.stderr).trim());
    assert.equal(out.code, 2);
    assert.equal(line.msg, "unknown option --quite; did you mean --quiet?");
  });
  await t.step("--quiet", async () => {
    const dir = await Deno.makeTempDir({ prefix: "millrace-json-" });
    const out = await cli([await demoIn(dir), "--quiet", "--log-format", "json"]).output();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    assert.equal(out.code, 0, stderr);
    const lines = stderr.split("\n");
    assert.equal(lines.length, 1, "quiet: the report alone");
    assert.equal(JSON.parse(lines[0]).report.published, 4200);
  });
  await t.step("--log-level debug: each source read, with flow and source as fields", async () => {
    const dir = await Deno.makeTempDir({ prefix: "millrace-json-" });
    const out = await cli([await demoIn(dir), "--log-level", "debug", "--log-format", "json"])
      .output();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    assert.equal(out.code, 0, stderr);
    const lines = stderr.split("\n").map((l) => JSON.parse(l));
    const read = lines.find((l) => l.level === "debug" && /read \d+ items/.test(l.msg));
    assert.ok(read, stderr);
    assert.equal(read.flow, "demo");
    assert.equal(typeof read.source, "string");
  });
  await t.step("--log-level with a level that does not exist", async () => {
    const out = await cli([DEMO, "--log-level", "loud"]).output();
    assert.equal(out.code, 2);
    assert.match(
      new TextDecoder().decode(out.stderr),
      /--log-level must be debug, info, warn, error/,
    );
  });
});

/** `text` matched literally inside a RegExp. */
function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
