/**
 * After a connection drop, a step looks for entries pending to it that it
 * never saw (a read whose reply was lost) and runs them. Looking must not
 * count a delivery: Redis's delivery count is what a dead letter's
 * `attempts` says, and the entries the step holds meanwhile were delivered
 * once. A read of the consumer's own history (XREADGROUP from 0) counted one
 * for each of them, and reset their idle time, at every drop.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { loadFlow } from "../../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { runFlow } from "../../../engine/run_flow.ts";
import { RedisProxy } from "../../_redis_proxy.ts";
import { client, flowKeys, redisTest, waitFor, withRedis, writeFlow } from "./_harness.ts";
import { workerRegistry } from "./_worker.ts";

redisTest(
  "entries a step holds keep a delivery count of 1 when it reads back an orphan after a drop",
  async () => {
    await withRedis(async (server) => {
      const proxy = new RedisProxy(server.port);
      const admin = client(server);
      const dir = await Deno.makeTempDir({ prefix: "millrace-own-pending-" });
      // A stage that holds every batch until released, counting the batches it was given.
      let entered = 0;
      let release!: () => void;
      const released = new Promise<void>((r) => release = r);
      const registry = workerRegistry().stage({
        kind: "gate",
        summary: "holds its batches until the test releases them",
        schema: z.strictObject({}),
        create: () => ({
          async handle(batch, out) {
            entered++;
            await released;
            for (const item of batch) out.emit(item);
          },
        }),
      });
      // The third read of the gate's input that delivers (after two batches entered) loses its
      // reply: its entry is pending to the step, which never saw it.
      proxy.loseReply(
        (chunk) =>
          entered === 2 && /xreadgroup/i.test(chunk) && /:in:gate\r\n/.test(chunk) &&
          /\$1\r\n>\r\n/.test(chunk),
      );
      try {
        const yaml = `
name: own
durability: redis
redis: ${proxy.url}
output: ${dir}
sources:
  items: { kind: numbered, count: 150, batch: 150 }
pipeline:
  - gate: { concurrency: 3 }
  - publish: [ { jsonl: { path: items.jsonl } } ]
durable: { claimAfter: 30s, entryItems: 50 }
`;
        const flow = await loadFlow(await writeFlow(dir, yaml), registry);
        const running = runFlow(flow, {
          registry,
          deadLetters: new MemoryDeadLetters(),
          log: memoryLogger(),
        });
        // The orphan is found and run: the gate holds all three entries.
        await waitFor("the orphan entry to run", () => entered === 3, 20_000);
        assert.equal(proxy.repliesLost, 1);
        const key = flowKeys("own", "millrace").input("gate", "normal");
        const pending = await admin.xpending(key, "gate", "-", "+", 10) as [
          string,
          string,
          number,
          number,
        ][];
        assert.deepEqual(pending.map(([, , , deliveries]) => deliveries), [1, 1, 1]);
        release();
        const report = await running;
        assert.equal(report.published, 150);
      } finally {
        release();
        admin.disconnect();
        await proxy.close();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
