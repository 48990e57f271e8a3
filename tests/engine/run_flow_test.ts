import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { builtinRegistry } from "../../actors/builtins.ts";
import { loadFlow } from "../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../engine/dead_letters.ts";
import { memoryLogger } from "../../engine/log.ts";
import { startFlow } from "../../engine/run_flow.ts";

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
