/**
 * A run stopped hard leaves what it held claimable at once: the next
 * process's claim loop takes it at its first tick instead of waiting out
 * claimAfter (30 s by default) with nothing said; and only what is still
 * its own.
 */
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { builtinRegistry } from "../../../builtins.ts";
import { parseFlow } from "../../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import type { Flow } from "../../../engine/flow.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { type RunningFlow, startFlow } from "../../../engine/run_flow.ts";
import { client, flowKeys, redisTest, waitFor, withRedis } from "./_harness.ts";
import { hangingStage } from "../../_hanging_stage.ts";

type Pending = [id: string, consumer: string, idle: number, deliveries: number][];

/**
 * Runs a durable flow whose second stage never returns, on a redis-server
 * of its own, until items reach that stage; `test` gets the flow, its run,
 * a client and the stage's input stream.
 */
async function withHeldEntries(
  test: (held: { flow: Flow; running: RunningFlow; redis: Redis; key: string }) => Promise<void>,
): Promise<void> {
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
      const key = flowKeys(flow.name, flow.durable.prefix).input("hangs", "normal");
      await test({ flow, running, redis, key });
    } finally {
      redis.disconnect();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

redisTest("entries held by a run that was killed are idle for claimAfter at once", async () => {
  await withHeldEntries(async ({ flow, running, redis, key }) => {
    running.kill();
    await running.done.catch(() => {});
    const idle = await redis.xpending(
      key,
      "hangs",
      "IDLE",
      flow.durable.claimAfter,
      "-",
      "+",
      100,
    ) as Pending;
    // Before: none, until claimAfter (30 s) had passed.
    assert.ok(idle.length > 0, "the held entries are claimable now");
    const [total] = await redis.xpending(key, "hangs") as [number];
    assert.equal(idle.length, total, "every one of them");
    assert.equal(idle[0][3], 1, "no delivery counted for the release");
  });
});

redisTest("a killed run leaves alone what another process claimed from it meanwhile", async () => {
  await withHeldEntries(async ({ flow, running, redis, key }) => {
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
  });
});
