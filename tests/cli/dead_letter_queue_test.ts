import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { closeRedis, connectRedis } from "../../engine/redis/connection.ts";
import {
  countDeadLetters,
  dlqList,
  dlqPurge,
  dlqReplay,
  lastDeadLetter,
} from "../../cli/dead_letter_queue.ts";
import { recordOrder } from "../../engine/redis/pipeline_edit.ts";
import { flowKeys } from "../../engine/redis/keys.ts";
import { deadLetterFields } from "../../engine/redis/redis_dead_letters.ts";
import { redisTest, withRedis } from "../_redis_server.ts";
import { isUnavailable } from "../../cli/exit_code.ts";
import { item } from "../engine/redis/_fixtures.ts";

const keys = flowKeys("ops");
const PIPELINE = ["validate", "enrich", "publish"];

async function withConnection(fn: (redis: Redis) => Promise<void>): Promise<void> {
  await withRedis(async (server) => {
    const redis = await connectRedis(server.url);
    try {
      await fn(redis);
    } finally {
      await closeRedis(redis);
    }
  });
}

function letter(redis: Redis, stage: string, i: number, reason = `reason ${i}`): Promise<unknown> {
  return redis.xadd(
    keys.dlq,
    "*",
    ...deadLetterFields({ stage, reason, attempts: 5, item: item(i, 5) }),
  );
}

/** Consumer groups as the runner makes them: one per stage, on both lanes, from 0. */
async function groups(redis: Redis, stages: string[]): Promise<void> {
  for (const stage of stages) {
    for (const lane of ["normal", "high"] as const) {
      await redis.xgroup("CREATE", keys.input(stage, lane), stage, "0", "MKSTREAM");
    }
  }
}

/** The envelopes on a stage stream, with each entry's n. */
async function entries(redis: Redis, key: string) {
  const list = await redis.xrange(key, "-", "+");
  return list.map(([, f]) => ({ b: JSON.parse(f[f.indexOf("b") + 1]), n: f[f.indexOf("n") + 1] }));
}

/** 1,203 letters, more than two pages: a third of them enrich's (401), the rest validate's (802). */
async function manyLetters(redis: Redis): Promise<void> {
  const pipeline = redis.pipeline();
  for (let i = 0; i < 1203; i++) {
    const stage = i % 3 === 0 ? "enrich" : "validate";
    pipeline.xadd(
      keys.dlq,
      "*",
      ...deadLetterFields({ stage, reason: "r", attempts: 1, item: item(i) }),
    );
  }
  await pipeline.exec();
}

redisTest("dlqList returns every dead letter oldest first, by stage, up to a limit", async () => {
  await withConnection(async (redis) => {
    await letter(redis, "validate", 1, "missing title");
    await letter(redis, "enrich", 2);
    await letter(redis, "validate", 3);
    await redis.xadd(keys.dlq, "*", "stage", "validate", "item", "{not json");

    const all = await dlqList(redis, keys);
    assert.deepEqual(all.map((e) => e.stage), ["validate", "enrich", "validate", "validate"]);
    assert.equal(all[0].reason, "missing title");
    assert.equal(all[0].attempts, 5);
    assert.deepEqual(all[0].item, item(1, 5));
    assert.match(all[0].time, /^\d{4}-\d\d-\d\dT/);
    assert.match(all[3].problem ?? "", /item does not parse/);
    assert.equal(all[3].item, null);

    const validate = await dlqList(redis, keys, { stage: "validate" });
    assert.deepEqual(validate.map((e) => e.item?.id ?? null), ["id1", "id3", null]);
    const two = await dlqList(redis, keys, { stage: "validate", limit: 2 });
    assert.deepEqual(two.map((e) => e.id), validate.slice(0, 2).map((e) => e.id));
    assert.deepEqual(await dlqList(redis, keys, { stage: "publish" }), []);
  });
});

redisTest("dlqList and counts page through a dead-letter stream larger than one page", async () => {
  await withConnection(async (redis) => {
    await manyLetters(redis);
    const all = await dlqList(redis, keys);
    assert.equal(all.length, 1203);
    assert.equal(new Set(all.map((e) => e.id)).size, 1203, "no entry twice across pages");
    assert.deepEqual(all.map((e) => e.item!.id), Array.from({ length: 1203 }, (_, i) => `id${i}`));
    assert.equal((await dlqList(redis, keys, { stage: "enrich", limit: 600 })).length, 401);
    assert.deepEqual(await countDeadLetters(redis, keys), { enrich: 401, validate: 802 });
  });
});

redisTest("dlqReplay moves a stage's dead letters back to its input with attempts 0", async () => {
  await withConnection(async (redis) => {
    await groups(redis, PIPELINE);
    await letter(redis, "validate", 1);
    await letter(redis, "enrich", 2);
    await letter(redis, "validate", 3);

    const result = await dlqReplay(redis, keys, { stage: "validate", pipeline: PIPELINE });
    assert.deepEqual(result, { replayed: { validate: 2 }, skipped: [] });
    assert.deepEqual(await entries(redis, keys.input("validate")), [
      { b: [item(1, 0)], n: "1" },
      { b: [item(3, 0)], n: "1" },
    ]);
    assert.deepEqual(await entries(redis, keys.input("validate", "high")), [], "normal lane only");
    assert.deepEqual(await entries(redis, keys.input("enrich")), []);
    const left = await dlqList(redis, keys);
    assert.deepEqual(left.map((e) => [e.stage, e.item!.id]), [["enrich", "id2"]]);

    const rest = await dlqReplay(redis, keys, { pipeline: PIPELINE });
    assert.deepEqual(rest.replayed, { enrich: 1 });
    assert.deepEqual(await entries(redis, keys.input("enrich")), [{ b: [item(2, 0)], n: "1" }]);
    assert.equal(await redis.xlen(keys.dlq), 0);
  });
});

redisTest("dlqReplay leaves a letter whose item JSON could not hold, saying why", async () => {
  await withConnection(async (redis) => {
    await groups(redis, PIPELINE);
    const big = { ...item(1, 1), payload: { title: "t", views: 10n } };
    await redis.xadd(
      keys.dlq,
      "*",
      ...deadLetterFields({
        stage: "enrich",
        reason: "cannot be passed on",
        attempts: 1,
        item: big,
      }),
    );
    await letter(redis, "enrich", 2);

    const result = await dlqReplay(redis, keys, { pipeline: PIPELINE });
    assert.deepEqual(result.replayed, { enrich: 1 });
    assert.equal(result.skipped.length, 1);
    assert.match(result.skipped[0].reason, /could not be stored as JSON, .*nothing to put back/);
    // A real item whose payload happens to say `unencodable` is put back like any other.
    await redis.xadd(
      keys.dlq,
      "*",
      ...deadLetterFields({
        stage: "enrich",
        reason: "bad",
        attempts: 1,
        item: { ...item(3, 1), payload: { unencodable: "yes" } },
      }),
    );
    const real = await dlqReplay(redis, keys, { pipeline: PIPELINE });
    assert.deepEqual(real.replayed, { enrich: 1 });
    const [left] = await dlqList(redis, keys);
    assert.deepEqual(Object.keys(left.item!.payload as object), ["unencodable"]);
    assert.match((left.item!.payload as { unencodable: string }).unencodable, /BigInt/);
  });
});

redisTest("dlqReplay by ids replays only those and reports unknown ids", async () => {
  await withConnection(async (redis) => {
    await groups(redis, PIPELINE);
    await letter(redis, "validate", 1);
    await letter(redis, "validate", 2);
    const [first] = await dlqList(redis, keys);
    const result = await dlqReplay(redis, keys, { ids: [first.id, "1-1"], pipeline: PIPELINE });
    assert.deepEqual(result.replayed, { validate: 1 });
    assert.deepEqual(result.skipped, [{ id: "1-1", stage: "", reason: "no such dead letter" }]);
    assert.deepEqual(await entries(redis, keys.input("validate")), [{ b: [item(1, 0)], n: "1" }]);
    assert.deepEqual((await dlqList(redis, keys)).map((e) => e.item!.id), ["id2"]);
  });
});

redisTest(
  "dlqReplay leaves what it cannot put back where a stage reads it, saying why",
  async () => {
    await withConnection(async (redis) => {
      await groups(redis, ["validate"]); // enrich and publish: fused into validate's step
      await letter(redis, "enrich", 1);
      await letter(redis, "renamed", 2);
      await redis.xadd(
        keys.dlq,
        "*",
        ...deadLetterFields({
          stage: "validate",
          reason: "unreadable entry",
          attempts: 0,
          item: { id: "1-0", event: "", source: "", seenAt: 0, attempts: 0, payload: "garbage" },
        }),
      );

      const result = await dlqReplay(redis, keys, { pipeline: PIPELINE });
      assert.deepEqual(result.replayed, { enrich: 1 }, "counted as enrich's letter");
      assert.deepEqual(result.into, { enrich: "validate" }, "which went to its step's input");
      assert.deepEqual(await entries(redis, keys.input("validate")), [{ b: [item(1, 0)], n: "1" }]);
      assert.deepEqual(result.skipped.map((s) => [s.stage, s.reason.split(":")[0]]), [
        ["renamed", `stage "renamed" is not in the flow's pipeline`],
        ["validate", "item is not an envelope with an id, an event and a payload"],
      ]);
      assert.equal(await redis.xlen(keys.dlq), 2, "skipped letters stay");

      // Without the pipeline, a stage whose stream has no group is not replayed at all.
      await letter(redis, "enrich", 3);
      const bare = await dlqReplay(redis, keys, { stage: "enrich" });
      assert.deepEqual(bare.replayed, {});
      assert.match(bare.skipped[0].reason, /no consumer group reads .*:in:enrich/);
      assert.equal(await redis.exists(keys.input("enrich")), 0, "no stream made that nobody reads");
    });
  },
);

redisTest("two replays at once put each dead letter back exactly once", async () => {
  await withConnection(async (redis) => {
    await groups(redis, PIPELINE);
    for (let i = 0; i < 50; i++) await letter(redis, "validate", i);
    const [a, b] = await Promise.all([
      dlqReplay(redis, keys, { pipeline: PIPELINE }),
      dlqReplay(redis, keys, { pipeline: PIPELINE }),
    ]);
    assert.equal((a.replayed.validate ?? 0) + (b.replayed.validate ?? 0), 50);
    const back = await entries(redis, keys.input("validate"));
    assert.equal(back.length, 50);
    assert.equal(new Set(back.map((e) => e.b[0].id)).size, 50);
    assert.equal(await redis.xlen(keys.dlq), 0);
  });
});

redisTest(
  "dlqReplay puts back the letters there were when it started, not those a running flow adds meanwhile",
  async () => {
    // A running flow that refuses a replayed item again appends a new letter behind: replay
    // read on to the stream's end and sent it back again, round after round (a review's
    // replay of 20,000 letters said 69,994, each round every stage's work and API calls again).
    await withRedis(async (server) => {
      const redis = await connectRedis(server.url);
      const other = await connectRedis(server.url);
      try {
        await groups(redis, PIPELINE);
        await manyLetters(redis);
        const replay = dlqReplay(redis, keys, { pipeline: PIPELINE });
        // Once replay has moved one, the flow refuses 300 items again.
        while ((await other.xlen(keys.input("validate"))) === 0) {
          await new Promise((r) => setTimeout(r, 1));
        }
        const again = other.pipeline();
        for (let i = 0; i < 300; i++) {
          again.xadd(
            keys.dlq,
            "*",
            ...deadLetterFields({
              stage: "validate",
              reason: "r",
              attempts: 1,
              item: item(5000 + i),
            }),
          );
        }
        await again.exec();
        const result = await replay;
        assert.deepEqual(result.replayed, { validate: 802, enrich: 401 });
        assert.equal(await redis.xlen(keys.dlq), 300, "the letters added meanwhile stay");
      } finally {
        await closeRedis(other);
        await closeRedis(redis);
      }
    });
  },
);

redisTest(
  "dlqReplay cut off by Redis going away says how far it got, as a service gone",
  async () => {
    // It printed only the stack of the command in flight, and exited 1: an operator could not
    // tell whether anything had moved.
    await withRedis(async (server) => {
      const redis = await connectRedis(server.url, { timeout: 1000 });
      try {
        await groups(redis, PIPELINE);
        await manyLetters(redis);
        // Its outcome taken at once: it may fail while the loop below still waits.
        const replay = dlqReplay(redis, keys, { pipeline: PIPELINE })
          .then(() => undefined, (e: Error) => e);
        while ((await redis.xlen(keys.input("validate"))) < 10) {
          await new Promise((r) => setTimeout(r, 1));
        }
        await server.stop();
        const error = await replay;
        assert.ok(error, "the replay went on with Redis gone");
        assert.match(error.message, /^dlq replay stopped after \d+ dead letters: /);
        const moved = Number(/after (\d+)/.exec(error.message)![1]);
        assert.ok(moved >= 10 && moved < 1203, error.message);
        assert.equal(isUnavailable(error), true, error.message);
      } finally {
        redis.disconnect();
      }
    });
  },
);

redisTest("dlqPurge deletes one stage's dead letters or all of them, and counts them", async () => {
  await withConnection(async (redis) => {
    await letter(redis, "validate", 1);
    await letter(redis, "enrich", 2);
    await letter(redis, "validate", 3);
    assert.equal(await dlqPurge(redis, keys, { stage: "validate" }), 2);
    assert.deepEqual((await dlqList(redis, keys)).map((e) => e.stage), ["enrich"]);
    assert.equal(await dlqPurge(redis, keys, { stage: "validate" }), 0);
    assert.equal(await dlqPurge(redis, keys), 1);
    assert.equal(await redis.exists(keys.dlq), 0);
    assert.equal(await dlqPurge(redis, keys), 0);
  });
});

redisTest(
  "dlqPurge deletes only up to the letter it was given: one written after it stays",
  async () => {
    // `dlq purge` counts, asks, then deletes: letters written while the question was read went
    // too, unseen (3 counted and asked for, 8 purged in a review's run).
    await withConnection(async (redis) => {
      await letter(redis, "validate", 1);
      await letter(redis, "enrich", 2);
      const upTo = await lastDeadLetter(redis, keys);
      await letter(redis, "validate", 3); // written while the question is on screen
      await letter(redis, "enrich", 4);
      assert.equal(await dlqPurge(redis, keys, { stage: "validate", upTo }), 1);
      assert.equal(await dlqPurge(redis, keys, { upTo }), 1);
      assert.deepEqual((await dlqList(redis, keys)).map((e) => e.item!.id), ["id3", "id4"]);
      assert.equal(await dlqPurge(redis, keys), 2);
      assert.equal(await redis.exists(keys.dlq), 0, "the empty stream goes");
    });
  },
);

redisTest(
  "dlqReplay leaves the letters of a stage gone from a fused pipeline, as unfused",
  async () => {
    await withConnection(async (redis) => {
      // A fused run put picky in validate's step; picky has since been taken out of the flow.
      await groups(redis, ["validate"]);
      await redis.hset(keys.steps, { validate: "validate", picky: "validate" });
      await letter(redis, "picky", 1);
      const result = await dlqReplay(redis, keys, { pipeline: PIPELINE });
      assert.deepEqual(result.replayed, {}, "it went to validate and on to be published");
      assert.deepEqual(result.skipped.map((s) => s.reason), [
        `stage "picky" is not in the flow's pipeline`,
      ]);
      assert.equal(await redis.xlen(keys.input("validate")), 0);
    });
  },
);

redisTest(
  "dlqReplay sends a letter to the step its stage ran in last, not to a group an unfused run left",
  async () => {
    await withConnection(async (redis) => {
      // An unfused run made a group per stage; the fused run after it put publish in enrich's step.
      await groups(redis, ["validate", "enrich", "publish"]);
      await redis.hset(keys.steps, { validate: "validate", enrich: "enrich", publish: "enrich" });
      await letter(redis, "publish", 1);
      const result = await dlqReplay(redis, keys, { pipeline: PIPELINE });
      assert.deepEqual(result.replayed, { publish: 1 });
      assert.deepEqual(result.into, { publish: "enrich" });
      assert.deepEqual(await entries(redis, keys.input("enrich")), [{ b: [item(1, 0)], n: "1" }]);
      assert.equal(await redis.xlen(keys.input("publish")), 0);
    });
  },
);

redisTest(
  "dlqReplay moves a page of letters before it reads the next: it never holds the whole stream",
  async () => {
    // Reading all 100,000 letters of 20 KB first ran it out of memory, having moved none.
    await withConnection(async (redis) => {
      await groups(redis, PIPELINE);
      await manyLetters(redis);
      const calls: string[] = [];
      const watched = new Proxy(redis, {
        get(target, name, receiver) {
          const value = Reflect.get(target, name, receiver);
          if (typeof value !== "function") return value;
          return (...args: unknown[]) => {
            if (name === "xrange") calls.push("read");
            if (name === "eval" || name === "evalsha") calls.push("move");
            return value.apply(target, args);
          };
        },
      });
      const result = await dlqReplay(watched, keys, { stage: "enrich", pipeline: PIPELINE });
      assert.deepEqual(result.replayed, { enrich: 401 });
      assert.equal((await entries(redis, keys.input("enrich"))).length, 401);
      assert.equal(await redis.xlen(keys.dlq), 802);
      assert.ok(
        calls.indexOf("move") < calls.lastIndexOf("read"),
        "moved before the last page was read",
      );
    });
  },
);

redisTest(
  "dlqReplay leaves a letter whose item would skip stages moved before its stage since, naming --into",
  async () => {
    // validate -> gate -> enrich -> publish became validate -> enrich -> gate -> publish: gate's
    // letters put back on gate's input went out never enriched (a review: 906 items, nothing said).
    await withConnection(async (redis) => {
      const before = ["validate", "gate", "enrich", "publish"];
      const after = ["validate", "enrich", "gate", "publish"];
      await groups(redis, after);
      await recordOrder(redis, keys, before, []);
      await letter(redis, "gate", 1);
      await letter(redis, "enrich", 2);
      await new Promise((r) => setTimeout(r, 5)); // the reorder starts at a later millisecond
      await recordOrder(redis, keys, after, before);
      await letter(redis, "gate", 3);
      const result = await dlqReplay(redis, keys, { pipeline: after });
      // gate's first letter waits; enrich's (it had been through validate, as now) and the
      // letter written under the new order go back.
      assert.deepEqual(result.replayed, { enrich: 1, gate: 1 });
      assert.equal(result.skipped.length, 1);
      assert.equal(
        result.skipped[0].reason,
        "its item would skip enrich: the flow's stages changed since it was written (its item " +
          "had been through validate); replay it with --into enrich",
      );
      // As it says: from enrich on, it goes through enrich and gate again.
      const into = await dlqReplay(redis, keys, { pipeline: after, into: "enrich" });
      assert.deepEqual(into.replayed, { gate: 1 });
      assert.deepEqual(into.skipped, []);
    });
  },
);

redisTest(
  "dlqReplay checks letters an older millrace wrote: before the first record, and during a rollback",
  async () => {
    // The order was recorded only when a start changed it: letters from before the first record
    // (an upgrade), or written while an older version ran (a rollback), went back unchecked.
    const before = ["validate", "gate", "enrich", "publish"];
    const after = ["validate", "enrich", "gate", "publish"];
    const reason = /^its item would skip enrich: .* replay it with --into enrich$/;
    // An upgrade: the old version ran `before`, recorded in keys.pipeline only.
    await withConnection(async (redis) => {
      await groups(redis, after);
      await letter(redis, "gate", 1);
      await new Promise((r) => setTimeout(r, 5));
      await recordOrder(redis, keys, after, before);
      const result = await dlqReplay(redis, keys, { pipeline: after });
      assert.deepEqual(result.replayed, {});
      assert.match(result.skipped[0]?.reason ?? "", reason);
    });
    // A rollback: the new version recorded `after`, an old one ran `before`, the new one again.
    await withConnection(async (redis) => {
      await groups(redis, after);
      await recordOrder(redis, keys, after, []);
      await new Promise((r) => setTimeout(r, 5));
      await letter(redis, "gate", 2); // written by the old version, under `before`
      await new Promise((r) => setTimeout(r, 5));
      await recordOrder(redis, keys, after, before);
      const result = await dlqReplay(redis, keys, { pipeline: after });
      assert.deepEqual(result.replayed, {});
      assert.match(result.skipped[0]?.reason ?? "", reason);
    });
  },
);

redisTest(
  "dlqReplay judges a reorder from where a letter goes (a fused step's head), and a stage added since as one it would skip",
  async () => {
    const before = ["validate", "gate", "enrich", "publish"];
    const after = ["validate", "enrich", "gate", "publish"];
    // fuse: all: every stage is in validate's step, whose head runs the item through all of them.
    await withConnection(async (redis) => {
      await groups(redis, ["validate"]);
      await redis.hset(keys.steps, {
        validate: "validate",
        enrich: "validate",
        gate: "validate",
        publish: "validate",
      });
      await recordOrder(redis, keys, before, []);
      await letter(redis, "gate", 1);
      await new Promise((r) => setTimeout(r, 5));
      await recordOrder(redis, keys, after, before);
      const result = await dlqReplay(redis, keys, { pipeline: after });
      assert.deepEqual(result.replayed, { gate: 1 });
      assert.deepEqual(result.into, { gate: "validate" });
    });
    // A stage added before publish, the rest in their order: its letters would skip it (a dedupe
    // added would let a copy through), so they wait for --into the new stage.
    await withConnection(async (redis) => {
      const added = ["validate", "gate", "enrich", "tag", "publish"];
      await groups(redis, added);
      await recordOrder(redis, keys, before, []);
      await letter(redis, "publish", 1);
      await new Promise((r) => setTimeout(r, 5));
      await recordOrder(redis, keys, added, before);
      const result = await dlqReplay(redis, keys, { pipeline: added });
      assert.deepEqual(result.replayed, {});
      assert.match(result.skipped[0].reason, /would skip tag: .* replay it with --into tag$/);
      const into = await dlqReplay(redis, keys, { pipeline: added, into: "tag" });
      assert.deepEqual(into.replayed, { publish: 1 });
    });
  },
);

redisTest(
  "dlqReplay holds a letter to both orders that may have run after a rollback",
  async () => {
    // A, then B (a letter of enrich, its item through validate only), then an older millrace ran
    // A, then the new one A again: the letter was judged by A alone and went out never deduped.
    const a = ["validate", "dedupe", "enrich", "publish"];
    const b = ["validate", "enrich", "dedupe", "publish"];
    await withConnection(async (redis) => {
      await groups(redis, a);
      await recordOrder(redis, keys, a, []);
      await new Promise((r) => setTimeout(r, 5));
      await recordOrder(redis, keys, b, a);
      await new Promise((r) => setTimeout(r, 5));
      await letter(redis, "enrich", 1);
      await recordOrder(redis, keys, a, a); // keys.pipeline: the older millrace's A
      const result = await dlqReplay(redis, keys, { pipeline: a });
      assert.deepEqual(result.replayed, {});
      assert.match(result.skipped[0].reason, /would skip dedupe: .* replay it with --into dedupe$/);
    });
  },
);
