import assert from "node:assert/strict";
import { closeRedis, connectRedis } from "../../engine/redis/connection.ts";
import { NotDurableError, resetCommand } from "../../cli/admin.ts";
import { flowKeys } from "../../engine/redis/keys.ts";
import { redisTest, withRedis } from "../_redis_server.ts";
import { writeFlow } from "../engine/redis/_fixtures.ts";

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
