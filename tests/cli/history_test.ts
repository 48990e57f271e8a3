import assert from "node:assert/strict";
import { Redis } from "ioredis";
import {
  HISTORY_MINUTES,
  HistoryRecorder,
  MemoryHistory,
  RedisHistory,
} from "../../cli/history.ts";
import { flowKeys } from "../../engine/redis/keys.ts";
import { RedisServer, redisTest } from "../_redis_server.ts";

const now = () => Math.floor(Date.now() / 60_000);

Deno.test("memory history adds counts per minute and keeps only the last 24 h", async () => {
  const h = new MemoryHistory();
  const t = now();
  await h.add(t - HISTORY_MINUTES - 5, { "a:out": 9 });
  await h.add(t - 1, { "a:out": 2 });
  await h.add(t, { "a:out": 3, tokens: 10 });
  await h.add(t, { "a:out": 4 });
  assert.deepEqual(await h.read(t - HISTORY_MINUTES + 1), [
    { t: t - 1, counts: { "a:out": 2 } },
    { t, counts: { "a:out": 7, tokens: 10 } },
  ]);
});

Deno.test("the recorder adds what the counters rose by, and nothing when they did not move", async () => {
  const h = new MemoryHistory();
  const counters = { "a:out": 5 };
  const r = new HistoryRecorder(h, () => ({ ...counters }), (e) => {
    throw e;
  });
  counters["a:out"] = 12;
  assert.deepEqual(r.unsaved(), { "a:out": 7 });
  await r.flush();
  assert.deepEqual(r.unsaved(), {});
  await r.flush();
  counters["a:out"] = 13;
  await r.stop();
  const minutes = await h.read(0);
  const total = minutes.reduce((n, m) => n + (m.counts["a:out"] ?? 0), 0);
  assert.equal(total, 8, "the counts before the recorder started are not history");
});

Deno.test("a count taken back and risen again is not added twice to the history", async () => {
  const h = new MemoryHistory();
  const counters: Record<string, number> = { "enrich:out": 0 };
  const r = new HistoryRecorder(h, () => ({ ...counters }), (e) => {
    throw e;
  });
  for (const n of [38, 30, 68]) {
    counters["enrich:out"] = n;
    await r.flush();
  }
  const total = (await h.read(0)).reduce((n, m) => n + (m.counts["enrich:out"] ?? 0), 0);
  assert.equal(total, 68, "38, then nothing for the dip, then 30");
});

redisTest(
  "Redis history survives a restart of the process, adds across processes, and expires",
  async () => {
    const server = await RedisServer.start();
    const redis = new Redis(server.url);
    try {
      const keys = flowKeys("hist");
      const t = now();
      await new RedisHistory(redis, keys).add(t - 2, { "a:out": 5 });
      await new RedisHistory(redis, keys).add(t, { "a:out": 1 });
      // Another process (or this one after a restart) adds to the same minute.
      const later = new RedisHistory(redis, keys);
      await later.add(t, { "a:out": 2, tokens: 30 });
      assert.deepEqual(await later.read(t - 10), [
        { t: t - 2, counts: { "a:out": 5 } },
        { t, counts: { "a:out": 3, tokens: 30 } },
      ]);
      const ttl = await redis.ttl(keys.history(t));
      assert.ok(ttl > 24 * 3600 && ttl <= 25 * 3600, `ttl ${ttl}`);
    } finally {
      redis.disconnect();
      await server.stop();
    }
  },
);
