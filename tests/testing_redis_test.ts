/**
 * testing.ts over Redis: a durable flow given only a Redis URL runs, reads
 * its dead letters back from Redis, and leaves no key behind.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { runTestFlow, testRegistry } from "../testing.ts";
import { redisTest, withRedis } from "./_redis_server.ts";
import { hangingStage } from "./_hanging_stage.ts";

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

redisTest("a durable test flow that times out leaves no key behind either", async () => {
  await withRedis(async (server) => {
    const registry = testRegistry().stage(hangingStage);
    const hung = `
name: hung
durability: redis
sources: { inbox: { kind: memory } }
pipeline: [ { hangs: {} }, { publish: [ { collect: {} } ] } ]
`;
    await assert.rejects(
      runTestFlow(hung, {
        redis: server.url,
        registry,
        items: [{ title: "A fine story", url: "https://example.com/1" }],
        timeout: 500,
      }),
      /did not end within 500 ms/,
    );
    const redis = new Redis({ port: server.port, host: "127.0.0.1", lazyConnect: true });
    try {
      // Before: the run's streams, positions and fences stayed (the reset came after the throw).
      assert.deepEqual(await redis.keys("*"), [], "the timed-out run's keys are gone");
    } finally {
      redis.disconnect();
    }
  });
});
