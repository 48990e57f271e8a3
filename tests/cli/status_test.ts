import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { closeRedis, connectRedis } from "../../engine/redis/connection.ts";
import type { Flow } from "../../engine/flow.ts";
import { flowKeys } from "../../engine/redis/keys.ts";
import { deadLetterFields } from "../../engine/redis/redis_dead_letters.ts";
import { formatStatus } from "../../cli/format_status.ts";
import { flowStatus } from "../../cli/status.ts";
import { redisTest, withRedis } from "../_redis_server.ts";
import { addEntry, item, writeFlow } from "../engine/redis/_fixtures.ts";

const keys = flowKeys("ops");

/**
 * validate (normal lane): 5 entries of 2 items; worker-a read 3 and acked 1,
 * worker-b read 1 and acked none: length 5, lag 1, pending 3, entries-read 4.
 * validate (high lane): 1 entry, unread. enrich: a stream with its group,
 * empty. publish: no stream at all. Dead letters: 2 of validate, 1 of enrich,
 * 1 of a stage no longer in the pipeline, 1 of the source.
 */
async function seed(redis: Redis): Promise<void> {
  const normal = keys.input("validate");
  for (let i = 0; i < 5; i++) await addEntry(redis, normal, [item(2 * i), item(2 * i + 1)]);
  await redis.xgroup("CREATE", normal, "validate", "0");
  const a = await redis.xreadgroup(
    "GROUP",
    "validate",
    "worker-a",
    "COUNT",
    3,
    "STREAMS",
    normal,
    ">",
  ) as [string, [string, string[]][]][];
  await redis.xack(normal, "validate", a[0][1][0][0]);
  await redis.xreadgroup("GROUP", "validate", "worker-b", "COUNT", 1, "STREAMS", normal, ">");

  const high = keys.input("validate", "high");
  await addEntry(redis, high, [item(100)]);
  await redis.xgroup("CREATE", high, "validate", "0");

  await redis.xgroup("CREATE", keys.input("enrich"), "enrich", "0", "MKSTREAM");

  const letter = (stage: string, i: number) =>
    redis.xadd(
      keys.dlq,
      "*",
      ...deadLetterFields({ stage, reason: "bad", attempts: 5, item: item(i) }),
    );
  await letter("validate", 1);
  await letter("validate", 2);
  await letter("enrich", 3);
  await letter("renamed", 4);
  await letter("newsroom", 5); // a source's item JSON could not hold
  await redis.hset(keys.stages, { validate: "validate", enrich: "enrich", publish: "publish" });
}

async function withFlow(fn: (redis: Redis, flow: Flow) => Promise<void>): Promise<void> {
  await withRedis(async (server) => {
    const { flow } = await writeFlow(server.url);
    const redis = await connectRedis(server.url);
    try {
      await fn(redis, flow);
    } finally {
      await closeRedis(redis);
    }
  });
}

redisTest("status reports length, lag, pending and consumers per stage lane", async () => {
  await withFlow(async (redis, flow) => {
    await seed(redis);
    const status = await flowStatus(redis, flow, { sampleMs: 0 });

    assert.deepEqual(status.stages.map((s) => s.id), ["validate", "enrich", "publish"]);
    assert.equal(status.ran, true);
    const [validate, enrich, publish] = status.stages;
    const [normal, high] = validate.lanes;
    assert.equal(normal.lane, "normal");
    assert.equal(normal.length, 5);
    assert.equal(normal.lag, 1);
    assert.equal(normal.entriesRead, 4);
    assert.equal(normal.pending, 3);
    assert.equal(normal.itemsPerEntry, 2);
    assert.deepEqual(
      normal.consumers.map((c) => [c.name, c.pending]).sort(),
      [["worker-a", 2], ["worker-b", 1]],
    );
    assert.ok(normal.consumers.every((c) => c.idleMs >= 0 && c.idleMs < 60_000));

    assert.equal(high.lane, "high");
    assert.equal(high.length, 1);
    assert.equal(high.lag, 1);
    assert.equal(high.pending, 0);

    assert.equal(enrich.lanes.length, 1, "no high lane shown when it does not exist");
    assert.equal(enrich.lanes[0].exists, true);
    assert.equal(enrich.lanes[0].length, 0);
    assert.equal(enrich.lanes[0].group, true);

    assert.equal(publish.lanes[0].exists, false);
    assert.match(publish.notes.join(), /no input stream/);

    assert.equal(validate.deadLetters, 2);
    assert.equal(enrich.deadLetters, 1);
    assert.equal(publish.deadLetters, 0);
    assert.deepEqual(status.deadLetters, {
      total: 5,
      byStage: { validate: 2, enrich: 1, renamed: 1, newsroom: 1 },
    });
    assert.ok(status.notes.some((n) => n.includes(`stage "renamed"`)));
    assert.ok(
      status.notes.includes('1 dead letter(s) of source "newsroom": items JSON could not hold'),
      "a source's letters are not taken for a stage's that left the pipeline",
    );
  });
});

redisTest(
  "status says of each source whether it is done and which process holds its lease",
  async () => {
    await withFlow(async (redis, flow) => {
      const [source] = flow.sources;
      const lease = () => flowStatus(redis, flow, { sampleMs: 0 }).then((s) => s.sources[0]);
      assert.deepEqual(await lease(), {
        name: source.name,
        kind: source.kind,
        done: false,
        heldBy: null,
        leaseMs: null,
        lastTick: null,
      });
      await redis.set(keys.lease(source.name), "box:4242:abcd1234#7", "PX", 20_000);
      await redis.set(keys.tick(source.name), String(Date.UTC(2026, 0, 1)));
      const held = await lease();
      assert.equal(held.heldBy, "box:4242");
      assert.ok(held.leaseMs! > 0 && held.leaseMs! <= 20_000);
      assert.equal(held.lastTick, "2026-01-01T00:00:00.000Z");
      await redis.del(keys.lease(source.name));
      await redis.set(keys.done(source.name), "1");
      assert.equal((await lease()).done, true);
    });
  },
);

redisTest(
  "status rates count entries read during the sample and scale them by items per entry",
  async () => {
    await withFlow(async (redis, flow) => {
      await seed(redis);
      // While status samples, worker-c reads one entry of each validate lane;
      // on the high lane it is the group's first read, which Redis 7 does not
      // count in entries-read until it happens. The sample lasts 400 ms on a
      // clock whose sleep is that read: 1 entry in 0.4 s is 2.5 entries/s.
      let t = 0;
      const slept: number[] = [];
      const clock = {
        now: () => t,
        async sleep(ms: number) {
          slept.push(ms);
          for (const lane of ["normal", "high"] as const) {
            const key = keys.input("validate", lane);
            await redis.xreadgroup(
              "GROUP",
              "validate",
              "worker-c",
              "COUNT",
              1,
              "STREAMS",
              key,
              ">",
            );
          }
          t += ms;
        },
      };
      const status = await flowStatus(redis, flow, { sampleMs: 400, clock });
      assert.deepEqual(slept, [400], "one sample of sampleMs");

      const [normal, high] = status.stages[0].lanes;
      assert.equal(normal.entriesPerSec, 2.5);
      assert.equal(high.entriesPerSec, 2.5);
      assert.equal(normal.itemsPerSec, 5, "2 items per entry");
      assert.equal(high.itemsPerSec, 2.5, "1 item per entry");
      assert.equal(status.stages[1].lanes[0].entriesPerSec, 0, "nothing read by enrich");
      assert.equal(status.stages[1].lanes[0].itemsPerSec, 0);
    });
  },
);

redisTest(
  "status of a flow that never ran shows zeros and says why instead of failing",
  async () => {
    await withFlow(async (redis, flow) => {
      const status = await flowStatus(redis, flow, { sampleMs: 0 });
      assert.equal(status.ran, false);
      for (const stage of status.stages) {
        assert.equal(stage.lanes.length, 1);
        assert.equal(stage.lanes[0].exists, false);
        assert.equal(stage.lanes[0].length, 0);
        assert.equal(stage.lanes[0].pending, 0);
        assert.equal(stage.deadLetters, 0);
      }
      assert.equal(status.deadLetters.total, 0);
      assert.match(status.notes.join("\n"), /has not run here yet/);
      assert.ok(status.stages.every((s) => s.notes.length === 0), "one note, not one per stage");
      assert.match(formatStatus(status), /has not run here yet/);
    });
  },
);

redisTest(
  "a stream with no consumer group counts all of it as lag and says nothing reads it",
  async () => {
    await withFlow(async (redis, flow) => {
      await addEntry(redis, keys.input("enrich"), [item(1)]);
      await addEntry(redis, keys.input("enrich"), [item(2)]);
      const status = await flowStatus(redis, flow, { sampleMs: 0 });
      const enrich = status.stages[1];
      assert.equal(enrich.lanes[0].group, false);
      assert.equal(enrich.lanes[0].lag, 2);
      assert.match(enrich.notes.join(), /no consumer group yet/);
    });
  },
);

redisTest(
  "status says when Redis would evict the flow's keys, and says nothing under noeviction",
  async () => {
    await withFlow(async (redis, flow) => {
      await redis.call("CONFIG", "SET", "maxmemory", "1gb");
      await redis.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lru");
      const evicting = await flowStatus(redis, flow, { sampleMs: 0 });
      assert.match(
        formatStatus(evicting),
        /Redis evicts keys when its memory is full \(maxmemory-policy allkeys-lru\)/,
      );
      await redis.call("CONFIG", "SET", "maxmemory-policy", "noeviction");
      const safe = await flowStatus(redis, flow, { sampleMs: 0 });
      assert.ok(!safe.notes.some((n) => /evicts/.test(n)), safe.notes.join("\n"));
      await redis.call("CONFIG", "SET", "maxmemory", "0");
    });
  },
);

redisTest(
  "a stage fused away by the last start says when entries an unfused run left on it wait unread",
  async () => {
    // A fused process beside an unfused one of an older version: 53 entries sat on the fused
    // stage's own input, read by no step, and status said only that the stage was fused.
    await withFlow(async (redis, flow) => {
      await redis.hset(keys.stages, { validate: "validate", enrich: "enrich", publish: "publish" });
      await redis.hset(keys.steps, {
        validate: "validate",
        enrich: "validate",
        publish: "validate",
      });
      await redis.xgroup("CREATE", keys.input("enrich"), "enrich", "0", "MKSTREAM");
      await addEntry(redis, keys.input("enrich"), [item(1)]);
      await addEntry(redis, keys.input("enrich"), [item(2)]);
      const status = await flowStatus(redis, flow, { sampleMs: 0 });
      assert.deepEqual(status.stages[1].notes, [
        "fused into validate's step, which reads validate's streams; the 2 entries an unfused " +
        "run left on its own input wait unread while a fused run goes on (run the flow unfused " +
        "to finish them)",
      ]);
      assert.deepEqual(status.stages[2].notes, [
        "fused into validate's step, which reads validate's streams",
      ]);
    });
  },
);
