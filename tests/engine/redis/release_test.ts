/**
 * A run stopped hard leaves what it held claimable at once: the next
 * process's claim loop takes it at its first tick instead of waiting out
 * claimAfter (30 s by default) with nothing said.
 */
import assert from "node:assert/strict";
import { builtinRegistry } from "../../../builtins.ts";
import { parseFlow } from "../../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { startFlow } from "../../../engine/run_flow.ts";
import { client, flowKeys, redisTest, waitFor, withRedis } from "./_harness.ts";
import { hangingStage } from "../../_hanging_stage.ts";

redisTest("entries held by a run that was killed are idle for claimAfter at once", async () => {
  await withRedis(async (server) => {
    const registry = builtinRegistry().stage(hangingStage);
    const dir = await Deno.makeTempDir({ prefix: "millrace-release-" });
    const flow = parseFlow(
      `
name: released
durability: redis
redis: ${server.url}
output: ${dir}
sources:
  news: { kind: generator, count: 40, seed: 3 }
pipeline:
  - validate: { require: [title, url] }
  - hangs: {}
  - publish: [ { jsonl: { path: items.jsonl } } ]
`,
      "released.yaml",
      registry,
      {},
    );
    const redis = client(server);
    try {
      const running = await startFlow(flow, {
        registry,
        deadLetters: new MemoryDeadLetters(),
        log: memoryLogger(),
      });
      await waitFor("items to reach the hanging stage", () => running.stages[1].received > 0);
      running.kill();
      await running.done.catch(() => {});
      const key = flowKeys(flow.name, flow.durable.prefix).input("hangs", "normal");
      const idle = await redis.xpending(
        key,
        "hangs",
        "IDLE",
        flow.durable.claimAfter,
        "-",
        "+",
        100,
      );
      // Before: none, until claimAfter (30 s) had passed.
      assert.ok((idle as unknown[]).length > 0, "the held entries are claimable now");
      const [total] = await redis.xpending(key, "hangs") as [number];
      assert.equal((idle as unknown[]).length, total, "every one of them");
      const [[, , , deliveries]] = idle as [string, string, number, number][];
      assert.equal(deliveries, 1, "no delivery counted for the release");
    } finally {
      redis.disconnect();
      await Deno.remove(dir, { recursive: true });
    }
  });
});

redisTest("a killed run leaves alone what another process claimed from it meanwhile", async () => {
  await withRedis(async (server) => {
    const registry = builtinRegistry().stage(hangingStage);
    const dir = await Deno.makeTempDir({ prefix: "millrace-release-" });
    const flow = parseFlow(
      `
name: claimed
durability: redis
redis: ${server.url}
output: ${dir}
sources:
  news: { kind: generator, count: 40, seed: 3 }
pipeline:
  - validate: { require: [title, url] }
  - hangs: {}
  - publish: [ { jsonl: { path: items.jsonl } } ]
`,
      "claimed.yaml",
      registry,
      {},
    );
    const redis = client(server);
    try {
      const running = await startFlow(flow, {
        registry,
        deadLetters: new MemoryDeadLetters(),
        log: memoryLogger(),
      });
      await waitFor("items to reach the hanging stage", () => running.stages[1].received > 0);
      const key = flowKeys(flow.name, flow.durable.prefix).input("hangs", "normal");
      type Pending = [id: string, consumer: string, idle: number, deliveries: number][];
      const held = await redis.xpending(key, "hangs", "-", "+", 100) as Pending;
      // Another process's claim loop took them, as after this one was cut off for claimAfter.
      await redis.xclaim(key, "hangs", "process-b", 0, ...held.map(([id]) => id), "JUSTID");
      running.kill();
      await running.done.catch(() => {});
      const after = await redis.xpending(key, "hangs", "-", "+", 100) as Pending;
      // Before: the release took them back to the killed consumer and marked them idle, so a
      // third process would claim and run them while process-b still did.
      assert.deepEqual(
        after.map(([id, consumer]) => [id, consumer]),
        held.map(([id]) => [id, "process-b"]),
      );
      assert.ok(after.every(([, , idle]) => idle < flow.durable.claimAfter), "not marked idle");
    } finally {
      redis.disconnect();
      await Deno.remove(dir, { recursive: true });
    }
  });
});
