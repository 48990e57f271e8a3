import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { trimLoop, trimStream } from "../../../engine/redis/recovery.ts";
import type { DurableStepRun } from "../../../engine/redis/step_run.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { client, flowKeys, redisTest, withRedis } from "./_harness.ts";

const KEY = "millrace:{trim}:in:stage";
const GROUP = "stage";

/** Ids still in the stream, oldest first. */
async function idsIn(redis: ReturnType<typeof client>): Promise<string[]> {
  return (await redis.xrange(KEY, "-", "+")).map(([id]) => id);
}

redisTest(
  "trimming keeps every unacknowledged entry and removes acknowledged ones below the oldest pending",
  async () => {
    await withRedis(async (server) => {
      const redis = client(server);
      try {
        const ids: string[] = [];
        for (let i = 1; i <= 10; i++) {
          ids.push((await redis.xadd(KEY, `1-${i}`, "b", "[]", "n", "0"))!);
        }
        await redis.xgroup("CREATE", KEY, GROUP, "0");

        // Nothing read yet: nothing may go.
        assert.equal(await trimStream(redis, KEY, GROUP), 0);
        assert.deepEqual(await idsIn(redis), ids);

        // Read six, acknowledge four of them out of order: 3 and 6 stay pending.
        await redis.xreadgroup("GROUP", GROUP, "c1", "COUNT", 6, "STREAMS", KEY, ">");
        await redis.xack(KEY, GROUP, ids[4], ids[0], ids[3], ids[1]);
        const removed = await trimStream(redis, KEY, GROUP);
        assert.equal(removed, 2, "only 1-1 and 1-2 lie below the oldest pending entry (1-3)");
        const left = await idsIn(redis);
        assert.deepEqual(left, ids.slice(2), "pending 1-3 and 1-6 and undelivered 1-7..1-10 stay");
        for (const pending of [ids[2], ids[5]]) assert.ok(left.includes(pending));

        // Everything delivered is acknowledged: trimmed up to the last delivered entry only.
        await redis.xack(KEY, GROUP, ids[2], ids[5]);
        assert.equal(await trimStream(redis, KEY, GROUP), 4);
        assert.deepEqual(await idsIn(redis), ids.slice(6), "undelivered entries are never trimmed");

        // A consumer that died holding entries: they are still pending, so they stay.
        await redis.xreadgroup("GROUP", GROUP, "dead", "COUNT", 2, "STREAMS", KEY, ">");
        await redis.xreadgroup("GROUP", GROUP, "c1", "COUNT", 2, "STREAMS", KEY, ">");
        await redis.xack(KEY, GROUP, ids[8], ids[9]);
        assert.equal(await trimStream(redis, KEY, GROUP), 0);
        assert.deepEqual(await idsIn(redis), ids.slice(6));

        await redis.xack(KEY, GROUP, ids[6], ids[7]);
        assert.equal(await trimStream(redis, KEY, GROUP), 4);
        assert.deepEqual(await idsIn(redis), []);
      } finally {
        await redis.quit();
      }
    });
  },
);

redisTest("trimming a stream whose group has read nothing removes nothing", async () => {
  await withRedis(async (server) => {
    const redis = client(server);
    try {
      await redis.xgroup("CREATE", KEY, GROUP, "0", "MKSTREAM");
      assert.equal(await trimStream(redis, KEY, GROUP), 0);
      await redis.xadd(KEY, "*", "b", "[]", "n", "0");
      assert.equal(await trimStream(redis, KEY, GROUP), 0);
      assert.equal(await redis.xlen(KEY), 1);
    } finally {
      await redis.quit();
    }
  });
});

/**
 * `redis` as trimStream sees it, with `between` run just before the second
 * command trimStream sends, or after trimStream returns if it sends only
 * one: the interleaving a live group produces now and then, made certain.
 */
function withReadBetween(redis: Redis, between: () => Promise<unknown>) {
  let calls = 0;
  let ran = false;
  const proxy = new Proxy(redis, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        if (calls++ === 1 && !ran) {
          ran = true;
          await between();
        }
        return await value.apply(target, args);
      };
    },
  });
  const after = async () => {
    if (!ran) await between();
    ran = true;
  };
  return { redis: proxy, after };
}

redisTest(
  "entries delivered while trimming reads the group's state stay in the stream, pending",
  async () => {
    await withRedis(async (server) => {
      const redis = client(server);
      const other = client(server);
      try {
        const ids: string[] = [];
        for (let i = 1; i <= 4; i++) {
          ids.push((await redis.xadd(KEY, `1-${i}`, "b", "[]", "n", "0"))!);
        }
        await redis.xgroup("CREATE", KEY, GROUP, "0");
        await redis.xreadgroup("GROUP", GROUP, "c1", "COUNT", 2, "STREAMS", KEY, ">");
        await redis.xack(KEY, GROUP, ids[0], ids[1]); // nothing pending now

        // Another process reads 1-3 and 1-4 while the trim is under way.
        const { redis: racing, after } = withReadBetween(
          redis,
          () => other.xreadgroup("GROUP", GROUP, "c2", "COUNT", 2, "STREAMS", KEY, ">"),
        );
        const removed = await trimStream(racing, KEY, GROUP);
        await after();

        const pending = (await redis.xpending(KEY, GROUP, "-", "+", 10) as [string][])
          .map((p) => p[0]);
        assert.deepEqual(pending, ids.slice(2), "c2 holds 1-3 and 1-4");
        assert.deepEqual(
          await idsIn(redis),
          ids.slice(2),
          "the entries c2 holds must still be in the stream, or its crash loses them",
        );
        assert.equal(removed, 2);
      } finally {
        await other.quit();
        await redis.quit();
      }
    });
  },
);

redisTest("trimming past the last delivered entry carries the sequence's digits", async () => {
  await withRedis(async (server) => {
    const redis = client(server);
    try {
      // 2^53 + 1 and + 2: past what a Lua number holds exactly.
      const ids = ["5-8", "5-9", "5-10", "7-9007199254740993", "7-9007199254740994"];
      for (const id of ids) await redis.xadd(KEY, id, "b", "[]", "n", "0");
      await redis.xgroup("CREATE", KEY, GROUP, "0");
      await redis.xreadgroup("GROUP", GROUP, "c1", "COUNT", 2, "STREAMS", KEY, ">");
      await redis.xack(KEY, GROUP, "5-8", "5-9");
      assert.equal(await trimStream(redis, KEY, GROUP), 2);
      assert.deepEqual(await idsIn(redis), ids.slice(2));
      await redis.xreadgroup("GROUP", GROUP, "c1", "COUNT", 2, "STREAMS", KEY, ">");
      await redis.xack(KEY, GROUP, "5-10", "7-9007199254740993");
      assert.equal(await trimStream(redis, KEY, GROUP), 2);
      assert.deepEqual(await idsIn(redis), ids.slice(4));
    } finally {
      await redis.quit();
    }
  });
});

redisTest(
  "the trim loop ends without a word once Redis no longer holds the flow's streams",
  async () => {
    // Redis restarted without persistence: the step's reads fail with NOGROUP and end the flow
    // with a clear error; a warning per stream and lane every 2 s before it would only bury it.
    await withRedis(async (server) => {
      const redis = client(server);
      const log = memoryLogger();
      const stop = new AbortController();
      try {
        const run = {
          keys: flowKeys("gone"),
          step: { id: "validate", stages: [] },
          stop: stop.signal,
          redis,
          log,
        } as unknown as DurableStepRun;
        const ended = trimLoop(run).then(() => "ended");
        const waited = new Promise((r) => setTimeout(() => r("still trimming"), 6_000));
        assert.equal(await Promise.race([ended, waited]), "ended");
        assert.deepEqual(log.lines, []);
      } finally {
        stop.abort();
        await redis.quit();
      }
    });
  },
);
