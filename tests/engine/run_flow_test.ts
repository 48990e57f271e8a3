import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { builtinRegistry } from "../../builtins.ts";
import { loadFlow } from "../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../engine/dead_letters.ts";
import { memoryLogger } from "../../engine/log.ts";
import { runFlow, startFlow } from "../../engine/run_flow.ts";
import { FlowEndingError } from "../../engine/errors.ts";
import type { Actor } from "../../engine/actor.ts";
import { defineFlow } from "../../config/define_flow.ts";
import { z } from "zod";
import { conformanceRegistry, Probe } from "./_conformance_registry.ts";

const DEMO = join(dirname(dirname(dirname(fileURLToPath(import.meta.url)))), "flows", "demo.yaml");

async function bigDemo() {
  const dir = await Deno.makeTempDir({ prefix: "millrace-kill-" });
  const text = (await Deno.readTextFile(DEMO)).replace("output: out/demo", `output: ${dir}`)
    .replace("count: 5000", "count: 60000");
  await Deno.writeTextFile(join(dir, "flow.yaml"), text);
  const registry = builtinRegistry();
  return { registry, flow: await loadFlow(join(dir, "flow.yaml"), registry) };
}

Deno.test("kill ends a run with a report of what it abandoned, not an error", async () => {
  const { registry, flow } = await bigDemo();
  const running = await startFlow(flow, {
    registry,
    deadLetters: new MemoryDeadLetters(),
    log: memoryLogger(),
  });
  while (running.stages[4].emitted === 0) await new Promise((r) => setTimeout(r, 10));
  running.stop();
  running.kill();
  const report = await running.done;
  assert.equal(report.killed, true);
  assert.equal(report.stopped, true);
  assert.ok(report.inFlight > 0, "items were abandoned mid-pipeline");
  const emitted = report.sources[0].emitted;
  assert.ok(emitted <= 60000);
  let settled = report.published;
  for (const s of report.stages) {
    settled += Object.values(s.dropped).reduce((a, b) => a + b, 0) +
      Object.values(s.rejected).reduce((a, b) => a + b, 0) + s.failed;
  }
  assert.equal(report.inFlight, emitted - settled, "every item emitted is accounted for");
});

Deno.test("a run that ends by itself reports nothing killed", async () => {
  const { registry, flow } = await bigDemo();
  const running = await startFlow(flow, {
    registry,
    deadLetters: new MemoryDeadLetters(),
    log: memoryLogger(),
  });
  running.stop();
  const report = await running.done;
  assert.equal(report.killed, false);
  assert.equal(report.inFlight, 0);
});

Deno.test("a stage's close is called once, after its last batch", async () => {
  let closes = 0;
  let handled = 0;
  const registry = builtinRegistry().stage({
    kind: "counting",
    summary: "counts what it handles",
    schema: z.strictObject({}),
    create: (): Actor => ({
      handle(batch, out) {
        handled += batch.length;
        for (const item of batch) out.emit(item);
      },
      close() {
        assert.equal(handled, 30, "close comes after every batch");
        closes++;
      },
    }),
  });
  const dir = await Deno.makeTempDir({ prefix: "millrace-close-" });
  const flow = defineFlow({
    name: "close",
    output: dir,
    sources: { g: { kind: "generator", count: 30, duplicates: 0, nearDuplicates: 0, invalid: 0 } },
    pipeline: [{ counting: {} }],
  }, registry);
  await runFlow(flow, { registry, deadLetters: new MemoryDeadLetters(), log: memoryLogger() });
  assert.equal(closes, 1);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the failure that ends a run is the first one, not an earlier stage's echo of it", async () => {
  // The last stage ends the run (stdout's reader has gone) while the stage
  // before it is writing dead letters; the kill closes the channel it then
  // sends to. The run used to fail with that stage's "send on a closed channel".
  // Validate is writing a batch's dead letters when the last stage ends the run.
  const writing = Promise.withResolvers<void>();
  const ended = Promise.withResolvers<void>();
  let reached = false;
  const registry = builtinRegistry().stage({
    kind: "ending",
    summary: "ends the run once the stage before it writes dead letters",
    schema: z.strictObject({}),
    create: (): Actor => ({
      async handle() {
        reached = true;
        await writing.promise;
        ended.resolve();
        throw new FlowEndingError("the reader has gone");
      },
    }),
  });
  const slowLetters = {
    async write() {
      if (!reached) return; // the first batch goes through
      writing.resolve();
      await ended.promise;
      await new Promise((r) => setTimeout(r, 20)); // the kill has closed the channels by now
    },
  };
  const dir = await Deno.makeTempDir({ prefix: "millrace-ending-" });
  try {
    const flow = defineFlow({
      name: "ending",
      output: dir,
      sources: { g: { kind: "generator", count: 3000, batch: 100, invalid: 0.2 } },
      pipeline: [{ validate: { require: ["title", "url"] } }, { ending: {} }],
    }, registry);
    const error = await runFlow(flow, { registry, deadLetters: slowLetters, log: memoryLogger() })
      .then(() => undefined, (e: Error) => e);
    assert.ok(error instanceof FlowEndingError, String(error));
    assert.equal(error.message, "the reader has gone");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stage whose close throws is logged; the others still close and the run still reports", async () => {
  const closed: string[] = [];
  const registry = builtinRegistry();
  for (
    const [kind, close] of [
      ["closes-badly-at-once", () => {
        closed.push("at once");
        throw new Error("close failed: http://u:s3cret@db/");
      }],
      ["closes-badly-later", () => {
        closed.push("later");
        return Promise.reject("later failure");
      }],
      ["closes-well", () => void closed.push("well")],
    ] as const
  ) {
    registry.stage({
      kind,
      summary: "",
      schema: z.strictObject({}),
      create: (): Actor => ({
        handle(batch, out) {
          for (const it of batch) out.emit(it);
        },
        close,
      }),
    });
  }
  const flow = defineFlow({
    name: "closing",
    sources: { g: { kind: "generator", count: 20 } },
    pipeline: [{ "closes-badly-at-once": {} }, { "closes-badly-later": {} }, { "closes-well": {} }],
  }, registry);
  const log = memoryLogger();
  const report = await runFlow(flow, { registry, deadLetters: new MemoryDeadLetters(), log });
  assert.equal(report.stages[2].emitted, 20);
  assert.deepEqual(closed.sort(), ["at once", "later", "well"]);
  const warnings = log.lines.filter((l) => l.includes("failed to close"));
  assert.deepEqual(warnings.map((l) => l.replace(/^warn /, "")).sort(), [
    "closing: stage closes-badly-at-once failed to close: close failed: http://u:***@db/",
    "closing: stage closes-badly-later failed to close: later failure",
  ]);
});

Deno.test("a kill while a source batch larger than the first channel goes in: the counts still add up", async () => {
  const probe = new Probe();
  const registry = conformanceRegistry(probe);
  const out = await Deno.makeTempDir({ prefix: "millrace-kill-" });
  // Batches of 200 into channels of 10.
  const flow = defineFlow({
    name: "parts",
    output: out,
    capacity: 10,
    sources: { n: { kind: "feed", count: 1000, batch: 200, hold: true } },
    pipeline: [
      { record: { delayMs: 20 } },
      { publish: { sinks: [{ recording: {} }], batch: { size: 10, maxWait: 0 } } },
    ],
  }, registry);
  const running = await startFlow(flow, {
    registry,
    log: memoryLogger(),
    backoffBase: 1,
    deadLetters: new MemoryDeadLetters(),
  });
  // The first batch goes whole to the stage waiting for it; the second, in parts of 10. While
  // it goes in, the source has emitted at least what its first stage received.
  while (running.stages[0].received <= 200) await new Promise((r) => setTimeout(r, 1));
  const live = { emitted: running.sources[0].emitted, received: running.stages[0].received };
  assert.ok(live.emitted >= live.received, JSON.stringify(live));
  running.kill();
  const report = await running.done;
  await Deno.remove(out, { recursive: true });
  const emitted = report.sources[0].emitted;
  // Before: the source counted a batch only once all 200 were in: its count trailed what its
  // stages received, and a kill mid-send left out the part they had (published 250 of 200).
  assert.ok(report.published <= emitted, `published ${report.published} of ${emitted}`);
  assert.equal(report.published + report.deadLettered + report.inFlight, emitted);
});
