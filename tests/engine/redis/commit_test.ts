import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { loadFlow } from "../../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { commitOnce } from "../../../engine/redis/commit.ts";
import { itemId } from "../../../engine/item.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { runFlow } from "../../../engine/run_flow.ts";
import { RedisProxy } from "../../_redis_proxy.ts";
import { addEntry, item } from "./_fixtures.ts";
import {
  client,
  deadLetters,
  edges,
  flowKeys,
  readJsonl,
  redisTest,
  repeats,
  waitFor,
  withRedis,
  writeFlow,
} from "./_harness.ts";
import { numberedItem, workerRegistry } from "./_worker.ts";

const COUNT = 2000;
const POISON = [3, 250, 777, 1024, 1999];

/** A stage commit on the wire: a MULTI's EXEC, or the commit script (the only one given `tries`). */
const isCommit = (chunk: string) =>
  /\r\nEXEC\r\n/i.test(chunk) || (/evalsha/i.test(chunk) && chunk.includes(":tries\r\n"));

redisTest(
  "a commit re-sent after its reply was lost appends neither outputs nor dead letters twice",
  async () => {
    await withRedis(async (server) => {
      const proxy = new RedisProxy(server.port);
      proxy.loseReply(isCommit, 5);
      const dir = await Deno.makeTempDir({ prefix: "millrace-commit-" });
      const redis = client(server);
      try {
        const path = await writeFlow(
          dir,
          `
name: commits
durability: redis
redis: ${proxy.url}
output: ${dir}
sources:
  items: { kind: numbered, count: ${COUNT}, batch: 100, poison: [${POISON.join(", ")}] }
pipeline:
  - validate: { require: [title, url] }
  - poison: { retries: 0 }
  - publish:
      sinks: [ { jsonl: { path: items.jsonl } } ]
      batch: { size: 100, maxWait: 20ms }
durable: { claimAfter: 1s, entryItems: 50 }
`,
        );
        const registry = workerRegistry();
        const flow = await loadFlow(path, registry);
        const report = await runFlow(flow, {
          registry,
          deadLetters: new MemoryDeadLetters(),
          log: memoryLogger(),
        });
        assert.equal(proxy.repliesLost, 5, "five commit replies were lost");

        const letters = await deadLetters(redis, flowKeys("commits"));
        const lettered = letters.map((l) => `${l.item.id} ${l.stage}`);
        assert.deepEqual(repeats(lettered), new Map(), "no dead letter twice");
        assert.deepEqual(
          new Set(letters.map((l) => l.item.id)),
          new Set(POISON.map((i) => itemId(numberedItem(i)))),
        );
        const byId = new Map(report.stages.map((s) => [s.id, s]));
        assert.equal(byId.get("poison")!.received, COUNT, "validate appended nothing twice");
        assert.equal(byId.get("publish")!.received, COUNT - POISON.length, "nor did poison");
        const ids = (await readJsonl(join(dir, "items.jsonl"))).map((l) => l.id as string);
        assert.equal(new Set(ids).size, COUNT - POISON.length);
        for (const e of await edges(redis, flowKeys("commits"))) {
          assert.equal(e.pending + e.lag, 0, e.key);
        }
      } finally {
        await redis.quit();
        await proxy.close();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest("a commit writes only while every entry it acknowledges is still pending", async () => {
  await withRedis(async (server) => {
    const redis = client(server);
    try {
      const keys = flowKeys("once");
      const input = keys.input("a");
      await redis.xgroup("CREATE", input, "a", "0", "MKSTREAM");
      await addEntry(redis, input, [item(1)]);
      await addEntry(redis, input, [item(2)]);
      const read = await redis.xreadgroup("GROUP", "a", "c1", "STREAMS", input, ">") as [
        string,
        [string, string[]][],
      ][];
      const [first, second] = read[0][1].map(([id]) => ({ id }));
      const commitKeys = {
        input,
        group: "a",
        output: keys.input("b"),
        dlq: keys.dlq,
        tries: keys.tries,
      };
      const letter = { stage: "a", reason: "bad", attempts: 1, item: item(2) };
      const batch = {
        entries: [first, second],
        bodies: [{ body: Buffer.from("[]"), n: 0 }],
        letters: [letter],
      };

      // Another consumer committed the second entry first: nothing is written.
      await redis.xack(input, "a", second.id);
      assert.deepEqual(await commitOnce(redis, commitKeys, batch), [second.id]);
      assert.equal(await redis.xlen(keys.input("b")), 0);
      assert.equal(await redis.xlen(keys.dlq), 0);

      // The part that is still pending commits; sent again, it writes nothing more.
      const part = {
        entries: [first],
        bodies: [{ body: Buffer.from("[]"), n: 0 }],
        letters: [letter],
      };
      assert.deepEqual(await commitOnce(redis, commitKeys, part), []);
      assert.deepEqual(await commitOnce(redis, commitKeys, part), [first.id]);
      assert.equal(await redis.xlen(keys.input("b")), 1);
      assert.equal(await redis.xlen(keys.dlq), 1);
      const [count] = await redis.xpending(input, "a") as [number];
      assert.equal(count, 0);
    } finally {
      await redis.quit();
    }
  });
});

redisTest(
  "a commit given its consumer writes nothing for an entry another consumer claimed and cut",
  async () => {
    // A process frozen past claimAfter (a blocked event loop, a paused VM) still holds a batch
    // in memory; another claimed its entry meanwhile and committed part of it (a window's batch
    // ended inside it). The first one's commit of the whole entry, checked only as pending to
    // anyone, appended all its outputs again: the part the other had committed twice.
    await withRedis(async (server) => {
      const redis = client(server);
      try {
        const keys = flowKeys("zombie");
        const input = keys.input("a");
        const output = keys.input("b");
        await redis.xgroup("CREATE", input, "a", "0", "MKSTREAM");
        await addEntry(redis, input, [item(1), item(2), item(3), item(4)]);
        await redis.xreadgroup("GROUP", "a", "frozen", "STREAMS", input, ">");
        const [[id]] = await redis.xrange(input, "-", "+");
        await redis.xclaim(input, "a", "other", 0, id, "JUSTID");
        const commitKeys = { input, group: "a", output, dlq: keys.dlq, tries: keys.tries };
        const field = keys.upToField("a", "normal", id);
        // The other commits the first two items and records how far it got.
        const two = { body: Buffer.from("[]"), n: 2 };
        assert.deepEqual(
          await commitOnce(redis, commitKeys, {
            entries: [],
            bodies: [two],
            letters: [],
            consumer: "other",
            cut: { entries: [{ id, field, upTo: 0 }], upTo: 2 },
          }),
          [],
        );
        // The frozen one wakes and commits the whole entry: refused, it is the other's.
        const four = { body: Buffer.from("[]"), n: 4 };
        assert.deepEqual(
          await commitOnce(redis, commitKeys, {
            entries: [{ id }],
            bodies: [four],
            letters: [],
            consumer: "frozen",
          }),
          [id],
        );
        assert.equal(await redis.xlen(output), 1, "only the other's part was appended");
        const [[, owner]] = await redis.xpending(input, "a", "-", "+", 10) as [string, string][];
        assert.equal(owner, "other", "the entry is still the other's to finish");
      } finally {
        await redis.quit();
      }
    });
  },
);

redisTest("a commit of 10,000 one-item entries acknowledges them all and writes once", async () => {
  // A window of size 10000 fed one-item entries (a source yielding one
  // item at a time, or `dlq replay`) commits 10,000 ids at once. Lua's
  // unpack refuses about 8,000 values: the script failed after its
  // writes (Redis rolls nothing back) and every retry appended them again.
  await withRedis(async (server) => {
    const redis = client(server);
    try {
      const keys = flowKeys("wide");
      const input = keys.input("a");
      await redis.xgroup("CREATE", input, "a", "0", "MKSTREAM");
      const count = 10_000;
      const adding = redis.pipeline();
      for (let i = 0; i < count; i++) adding.xadd(input, "*", "b", "[]", "n", "0");
      await adding.exec();
      const read = await redis.xreadgroup(
        "GROUP",
        "a",
        "c1",
        "COUNT",
        count,
        "STREAMS",
        input,
        ">",
      ) as [string, [string, string[]][]][];
      const entries = read[0][1].map(([id]) => ({ id }));
      assert.equal(entries.length, count);
      const commitKeys = {
        input,
        group: "a",
        output: keys.input("b"),
        dlq: keys.dlq,
        tries: keys.tries,
      };
      const letter = { stage: "a", reason: "bad", attempts: 1, item: item(1) };
      const batch = { entries, bodies: [{ body: Buffer.from("[]"), n: 0 }], letters: [letter] };
      assert.deepEqual(await commitOnce(redis, commitKeys, batch), []);
      const [pending] = await redis.xpending(input, "a") as [number];
      assert.equal(pending, 0, "every input acknowledged");
      // Sent again (a lost reply), it writes nothing more.
      assert.equal((await commitOnce(redis, commitKeys, batch)).length, count);
      assert.equal(await redis.xlen(keys.input("b")), 1);
      assert.equal(await redis.xlen(keys.dlq), 1);
    } finally {
      await redis.quit();
    }
  });
});

redisTest(
  "an entry delivered again while its first delivery waits in a window is committed once",
  async () => {
    // Redis losing its last writes (a machine crash with appendfsync
    // everysec) moves a group's last-delivered-id back: entries a step
    // holds in an open window are delivered again, to the same window.
    // Committed together, both copies passed the pending check and the
    // batch's outputs and dead letters were written twice (chaos aof-cut).
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-again-" });
      const redis = client(server);
      try {
        const count = 40;
        const poison = [7, 31];
        const path = await writeFlow(
          dir,
          `
name: again
durability: redis
redis: redis://127.0.0.1:${server.port}
output: ${dir}
sources:
  items: { kind: numbered, count: ${count}, batch: ${count}, poison: [${poison.join(", ")}] }
pipeline:
  - poison: { retries: 0 }
  - embed: { provider: local, dimensions: 8, batch: { size: 1000, maxWait: 3s } }
  - publish:
      sinks: [ { jsonl: { path: items.jsonl } } ]
durable: { claimAfter: 30s, entryItems: 10 }
`,
        );
        const keys = flowKeys("again");
        const registry = workerRegistry();
        const flow = await loadFlow(path, registry);
        const run = runFlow(flow, {
          registry,
          deadLetters: new MemoryDeadLetters(),
          log: memoryLogger(),
        });
        // Every entry read into the embed window of the first step: rewind its group.
        let held: { key: string; group: string } | undefined;
        await waitFor("a step to hold every entry in its window", async () => {
          held = (await edges(redis, keys)).find((e) => e.pending === count / 10);
          return held !== undefined;
        });
        await redis.xgroup("SETID", held!.key, held!.group, "0");
        const report = await run;

        const byId = new Map(report.stages.map((s) => [s.id, s]));
        assert.equal(
          byId.get("publish")!.received,
          count - poison.length,
          "nothing appended twice",
        );
        const letters = await deadLetters(redis, keys);
        assert.deepEqual(repeats(letters.map((l) => `${l.item.id} ${l.stage}`)), new Map());
        assert.equal(letters.length, poison.length);
        for (const e of await edges(redis, keys)) assert.equal(e.pending + e.lag, 0, e.key);
      } finally {
        await redis.quit();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
