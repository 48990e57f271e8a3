import assert from "node:assert/strict";
import { closeRedis, connectRedis } from "../../engine/redis/connection.ts";
import { NotDurableError, resetCommand } from "../../cli/admin.ts";
import { flowKeys } from "../../engine/redis/keys.ts";
import { markHeld } from "../../engine/redis/heartbeat.ts";
import { redisTest, withRedis } from "../_redis_server.ts";
import { flowYaml, writeFlow } from "../engine/redis/_fixtures.ts";
import { join } from "node:path";
import { builtinRegistry } from "../../builtins.ts";
import { loadFlow } from "../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../engine/dead_letters.ts";
import { memoryLogger } from "../../engine/log.ts";
import { startFlow } from "../../engine/run_flow.ts";

redisTest("reset deletes every key of the flow and nothing of another flow", async () => {
  await withRedis(async (server) => {
    const redis = await connectRedis(server.url);
    try {
      const mine = flowKeys("ops");
      const other = flowKeys("ops-two");
      for (const k of [mine, other]) {
        await redis.xadd(k.input("validate"), "*", "b", "[]", "n", "0");
        await redis.set(k.position("newsroom"), "{}");
        await redis.set(k.done("newsroom"), "1");
        await redis.xadd(k.dlq, "*", "stage", "validate");
      }
      await redis.set("unrelated", "1");
      const { flow } = await writeFlow(server.url, { name: "ops" });
      const result = await resetCommand(flow);
      assert.equal(result.text, "ops: deleted 4 keys");
      assert.equal((await redis.keys("millrace:{ops}:*")).length, 0);
      assert.equal((await redis.keys("millrace:{ops-two}:*")).length, 4);
      assert.equal(await redis.get("unrelated"), "1");
    } finally {
      await closeRedis(redis);
    }
  });
});

Deno.test("reset of a memory flow says there is nothing in Redis", async () => {
  const { flow } = await writeFlow("redis://127.0.0.1:1", { durability: "memory" });
  await assert.rejects(() => resetCommand(flow), NotDurableError);
});

redisTest(
  "reset refuses while a process of the flow runs, and goes ahead once it has stopped",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-reset-" });
      const file = join(dir, "flow.yaml");
      await Deno.writeTextFile(
        file,
        flowYaml(server.url, { name: "busy", output: join(dir, "out") })
          .replace("count: 10, seed: 1 }", "count: 10, seed: 1, every: 200ms }"),
      );
      const registry = builtinRegistry();
      const flow = await loadFlow(file, registry);
      const running = await startFlow(flow, {
        registry,
        log: memoryLogger(),
        deadLetters: new MemoryDeadLetters(),
      });
      const redis = await connectRedis(server.url);
      try {
        while (running.stages[2].emitted === 0) await new Promise((r) => setTimeout(r, 20));
        const before = (await redis.keys("millrace:{busy}:*")).length;
        const refused = await resetCommand(flow);
        assert.equal(refused.code, 1);
        assert.match(refused.text, /^busy: not reset, a process of the flow looks alive: /);
        assert.match(refused.text, /source newsroom is held/);
        assert.match(
          refused.text,
          /consumer \S+ read the input of validate, enrich, publish \d+\.\d s ago/,
        );
        assert.match(refused.text, /add --force\. Nothing deleted$/);
        assert.equal((await redis.keys("millrace:{busy}:*")).length, before, "nothing deleted");

        running.stop();
        await running.done;
        // A process that ended cleanly let go of its lease and its consumers: no wait needed.
        const done = await resetCommand(flow);
        assert.equal(done.code, 0, done.text);
        assert.equal((await redis.keys("millrace:{busy}:*")).length, 0);

        // A killed process's consumer looks alive for claimAfter; --force resets all the same.
        const keys = flowKeys("busy");
        await redis.xgroup("CREATE", keys.input("validate"), "validate", "$", "MKSTREAM");
        await redis.xadd(keys.input("validate"), "*", "b", "[]", "n", "0");
        await redis.xreadgroup(
          "GROUP",
          "validate",
          "killed-host:1:x",
          "COUNT",
          1,
          "STREAMS",
          keys.input("validate"),
          ">",
        );
        assert.match(
          (await resetCommand(flow)).text,
          /consumer killed-host:1:x read the input of validate /,
        );
        assert.equal((await resetCommand(flow, { force: true })).code, 0);
        assert.equal((await redis.keys("millrace:{busy}:*")).length, 0);
      } finally {
        running.stop();
        await running.done.catch(() => {});
        await closeRedis(redis);
      }
    });
  },
);

redisTest(
  "reset goes ahead right after a process stopped hard, which marked what it held idle as it went",
  async () => {
    // A process whose grace ran out marks the entries it held idle for claimAfter, so the next
    // run claims them at once; that XCLAIM touched its consumer, and reset took it for a live
    // process for claimAfter more.
    await withRedis(async (server) => {
      const redis = await connectRedis(server.url);
      try {
        const { flow } = await writeFlow(server.url, { name: "cut" });
        const keys = flowKeys("cut");
        const stream = keys.input("validate");
        await redis.xgroup("CREATE", stream, "validate", "$", "MKSTREAM");
        const id = await redis.xadd(stream, "*", "b", "[]", "n", "0");
        await redis.xreadgroup("GROUP", "validate", "gone:1:x", "COUNT", 1, "STREAMS", stream, ">");
        await markHeld(redis, stream, "validate", "gone:1:x", flow.durable.claimAfter, [id!]);
        const result = await resetCommand(flow);
        assert.equal(result.code, 0, result.text);
        // A consumer that still holds what it read, as a live one does, is alive.
        await redis.xgroup("CREATE", stream, "validate", "$", "MKSTREAM");
        await redis.xadd(stream, "*", "b", "[]", "n", "0");
        await redis.xreadgroup("GROUP", "validate", "live:1:x", "COUNT", 1, "STREAMS", stream, ">");
        assert.match((await resetCommand(flow)).text, /consumer live:1:x read the input/);
      } finally {
        await closeRedis(redis);
      }
    });
  },
);
