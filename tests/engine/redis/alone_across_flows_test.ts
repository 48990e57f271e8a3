/**
 * Redelivered entries run alone, so a crash is charged to the one entry
 * that was running; with several durable flows in one process, alone means
 * alone in the process, not in each flow: a crash in one flow charged the
 * other flow's innocent entry too (a review counted 18 split over 74
 * restarts).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { builtinRegistry } from "../../../builtins.ts";
import { parseFlow } from "../../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import type { StageSpec } from "../../../engine/registry.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { startFlow } from "../../../engine/run_flow.ts";
import { redisTest, waitFor, withRedis } from "./_harness.ts";

/** What the `gate` stages of every flow of this process do: hold on, or count overlaps. */
const gate = { hold: true, running: 0, most: 0, handled: 0 };

const gateStage: StageSpec<Record<string, never>> = {
  kind: "gate",
  summary: "holds its batches, or counts how many run at once across flows",
  schema: z.strictObject({}),
  create: () => ({
    async handle(batch, out) {
      if (gate.hold) return await new Promise<void>(() => {});
      gate.most = Math.max(gate.most, ++gate.running);
      await new Promise((r) => setTimeout(r, 300));
      gate.running--;
      gate.handled++;
      for (const item of batch) out.emit(item);
    },
  }),
};

/** Starts flow `name` (generator, validate, gate, publish) on `server`, its output under `dir`. */
function startGated(server: { url: string }, dir: string, name: string) {
  const registry = builtinRegistry().stage(gateStage);
  const flow = parseFlow(
    `name: ${name}
durability: redis
redis: ${server.url}
output: ${dir}/${name}
sources:
  news: { kind: generator, count: 3, seed: 3, invalid: 0, duplicates: 0, nearDuplicates: 0 }
pipeline:
  - validate: { require: [title, url] }
  - gate: {}
  - publish: [ { jsonl: { path: items.jsonl } } ]
`,
    `${name}.yaml`,
    registry,
    {},
  );
  return startFlow(flow, { registry, deadLetters: new MemoryDeadLetters(), log: memoryLogger() });
}

redisTest(
  "two durable flows in one process run their redelivered entries one at a time",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-alone-" });
      const start = (name: string) => startGated(server, dir, name);
      try {
        // Each flow's one entry is held by a run that is then killed: both are redelivered next.
        for (const name of ["alpha", "beta"]) {
          const running = await start(name);
          await waitFor(`${name}'s items to reach the gate`, () => running.stages[1].received > 0);
          running.kill();
          await running.done.catch(() => {});
        }
        gate.hold = false;
        const runs = await Promise.all([start("alpha"), start("beta")]);
        await Promise.all(runs.map((r) => r.done));
        assert.equal(gate.handled, 2);
        assert.equal(gate.most, 1, "the two flows' redelivered entries ran at once");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest("a killed run's redelivered entry that hung does not hold another flow's", async () => {
  await withRedis(async (server) => {
    const dir = await Deno.makeTempDir({ prefix: "millrace-alone-" });
    const start = (name: string) => startGated(server, dir, name);
    try {
      Object.assign(gate, { hold: true, running: 0, most: 0, handled: 0 });
      for (const name of ["gamma", "delta"]) {
        const running = await start(name);
        await waitFor(`${name}'s items to reach the gate`, () => running.stages[1].received > 0);
        running.kill();
        await running.done.catch(() => {});
      }
      // gamma's redelivered entry hangs alone, and its run is killed.
      const gamma = await start("gamma");
      await waitFor("gamma's entry to run again", () => gamma.stages[1].received > 0);
      gamma.kill();
      await gamma.done.catch(() => {});
      gate.hold = false;
      const delta = await start("delta");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ended = await Promise.race([
        delta.done.then(() => "done"),
        new Promise((r) => timer = setTimeout(() => r("held"), 20_000)),
      ]);
      clearTimeout(timer);
      if (ended !== "done") delta.kill();
      assert.equal(ended, "done");
      assert.equal(gate.handled, 1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
