import assert from "node:assert/strict";
import { join } from "node:path";
import { JsonlDeadLetters } from "../../../adapters/sinks/jsonl_dead_letters.ts";
import { envelope } from "../../../engine/item.ts";
import { FlowEndingError } from "../../../engine/errors.ts";
import { builtinRegistry } from "../../../builtins.ts";
import { loadFlow } from "../../../config/load_flow.ts";
import { createLogger } from "../../../engine/log.ts";
import { runFlow } from "../../../engine/run_flow.ts";

Deno.test("dead letters are appended as JSON lines with time, stage, reason, attempts and item", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "out", "trends", "dead_letters.jsonl");
  const a = envelope({ title: "casino bonus", url: "https://spam.example" }, "hn", 1);
  const b = envelope({ title: "no url" }, "blog", 2);

  const letters = new JsonlDeadLetters(path);
  await letters.write([{ stage: "validate", reason: "spam: casino", attempts: 1, item: a }]);
  await letters.write([]);
  await letters.close();
  const again = new JsonlDeadLetters(path);
  await again.write([
    { stage: "embed", reason: "timeout", attempts: 5, item: b },
    { stage: "embed", reason: "timeout", attempts: 5, item: b },
  ]);
  await again.close();

  const text = await Deno.readTextFile(path);
  const entries = text.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(
    entries.map(({ stage, reason, attempts, item }) => ({ stage, reason, attempts, item })),
    [
      { stage: "validate", reason: "spam: casino", attempts: 1, item: a },
      { stage: "embed", reason: "timeout", attempts: 5, item: b },
      { stage: "embed", reason: "timeout", attempts: 5, item: b },
    ],
    "appends across opens, keeping repeats within a run: two failures are two events",
  );
  for (const e of entries) {
    assert.ok(Math.abs(Date.parse(e.time) - Date.now()) < 60_000, `time is an ISO date: ${e.time}`);
  }
});

Deno.test("a later run adds only the dead letters beyond what the file holds per stage, id and reason", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "dead_letters.jsonl");
  const a = envelope({ title: "x", url: "https://a.example" }, "hn", 1);
  const b = envelope({ title: "y", url: "https://b.example" }, "hn", 2);
  // A line cut short by a crash, then the file as a previous run left it.
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      time: "t",
      stage: "validate",
      reason: "title: too short",
      attempts: 1,
      item: a,
    }) +
      '\n{"time":"t","stage":"val',
  );
  const letters = new JsonlDeadLetters(path);
  await letters.write([
    { stage: "validate", reason: "title: too short", attempts: 1, item: a },
    { stage: "validate", reason: "spam: casino", attempts: 1, item: a },
    { stage: "embed", reason: "title: too short", attempts: 1, item: a },
    { stage: "validate", reason: "title: too short", attempts: 1, item: b },
  ]);
  await letters.close();
  const rerun = new JsonlDeadLetters(path);
  await rerun.write([
    { stage: "validate", reason: "spam: casino", attempts: 2, item: a },
    { stage: "validate", reason: "title: too short", attempts: 1, item: b },
    { stage: "validate", reason: "title: too short", attempts: 1, item: b },
  ]);
  await rerun.close();

  const lines = (await Deno.readTextFile(path)).trimEnd().split("\n");
  assert.equal(lines[1], '{"time":"t","stage":"val', "the cut line is closed off, not joined");
  const entries = [lines[0], ...lines.slice(2)].map((l) => JSON.parse(l));
  assert.deepEqual(
    entries.map((e) => `${e.stage} ${e.item.id} ${e.reason}`),
    [
      `validate ${a.id} title: too short`,
      `validate ${a.id} spam: casino`,
      `embed ${a.id} title: too short`,
      `validate ${b.id} title: too short`,
      `validate ${b.id} title: too short`,
    ],
    "the first write matches the line already there; the rerun adds only b's second copy",
  );
});

Deno.test("running the demo flow twice leaves its 200 dead letters once", async () => {
  const dir = await Deno.makeTempDir();
  const flowFile = join(dir, "demo.yaml");
  const demo = new URL("../../../flows/demo.yaml", import.meta.url);
  await Deno.writeTextFile(
    flowFile,
    (await Deno.readTextFile(demo)).replace("output: out/demo", `output: ${join(dir, "out")}`),
  );
  const registry = builtinRegistry();
  const counts: number[] = [];
  for (let run = 0; run < 2; run++) {
    const flow = await loadFlow(flowFile, registry, {});
    const deadLetters = new JsonlDeadLetters(join(flow.outDir, "dead_letters.jsonl"));
    const report = await runFlow(flow, { registry, deadLetters, log: createLogger("text", true) });
    await deadLetters.close();
    assert.equal(report.deadLettered, 200, "every run dead-letters the 200 invalid items");
    const text = await Deno.readTextFile(join(dir, "out", "dead_letters.jsonl"));
    counts.push(text.trimEnd().split("\n").length);
  }
  assert.deepEqual(counts, [200, 200]);
});

Deno.test("an item JSON cannot hold is still dead-lettered, with its id and a payload saying why", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "dead_letters.jsonl");
  // What a source or stage registered in code may make: a BigInt, a cycle.
  const big = envelope({ title: "counts", views: 10n ** 30n }, "custom", 1);
  const loop: Record<string, unknown> = { title: "loop" };
  loop.self = loop;
  const cyclic = envelope(loop, "custom", 2);
  const plain = envelope({ title: "no url" }, "blog", 3);
  const letters = new JsonlDeadLetters(path);
  await letters.write([
    { stage: "validate", reason: "missing url", attempts: 1, item: big },
    { stage: "validate", reason: "missing url", attempts: 1, item: cyclic },
    { stage: "validate", reason: "missing url", attempts: 1, item: plain },
  ]);
  await letters.close();
  const entries = (await Deno.readTextFile(path)).trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(entries.map((e) => e.item.id), [big.id, cyclic.id, plain.id]);
  assert.deepEqual(Object.keys(entries[0]), ["time", "stage", "reason", "attempts", "item"]);
  assert.match(entries[0].item.payload.unencodable, /BigInt/);
  assert.match(entries[1].item.payload.unencodable, /circular/i);
  assert.equal(entries[1].item.source, "custom");
  assert.deepEqual(entries[2].item, JSON.parse(JSON.stringify(plain)));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a dead letter that cannot be written ends the run, saying where and why", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "dead_letters.jsonl");
  await Deno.mkdir(path);
  const letters = new JsonlDeadLetters(path);
  const item = envelope({ title: "t", url: "https://a.test/1" }, "s");
  const error = await letters.write([{ stage: "validate", reason: "r", attempts: 1, item }])
    .catch((e) => e);
  assert.ok(error instanceof FlowEndingError, String(error));
  assert.match(
    error.message,
    /^cannot write dead letters to .*dead_letters\.jsonl: Is a directory/,
  );
  // What it could not record is kept, as the line it would have been, for the run to say.
  assert.equal(letters.unwritten.length, 1);
  const line = JSON.parse(letters.unwritten[0]);
  assert.deepEqual([line.stage, line.reason, line.item.id], ["validate", "r", item.id]);
  await letters.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a write cut short (a disk filling) leaves as unwritten only the letters not whole in the file", async () => {
  // All of them were said to be unwritten, to add by hand: the ones in the file came twice.
  const dir = await Deno.makeTempDir();
  const path = join(dir, "dead_letters.jsonl");
  const letters = new JsonlDeadLetters(path);
  await letters.write([]);
  const entries = [1, 2, 3].map((n) => ({
    stage: "validate",
    reason: "r",
    attempts: 1,
    item: envelope({ title: `t${n}`, url: `https://a.test/${n}` }, "s"),
  }));
  const write = Deno.FsFile.prototype.write;
  Deno.FsFile.prototype.write = async function (this: Deno.FsFile, bytes: Uint8Array) {
    Deno.FsFile.prototype.write = () => Promise.reject(new Error("No space left on device"));
    const first = new TextDecoder().decode(bytes).indexOf("\n") + 1;
    return await write.call(this, bytes.subarray(0, first + 20)); // one line and a bit
  };
  try {
    await assert.rejects(letters.write(entries), FlowEndingError);
  } finally {
    Deno.FsFile.prototype.write = write;
  }
  assert.deepEqual(
    letters.unwritten.map((l) => JSON.parse(l).item.id),
    [entries[1].item.id, entries[2].item.id],
  );
  await letters.close();
  await Deno.remove(dir, { recursive: true });
});
