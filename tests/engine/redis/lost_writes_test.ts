/**
 * Redis can come back from a crash without its last writes (`appendfsync
 * everysec`): an entry a process had read, and its delivery, are gone, and
 * the source sends those items again. A batch of that entry still in the
 * process's hands must not run any further: a stage's side effects (a
 * Deduper's claim) would stay behind, and the items sent again would look
 * like duplicates of themselves (chaos `aof-cut` lost items that way: only
 * their merge updates were published). Redis losing writes is played here
 * by deleting the entry and its delivery, then dropping every connection.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineFlow } from "../../../config/define_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { sleep } from "../../../engine/backoff.ts";
import { RedisConnectionLostError } from "../../../engine/redis/connection.ts";
import { openRedisRuntime, RedisLostWritesError } from "../../../engine/redis/redis_runtime.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { startFlow } from "../../../engine/run_flow.ts";
import type { Runtime } from "../../../engine/runtime.ts";
import type { Registry } from "../../../engine/registry.ts";
import { conformanceRegistry, keyOf, Probe } from "../_conformance_registry.ts";
import { client, flowKeys, redisTest, withRedis } from "./_harness.ts";

/** Starts `name`: three items (one entry) from `n` through `gate` and `record`. */
async function startGated(name: string, url: string, dir: string, registry: Registry) {
  const flow = defineFlow({
    name,
    output: dir,
    durability: "redis",
    redis: url,
    sources: { n: { kind: "feed", count: 3, batch: 3 } },
    pipeline: [{ gate: {} }, { record: {} }],
    durable: { claimAfter: "1s" },
  }, registry);
  const log = memoryLogger();
  const running = await startFlow(flow, {
    registry,
    deadLetters: new MemoryDeadLetters(),
    log,
    backoffBase: 20,
  });
  return { running, log, key: flowKeys(name).input("gate", "normal") };
}

/**
 * Runs three items (one entry) through `gate` and `record`. The gate's first
 * try waits until `whileHeld` has run, then fails as a dropped connection
 * fails a script in flight, or, with `firstTry: "ends"`, ends having emitted
 * nothing, as a try whose Redis calls were all answered before the drop
 * ends (a Deduper that took its items for copies of what Redis then lost);
 * what each try of the gate got is returned.
 */
async function gatedRun(
  whileHeld: (redis: ReturnType<typeof client>, key: string) => Promise<void>,
  firstTry: "fails" | "ends" = "fails",
) {
  return await withRedis(async (server) => {
    const probe = new Probe();
    const tries: string[][] = [];
    const holding = Promise.withResolvers<void>();
    const release = Promise.withResolvers<void>();
    const registry = conformanceRegistry(probe).stage({
      kind: "gate",
      summary: "holds its first batch until released, then fails it",
      schema: z.strictObject({}),
      create: () => ({
        async handle(batch, out) {
          tries.push(batch.map(keyOf));
          if (tries.length === 1) {
            holding.resolve();
            await release.promise;
            if (firstTry === "ends") return;
            throw new RedisConnectionLostError("EVALSHA");
          }
          for (const item of batch) out.emit(item);
        },
      }),
    });
    const dir = await Deno.makeTempDir({ prefix: "millrace-lost-writes-" });
    const admin = client(server);
    try {
      const { running, log, key } = await startGated("lost", server.url, dir, registry);
      await holding.promise;
      await whileHeld(admin, key);
      // Every connection of the flow drops, as when Redis restarts.
      await admin.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
      release.resolve();
      const report = await running.done;
      return { tries, handled: probe.handled.flat(), log: log.lines, report };
    } finally {
      admin.disconnect();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

redisTest(
  "a batch whose entry Redis lost is not run again after the connection drops",
  async () => {
    const { tries, handled, log, report } = await gatedRun(async (redis, key) => {
      // Redis came back without the entry and its delivery.
      const pending = await redis.xpending(key, "gate", "-", "+", 10) as [string][];
      assert.equal(pending.length, 1, "the gate's batch is one pending entry");
      await redis.xack(key, "gate", pending[0][0]);
      await redis.xdel(key, pending[0][0]);
    });
    assert.deepEqual(tries, [["n0", "n1", "n2"]], "no retry ran on the lost entry's items");
    assert.deepEqual(handled, [], "nothing of it went on");
    assert.equal(report.deadLettered, 0, "and nothing of it was dead-lettered");
    assert.ok(
      log.some((l) => l.includes("is no longer held by this process")),
      "the log says why the batch went on without it",
    );
  },
);

redisTest(
  "a batch whose entry is still pending after the connection drops is retried",
  async () => {
    const { tries, handled } = await gatedRun(() => Promise.resolve());
    assert.deepEqual(tries, [["n0", "n1", "n2"], ["n0", "n1", "n2"]]);
    assert.deepEqual(handled, ["n0", "n1", "n2"]);
  },
);

redisTest(
  "a batch whose entry another consumer holds after the drop leaves it to that one",
  async () => {
    const { tries, handled } = await gatedRun(async (redis, key) => {
      // Redis came back without this process's delivery, and another consumer read the entry.
      const pending = await redis.xpending(key, "gate", "-", "+", 10) as [string][];
      await redis.xclaim(key, "gate", "elsewhere", 0, pending[0][0]);
    });
    // Not acknowledged with nothing: it stays pending until it is claimed
    // back from the silent consumer (claimAfter) and run, once.
    assert.deepEqual(tries, [["n0", "n1", "n2"], ["n0", "n1", "n2"]]);
    assert.deepEqual(handled, ["n0", "n1", "n2"]);
  },
);

redisTest(
  "a try that ended across the drop is not committed for an entry another consumer holds now",
  async () => {
    const { tries, handled } = await gatedRun(async (redis, key) => {
      const pending = await redis.xpending(key, "gate", "-", "+", 10) as [string][];
      await redis.xclaim(key, "gate", "elsewhere", 0, pending[0][0]);
    }, "ends");
    // The first try's result (nothing) is not committed: the commit checks
    // the entry again after the drop and leaves it to its holder, from whom
    // it is claimed back after claimAfter and run again. Committed, it would
    // have acknowledged the entry with none of its items.
    assert.deepEqual(tries, [["n0", "n1", "n2"], ["n0", "n1", "n2"]]);
    assert.deepEqual(handled, ["n0", "n1", "n2"]);
  },
);

redisTest(
  "items done again after Redis lost the first go are kept beside the lost copy",
  async () => {
    await withRedis(async (server) => {
      const probe = new Probe();
      const tries: string[][] = [];
      const registry = conformanceRegistry(probe).stage({
        kind: "gate",
        summary: "records each try",
        schema: z.strictObject({}),
        // It waits for a second entry: the first stays in hand meanwhile.
        window: () => ({ size: 6, maxWait: 30_000 }),
        create: () => ({
          handle(batch, out) {
            tries.push(batch.map(keyOf));
            for (const item of batch) out.emit(item);
          },
        }),
      });
      const dir = await Deno.makeTempDir({ prefix: "millrace-lost-writes-" });
      const admin = client(server);
      try {
        const { running, key } = await startGated("again", server.url, dir, registry);
        let pending: [string][] = [];
        while (pending.length === 0) {
          pending = await admin.xpending(key, "gate", "-", "+", 10) as [string][];
          await new Promise((r) => setTimeout(r, 20));
        }
        // Redis loses the entry in hand and every connection drops; then the
        // same items come again in a new entry (a step before this one did
        // them again).
        const [[, fields]] = await admin.xrange(key, pending[0][0], pending[0][0]);
        await admin.xack(key, "gate", pending[0][0]);
        await admin.xdel(key, pending[0][0]);
        await admin.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
        await admin.xadd(key, "*", ...fields);
        await running.done;
        assert.deepEqual(
          tries,
          [["n0", "n1", "n2"]],
          "the new entry's items ran, the lost ones did not",
        );
        assert.deepEqual(probe.handled.flat(), ["n0", "n1", "n2"], "and went on, once");
      } finally {
        admin.disconnect();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

/** The id Redis gives the flow's commands connection, once it is connected. */
async function commandsClient(admin: ReturnType<typeof client>, flow: string): Promise<string> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
    const list = await admin.call("CLIENT", "LIST") as string;
    const line = list.split("\n").find((l) => l.includes(`name=millrace:${flow}:commands `));
    const id = line?.match(/^id=(\d+)/)?.[1];
    if (id) return id;
    await sleep(20);
  }
  throw new Error(`the commands connection of ${flow} did not come back`);
}

redisTest(
  "a drained run fails, naming what is left, when Redis comes back without acks it had counted",
  async () => {
    await withRedis(async (server) => {
      const registry = conformanceRegistry(new Probe());
      const dir = await Deno.makeTempDir({ prefix: "millrace-lost-writes-" });
      const flow = defineFlow({
        name: "redrain",
        output: dir,
        durability: "redis",
        redis: server.url,
        sources: { n: { kind: "feed", count: 3, batch: 3 } },
        pipeline: [{ record: {} }],
        durable: { claimAfter: "1s" },
      }, registry);
      const deadLetters = new MemoryDeadLetters();
      // A first run finishes the flow: its source's done mark is set, its edge is empty.
      await (await startFlow(flow, { registry, deadLetters, log: memoryLogger() })).done;

      const admin = client(server);
      const stop = new AbortController();
      const kill = new AbortController();
      let runtime: Runtime | undefined;
      /** Drops every connection of the flow, as a Redis restart does, and waits for the reconnect. */
      const restart = async () => {
        const before = await commandsClient(admin, "redrain");
        await admin.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
        while (await commandsClient(admin, "redrain") === before) await sleep(20);
      };
      try {
        runtime = await openRedisRuntime(flow, {
          registry,
          log: memoryLogger(),
          stop: stop.signal,
          kill: kill.signal,
        });
        assert.equal(await runtime.drained, true, "the drain check finds the flow drained");
        await runtime.confirmDrained!();
        await restart();
        await runtime.confirmDrained!(); // Redis went away and came back with nothing lost

        // Redis comes back without the acknowledgement of an entry: it is pending again.
        const key = flowKeys("redrain").input("record", "normal");
        await admin.xadd(key, "*", "b", "[]", "n", "0");
        await admin.xreadgroup("GROUP", "record", "gone", "COUNT", 1, "STREAMS", key, ">");
        await restart();
        await assert.rejects(
          runtime.confirmDrained!(),
          (e) =>
            e instanceof RedisLostWritesError &&
            /^redrain: work came back after the flow drained .*: 1 entry on record; nothing is lost: run the flow again/
              .test(e.message),
        );
        stop.abort();
        await runtime.built.close();
        await runtime.close();
        runtime = undefined;

        // Running the flow again finishes it: the entry is claimed and acknowledged.
        await (await startFlow(flow, { registry, deadLetters, log: memoryLogger() })).done;
        const left = await admin.xpending(key, "record") as [number];
        assert.equal(left[0], 0, "nothing is pending after the rerun");
      } finally {
        stop.abort();
        kill.abort();
        admin.disconnect();
        await runtime?.built.close();
        await runtime?.close();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
