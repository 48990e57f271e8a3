/**
 * testing.ts over Redis: a durable flow given only a Redis URL runs, reads
 * its dead letters back from Redis, and leaves no key behind.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { runTestFlow } from "../testing.ts";
import { redisTest, withRedis } from "./_redis_server.ts";

redisTest("a durable test flow takes the Redis it is given and leaves no key behind", async () => {
  await withRedis(async (server) => {
    const result = await runTestFlow(
      `
name: durable-test
durability: redis
sources:
  inbox: { kind: memory }
pipeline:
  - validate: { require: [title, url], title: { min: 5 } }
  - publish: [ { collect: { name: out } } ]
`,
      {
        redis: server.url,
        items: [
          { title: "A fine story", url: "https://example.com/1" },
          { title: "Bad", url: "https://example.com/2" },
        ],
      },
    );
    assert.deepEqual(result.published.get("out")!.map((i) => i.payload.url), [
      "https://example.com/1",
    ]);
    assert.deepEqual(result.deadLetters.map((l) => [l.stage, l.item.payload]), [
      ["validate", { title: "Bad", url: "https://example.com/2" }],
    ]);
    const redis = new Redis({ port: server.port, host: "127.0.0.1", lazyConnect: true });
    try {
      assert.deepEqual(await redis.keys("*"), [], "the run's keys are gone");
    } finally {
      redis.disconnect();
    }
  });
});
