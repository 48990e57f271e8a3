import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import type { DurableStepRun } from "../../../engine/redis/step_run.ts";
import type { Lane } from "../../../engine/redis/keys.ts";
import { claimLoop, pruneConsumers, staleAfter } from "../../../engine/redis/recovery.ts";
import type { StreamEntry } from "../../../engine/redis/codec.ts";
import { DEFAULT_DURABLE } from "../../../engine/flow.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { pairs } from "../../../engine/redis/redis_info.ts";
import { commitOnce } from "../../../engine/redis/commit.ts";
import { addEntry, item } from "./_fixtures.ts";
import { client, flowKeys, redisTest, withRedis } from "./_harness.ts";

const keys = flowKeys("recover");
const STEP = "stage";
const KEY = keys.input(STEP);
const ME = "me";

async function consumers(redis: Redis): Promise<Record<string, number>> {
  const list = (await redis.xinfo("CONSUMERS", KEY, STEP) as unknown[]).map(pairs);
  return Object.fromEntries(list.map((c) => [String(c.name), Number(c.pending)]));
}

/** `consumer` reads `n` new entries; with `ack` it acknowledges them too. */
async function read(redis: Redis, consumer: string, n: number, ack: boolean): Promise<void> {
  const got = await redis.xreadgroup("GROUP", STEP, consumer, "COUNT", n, "STREAMS", KEY, ">");
  const ids = (got as [string, [string, string[]][]][])[0][1].map(([id]) => id);
  if (ack) await redis.xack(KEY, STEP, ...ids);
}

async function setup(redis: Redis, entries: number): Promise<void> {
  await redis.xgroup("CREATE", KEY, STEP, "0", "MKSTREAM");
  await redis.xgroup("CREATE", keys.input(STEP, "high"), STEP, "0", "MKSTREAM");
  for (let i = 0; i < entries; i++) await redis.xadd(KEY, "*", "b", "[]", "n", "0");
}

/** Runs the claim loop of one step for `ms`, as the step's process would. */
async function claimFor(
  redis: Redis,
  ms: number,
  claimAfter: number,
  staleAfterMs?: number,
  inHand: string[] = [],
  maxDeliveries = 5,
): Promise<{ lines: string[]; claimed: { lane: Lane; entries: StreamEntry[] }[] }> {
  const log = memoryLogger();
  const stop = new AbortController();
  const run = {
    step: { id: STEP, stages: [] },
    keys,
    options: { ...DEFAULT_DURABLE, claimAfter },
    maxDeliveries,
    redis,
    consumer: ME,
    stop: stop.signal,
    log,
    held: new Map<string, number>(),
  } as unknown as DurableStepRun;
  for (const id of inHand) run.held.set(`normal ${id}`, 1);
  const claimed: { lane: Lane; entries: StreamEntry[] }[] = [];
  const loop = claimLoop(run, claimed, { staleAfterMs });
  await new Promise((r) => setTimeout(r, ms));
  stop.abort();
  await loop;
  return { lines: log.lines, claimed };
}

Deno.test("consumers go stale after ten claimAfters, and never sooner than five minutes", () => {
  assert.equal(staleAfter(30_000), 300_000);
  assert.equal(staleAfter(1000), 300_000);
  assert.equal(staleAfter(60_000), 600_000);
});

redisTest(
  "pruning deletes idle consumers that hold nothing, never one with pending entries nor our own",
  async () => {
    await withRedis(async (server) => {
      const redis = client(server);
      try {
        await setup(redis, 4);
        await read(redis, "gone", 1, true);
        await read(redis, "holder", 1, false);
        await read(redis, ME, 1, true);
        // `fresh` must read as idle for less than the limit: 250 ms leaves
        // room for a test or a Redis paused by a loaded machine.
        await new Promise((r) => setTimeout(r, 300));
        await read(redis, "fresh", 1, true);
        const gone = await pruneConsumers(redis, KEY, STEP, ME, 250);
        assert.deepEqual(gone, ["gone"]);
        assert.deepEqual(await consumers(redis), { fresh: 0, holder: 1, me: 0 });
      } finally {
        await redis.quit();
      }
    });
  },
);

redisTest("the claim loop removes killed processes' consumers once idle long enough", async () => {
  await withRedis(async (server) => {
    const redis = client(server);
    try {
      await setup(redis, 3);
      await read(redis, "killed", 1, true);
      await read(redis, "crashed", 1, false); // its entry is claimed first, then it goes
      await read(redis, ME, 1, true);
      const { lines, claimed } = await claimFor(redis, 1800, 250, 500);
      assert.equal(claimed.flatMap((c) => c.entries).length, 1);
      assert.deepEqual(await consumers(redis), { me: 1 }, lines.join("\n"));
      assert.ok(lines.some((l) => /removed \d consumers idle over/.test(l)), lines.join("\n"));
    } finally {
      await redis.quit();
    }
  });
});

redisTest(
  "a restarted process says once that it waits for entries held by another consumer",
  async () => {
    await withRedis(async (server) => {
      const redis = client(server);
      try {
        await setup(redis, 3);
        await read(redis, "killed", 3, false);
        const { lines, claimed } = await claimFor(redis, 2600, 1000);
        const waits = lines.filter((l) =>
          l.includes(
            "recover/stage: 3 entries pending on other consumers (processes of this flow, " +
              "running or dead); any idle for 1s is claimed",
          )
        );
        assert.equal(waits.length, 1, lines.join("\n"));
        assert.equal(claimed.flatMap((c) => c.entries).length, 3, lines.join("\n"));
      } finally {
        await redis.quit();
      }
    });
  },
);

redisTest(
  "a live process beside this one, whose entries come and go, is said once, not at each coming",
  async () => {
    await withRedis(async (server) => {
      const redis = client(server);
      const peer = client(server);
      try {
        await setup(redis, 3);
        // The peer holds an entry for 2.5 s (kept fresh: never idle for claimAfter), holds none
        // for 2.5 s, then holds the next: the loop, ticking each second, sees each phase.
        const holdFor = async (ms: number) => {
          await read(peer, "peer", 1, false);
          const [[id]] = await peer.xpending(KEY, STEP, "-", "+", 1, "peer") as [string][];
          for (const end = Date.now() + ms; Date.now() < end;) {
            await peer.xclaim(KEY, STEP, "peer", 0, id, "JUSTID");
            await new Promise((r) => setTimeout(r, 200));
          }
          await peer.xack(KEY, STEP, id);
        };
        const peerLoop = (async () => {
          await holdFor(2500);
          await new Promise((r) => setTimeout(r, 2500));
          await holdFor(2500);
        })();
        const { lines, claimed } = await claimFor(redis, 7200, 2000);
        await peerLoop;
        const waits = lines.filter((l) => l.includes("pending on other consumers"));
        // Before: said again each time the peer held an entry after holding none.
        assert.equal(waits.length, 1, lines.join("\n"));
        assert.deepEqual(claimed, [], "a live peer's entries are not claimed");
      } finally {
        await peer.quit();
        await redis.quit();
      }
    });
  },
);

redisTest(
  "an entry delivered to this consumer by a read whose reply was lost is claimed; one in hand is not",
  async () => {
    await withRedis(async (server) => {
      const redis = client(server);
      try {
        await setup(redis, 2);
        const got = await redis.xreadgroup("GROUP", STEP, ME, "COUNT", 2, "STREAMS", KEY, ">");
        const [inHand, lost] = (got as [string, [string, string[]][]][])[0][1].map(([id]) => id);
        const { claimed, lines } = await claimFor(redis, 900, 250, undefined, [inHand]);
        assert.deepEqual(
          claimed.flatMap((c) => c.entries.map((e) => e.id)),
          [lost],
          lines.join("\n"),
        );
        const deliveries = (await redis.xpending(KEY, STEP, "-", "+", 10) as [
          string,
          string,
          number,
          number,
        ][]).map((p) => [p[0], p[3]]);
        assert.deepEqual(deliveries, [[inHand, 1], [lost, 2]], "the one in hand was not touched");
      } finally {
        await redis.quit();
      }
    });
  },
);

/** The dead letters written so far: [stage, reason, attempts]. */
async function letters(redis: Redis): Promise<[string, string, number][]> {
  return (await redis.xrange(keys.dlq, "-", "+")).map(([, f]) => {
    const m: Record<string, string> = {};
    for (let i = 0; i + 1 < f.length; i += 2) m[f[i]] = f[i + 1];
    return [m.stage, m.reason, Number(m.attempts)];
  });
}

/** Reads `count` new entries as `consumer` (which then dies holding them); their ids. */
async function readAs(redis: Redis, consumer: string, count: number): Promise<string[]> {
  const got = await redis.xreadgroup("GROUP", STEP, consumer, "COUNT", count, "STREAMS", KEY, ">");
  return (got as [string, [string, string[]][]][])[0][1].map(([id]) => id);
}

redisTest(
  "a pending entry gone from the stream is dead-lettered as lost, never acknowledged silently",
  async () => {
    await withRedis(async (server) => {
      const redis = client(server);
      try {
        await setup(redis, 3);
        const ids = await readAs(redis, "killed", 3);
        await redis.xdel(KEY, ids[1]);
        const { claimed, lines } = await claimFor(redis, 900, 250);
        assert.deepEqual(
          claimed.flatMap((c) => c.entries.map((e) => e.id)),
          [ids[0], ids[2]],
          lines.join("\n"),
        );
        assert.deepEqual(await letters(redis), [
          [STEP, `entry ${ids[1]} was trimmed while pending`, 1],
        ]);
        assert.ok(
          lines.some((l) => l.includes("error") && l.includes(KEY) && l.includes(ids[1])),
          lines.join("\n"),
        );
        const pending = (await redis.xpending(KEY, STEP, "-", "+", 10) as [string][])
          .map((p) => p[0]);
        assert.deepEqual(pending, [ids[0], ids[2]], "the lost entry is no longer pending");
      } finally {
        await redis.quit();
      }
    });
  },
);

redisTest(
  "a pending entry gone from the stream after its last delivery is dead-lettered as lost",
  async () => {
    await withRedis(async (server) => {
      const redis = client(server);
      try {
        await setup(redis, 1);
        const [id] = await readAs(redis, "killed", 1);
        // Delivered maxDeliveries (5) times, started alone 4 times: due for dead letters.
        await redis.xclaim(KEY, STEP, "killed", 0, id, "RETRYCOUNT", 5);
        await redis.hset(keys.tries, keys.tryField(STEP, "normal", id), 4);
        await redis.xdel(KEY, id);
        const { claimed, lines } = await claimFor(redis, 900, 250);
        assert.deepEqual(claimed, [], lines.join("\n"));
        assert.deepEqual(await letters(redis), [[
          STEP,
          `entry ${id} was trimmed while pending`,
          5,
        ]]);
        assert.equal(await redis.hlen(keys.tries), 0);
        assert.deepEqual(await redis.xpending(KEY, STEP, "-", "+", 10), []);
      } finally {
        await redis.quit();
      }
    });
  },
);

redisTest(
  "a worn entry that another process claimed since the claim loop looked is not dead-lettered",
  async () => {
    // The claim loop decides from a snapshot: XPENDING IDLE, then the tries.
    // Another process's loop, which saw the entry one try short, may claim
    // it and start it alone in between; dead-lettering it then threw away
    // a run whose item a sink may already hold, and sent it to dead letters too.
    const raceKeys = flowKeys("dlrace");
    const step = "publish";
    const key = raceKeys.input(step);
    await withRedis(async (server) => {
      const admin = client(server);
      const other = client(server); // the other process, C
      try {
        await admin.xgroup("CREATE", key, step, "0", "MKSTREAM");
        await admin.xgroup("CREATE", raceKeys.input(step, "high"), step, "0", "MKSTREAM");
        const id = await addEntry(admin, key, [item(1)]);
        await admin.xreadgroup("GROUP", step, "dead", "STREAMS", key, ">");
        // Delivered 5 times, started alone 3 times, idle a minute: one try short of guilty.
        await admin.xclaim(key, step, "dead", 0, id, "IDLE", 60_000, "RETRYCOUNT", 5, "JUSTID");
        const field = raceKeys.tryField(step, "normal", id);
        await admin.hset(raceKeys.tries, field, 3);

        // C claims it and counts its try (RedisEdge.alone) just before this
        // process reads the tries; this process's next call is its decision.
        let injected = false;
        let decided: Promise<unknown> | undefined;
        const wrapped = new Proxy(admin, {
          get(target, prop) {
            const value = Reflect.get(target, prop, target);
            if (typeof value !== "function") return value;
            return (...args: unknown[]) => {
              if (prop === "hmget" && !injected) {
                injected = true;
                return other.xclaim(key, step, "C", 1000, id, "JUSTID")
                  .then((got) => assert.deepEqual(got, [id], "C claimed it"))
                  .then(() => other.hincrby(raceKeys.tries, field, 1))
                  .then(() => value.apply(target, args));
              }
              const result = value.apply(target, args);
              if (injected && prop !== "hmget" && prop !== "xrange" && prop !== "hget") {
                decided ??= Promise.resolve(result).catch(() => {});
              }
              return result;
            };
          },
        }) as Redis;

        const stop = new AbortController();
        const run = {
          step: { id: step, stages: [{ ctx: { stage: step }, stats: { received: 0, failed: 0 } }] },
          keys: raceKeys,
          options: { ...DEFAULT_DURABLE, claimAfter: 1000 },
          maxDeliveries: 5,
          redis: wrapped,
          consumer: "A",
          stop: stop.signal,
          log: memoryLogger(),
          held: new Map<string, number>(),
        } as unknown as DurableStepRun;
        const loop = claimLoop(run, { push: () => {} });
        while (!decided) await new Promise((r) => setTimeout(r, 20));
        await decided;
        stop.abort();
        await loop;

        assert.equal(await admin.xlen(raceKeys.dlq), 0, "no dead letter for an entry C runs");
        // C finishes its run and commits: the entry is still there to acknowledge.
        const gone = await commitOnce(other, {
          input: key,
          group: step,
          dlq: raceKeys.dlq,
          tries: raceKeys.tries,
        }, { entries: [{ id }], bodies: [], letters: [], tryField: field });
        assert.deepEqual(gone, [], "C's commit acknowledged it");
      } finally {
        admin.disconnect();
        other.disconnect();
      }
    });
  },
);

redisTest(
  "with maxDeliveries 1 an item its process died holding is dead-lettered saying so, not that it was run alone",
  async () => {
    // The reason said "every process that ran it alone (0 times) stopped before finishing it":
    // no process had run it alone; the setting gives it no second delivery.
    await withRedis(async (server) => {
      const redis = client(server);
      try {
        await setup(redis, 0);
        await addEntry(redis, KEY, [item(1)]);
        await readAs(redis, "killed", 1);
        const { lines } = await claimFor(redis, 900, 250, undefined, [], 1);
        const got = await letters(redis);
        assert.equal(got.length, 1, lines.join("\n"));
        assert.match(
          got[0][1],
          /^delivered 1 time and never acknowledged: the process it was delivered to stopped before finishing it, .*maxDeliveries is 1, so it is not delivered again/,
        );
        assert.doesNotMatch(got[0][1], /ran it alone/);
      } finally {
        await redis.quit();
      }
    });
  },
);
