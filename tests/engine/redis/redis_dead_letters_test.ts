import assert from "node:assert/strict";
import { closeRedis, connectRedis } from "../../../engine/redis/connection.ts";
import { flowKeys } from "../../../engine/redis/keys.ts";
import { deadLetterFields, RedisDeadLetters } from "../../../engine/redis/redis_dead_letters.ts";
import { redisTest, withRedis } from "../../_redis_server.ts";
import { item } from "./_fixtures.ts";

Deno.test("deadLetterFields lists stage, reason, attempts, item and time in that order", () => {
  const fields = deadLetterFields(
    { stage: "embed", reason: "HTTP 400: input too long", attempts: 3, item: item(7, 3) },
    new Date("2026-01-02T03:04:05.678Z"),
  );
  assert.deepEqual(fields, [
    "stage",
    "embed",
    "reason",
    "HTTP 400: input too long",
    "attempts",
    "3",
    "item",
    JSON.stringify(item(7, 3)),
    "time",
    "2026-01-02T03:04:05.678Z",
  ]);
});

redisTest("RedisDeadLetters appends each letter to the flow's dead-letter stream", async () => {
  await withRedis(async (server) => {
    const redis = await connectRedis(server.url);
    try {
      const keys = flowKeys("ops");
      const letters = new RedisDeadLetters(redis, keys.dlq);
      await letters.write([]);
      assert.equal(await redis.exists(keys.dlq), 0, "an empty write writes nothing");
      await letters.write([
        { stage: "validate", reason: "no title", attempts: 0, item: item(1) },
        { stage: "validate", reason: "spam", attempts: 0, item: item(2) },
      ]);
      await letters.write([{ stage: "embed", reason: "timeout", attempts: 5, item: item(3, 5) }]);

      const entries = await redis.xrange(keys.dlq, "-", "+");
      const read = entries.map(([, f]) =>
        Object.fromEntries(
          Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i], f[2 * i + 1]]),
        )
      );
      assert.deepEqual(read.map((r) => [r.stage, r.reason, r.attempts]), [
        ["validate", "no title", "0"],
        ["validate", "spam", "0"],
        ["embed", "timeout", "5"],
      ]);
      assert.deepEqual(JSON.parse(read[2].item), item(3, 5));
      assert.ok(read.every((r) => !Number.isNaN(Date.parse(r.time))));
    } finally {
      await closeRedis(redis);
    }
  });
});
