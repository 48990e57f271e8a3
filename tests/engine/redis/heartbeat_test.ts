/**
 * A process that holds a batch longer than `claimAfter` and is alive keeps
 * it: the other process does not claim it and run it a second time (an
 * embedding or LLM call paid twice). A process that stops renews nothing,
 * so its batch is still claimed (recovery_test.ts, chaos worker-kill).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineFlow } from "../../../config/define_flow.ts";
import { sleep } from "../../../engine/backoff.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { startFlow } from "../../../engine/run_flow.ts";
import { conformanceRegistry, keyOf, Probe } from "../_conformance_registry.ts";
import { redisTest, withRedis } from "./_harness.ts";

redisTest("a batch held past claimAfter by a live process is not claimed by another", async () => {
  await withRedis(async (server) => {
    const probe = new Probe();
    const tries: string[][] = [];
    const started = Promise.withResolvers<void>();
    const registry = conformanceRegistry(probe).stage({
      kind: "slow",
      summary: "takes 5 claimAfter periods over each batch",
      schema: z.strictObject({}),
      create: () => ({
        async handle(batch, out) {
          tries.push(batch.map(keyOf));
          started.resolve();
          await sleep(3000);
          for (const item of batch) out.emit(item);
        },
      }),
    });
    const dir = await Deno.makeTempDir({ prefix: "millrace-heartbeat-" });
    try {
      const flow = defineFlow({
        name: "held",
        output: dir,
        durability: "redis",
        redis: server.url,
        sources: { n: { kind: "feed", count: 3, batch: 3 } },
        pipeline: [{ slow: {} }, { record: {} }],
        durable: { claimAfter: "600ms" },
      }, registry);
      const run = () =>
        startFlow(flow, { registry, deadLetters: new MemoryDeadLetters(), log: memoryLogger() });
      const first = await run();
      await started.promise;
      // A second process of the same flow, looking for abandoned entries every 250 ms.
      const second = await run();
      await Promise.all([first.done, second.done]);
      assert.deepEqual(tries, [["n0", "n1", "n2"]], "the batch ran once, in the first process");
      assert.deepEqual(probe.handled.flat(), ["n0", "n1", "n2"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
