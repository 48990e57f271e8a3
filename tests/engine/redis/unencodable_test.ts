/**
 * An item a source or stage makes that JSON cannot encode (a BigInt, a cycle: what a
 * stage registered in code may put in a payload) cannot travel through a
 * Redis stream. It failed the commit, and with it the whole flow, at every
 * run; it is now dead-lettered by the step that made it, and the flow goes
 * on, as a sink that cannot write it does in memory. A source's is
 * dead-lettered under the source's name by the script that appends the
 * rest and moves the source past it (it failed the flow before).
 */
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { z } from "zod";
import { defineFlow } from "../../../config/define_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import type { Flow } from "../../../engine/flow.ts";
import { memoryLogger } from "../../../engine/log.ts";
import type { Registry } from "../../../engine/registry.ts";
import { runFlow } from "../../../engine/run_flow.ts";
import { commit, RedisProxy } from "../../_redis_proxy.ts";
import { conformanceRegistry, keyOf, Probe } from "../_conformance_registry.ts";
import { client, flowKeys, type RedisServer, redisTest, withRedis } from "./_harness.ts";

/** The conformance components, and a stage `count-views` giving the items keyed `bad` a BigInt. */
function countViews(probe: Probe, beforeFirstBatch?: () => Promise<void>): Registry {
  let first = true;
  return conformanceRegistry(probe).stage({
    kind: "count-views",
    summary: "gives the bad items a BigInt",
    schema: z.strictObject({ bad: z.array(z.string()) }),
    create: (config: { bad: string[] }) => ({
      async handle(batch, out) {
        if (first) await beforeFirstBatch?.();
        first = false;
        for (const item of batch) {
          if (!config.bad.includes(keyOf(item))) out.emit(item);
          else out.emit({ ...item, payload: { ...item.payload as object, views: 10n ** 30n } });
        }
      },
    }),
  });
}

/** A durable flow over the Redis at `server.url` (a proxy's too) writing to `dir`. */
function durable(
  name: string,
  server: { url: string },
  dir: string,
  parts: { sources: Record<string, unknown>; pipeline: unknown[] },
  registry: Registry,
): Flow {
  const redis = server.url;
  return defineFlow({ name, output: dir, durability: "redis", redis, ...parts }, registry);
}

function run(flow: Flow, registry: Registry, log = memoryLogger()) {
  return runFlow(flow, { registry, deadLetters: new MemoryDeadLetters(), log, backoffBase: 1 });
}

/** The flow's dead letters as Redis holds them. */
async function lettersOf(admin: Redis, flow: string) {
  return (await admin.xrange(flowKeys(flow).dlq, "-", "+")).map(([, f]) => {
    const get = (k: string) => f[f.indexOf(k) + 1];
    return { stage: get("stage"), reason: get("reason"), item: JSON.parse(get("item")) };
  });
}

/** Runs `test` with a temporary directory and an admin connection, both gone afterwards. */
async function withDirAndAdmin(
  server: RedisServer,
  test: (dir: string, admin: Redis) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "millrace-unencodable-" });
  const admin = client(server);
  try {
    await test(dir, admin);
  } finally {
    admin.disconnect();
    await Deno.remove(dir, { recursive: true });
  }
}

const SIX_TWO_BAD = {
  sources: { n: { kind: "feed", count: 6, batch: 6 } },
  pipeline: [{ "count-views": { bad: ["n2", "n4"] } }, { record: {} }],
};

redisTest(
  "an output JSON cannot encode is dead-lettered by its step, and the flow goes on",
  async () => {
    await withRedis(async (server) => {
      await withDirAndAdmin(server, async (dir, admin) => {
        const probe = new Probe();
        const registry = countViews(probe);
        const report = await run(durable("bigviews", server, dir, SIX_TWO_BAD, registry), registry);
        assert.equal(report.stopped, false);
        assert.deepEqual(probe.handled.flat().sort(), ["n0", "n1", "n3", "n5"]);
        // Counted where they stopped, as rejected, not as passed on.
        const maker = report.stages.find((s) => s.id === "count-views")!;
        assert.equal(maker.emitted, 4);
        assert.deepEqual(maker.rejected, { "cannot be passed on through Redis": 2 });
        assert.equal(report.deadLettered, 2);
        assert.equal(report.published, 4);
        const letters = await lettersOf(admin, "bigviews");
        assert.equal(new Set(letters.map((l) => l.item.id)).size, 2, "one letter per bad item");
        for (const letter of letters) {
          assert.equal(letter.stage, "count-views");
          assert.match(letter.reason, /^cannot be passed on through Redis: .*BigInt/);
          assert.match(letter.item.payload.unencodable, /BigInt/);
        }
      });
    });
  },
);

redisTest(
  "an output JSON cannot encode is counted once when a dropped connection runs its commit again",
  async () => {
    await withRedis(async (server) => {
      await withDirAndAdmin(server, async (dir, admin) => {
        const probe = new Probe();
        let dropped = false;
        const registry = countViews(probe, async () => {
          // The commit that follows waits on the pause, and the kill drops it in flight.
          await admin.call("CLIENT", "PAUSE", "1500", "WRITE");
          setTimeout(() => {
            admin.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").catch(() => {});
          }, 400);
          dropped = true;
        });
        const log = memoryLogger();
        const report = await run(
          durable("bigdrop", server, dir, SIX_TWO_BAD, registry),
          registry,
          log,
        );
        assert.equal(dropped, true, "the connections were dropped");
        assert.ok(
          log.lines.some((l) => /commit failed, pausing until Redis answers/.test(l)),
          "the commit was in flight when they dropped, and ran again",
        );
        assert.deepEqual(probe.handled.flat().sort(), ["n0", "n1", "n3", "n5"]);
        assert.equal(await admin.xlen(flowKeys("bigdrop").dlq), 2);
        const maker = report.stages.find((s) => s.id === "count-views")!;
        assert.equal(maker.emitted, 4);
        assert.deepEqual(maker.rejected, { "cannot be passed on through Redis": 2 });
        assert.equal(report.deadLettered, 2);
      });
    });
  },
);

redisTest(
  "an output JSON cannot encode is counted once when its commit ran and the reply was lost",
  async () => {
    await withRedis(async (server) => {
      await withDirAndAdmin(server, async (dir, admin) => {
        const proxy = new RedisProxy(server.port);
        // The commit that writes the two letters runs; its reply never comes back.
        proxy.loseReply(commit(/cannot be passed on through Redis/));
        try {
          const probe = new Probe();
          const registry = countViews(probe);
          const flow = durable("biglost", { url: proxy.url }, dir, SIX_TWO_BAD, registry);
          const report = await run(flow, registry);
          assert.equal(proxy.repliesLost, 1, "the commit's reply was lost");
          assert.deepEqual(probe.handled.flat().sort(), ["n0", "n1", "n3", "n5"]);
          assert.equal(await admin.xlen(flowKeys("biglost").dlq), 2);
          const maker = report.stages.find((s) => s.id === "count-views")!;
          assert.equal(maker.emitted, 4);
          assert.deepEqual(maker.rejected, { "cannot be passed on through Redis": 2 });
          assert.equal(report.deadLettered, 2);
        } finally {
          await proxy.close();
        }
      });
    });
  },
);

redisTest(
  "a source's item JSON cannot encode is dead-lettered under its name, and the flow goes on",
  async () => {
    await withRedis(async (server) => {
      await withDirAndAdmin(server, async (dir, admin) => {
        const probe = new Probe();
        const registry = conformanceRegistry(probe).source({
          kind: "counter",
          summary: "six items, the third and fifth with a BigInt",
          schema: z.strictObject({}),
          create: () => ({
            async *read() {
              yield [0, 1, 2, 3, 4, 5].map((i) => ({
                key: `c${i}`,
                title: `item c${i}`,
                url: `https://example.com/c${i}`,
                ...(i === 2 || i === 4 ? { views: 10n ** 30n } : {}),
              }));
            },
          }),
        });
        const flow = durable("bigsource", server, dir, {
          sources: { counter: { kind: "counter" } },
          pipeline: [{ record: {} }],
        }, registry);
        const report = await run(flow, registry);
        assert.equal(report.stopped, false);
        assert.deepEqual(probe.handled.flat().sort(), ["c0", "c1", "c3", "c5"]);
        assert.equal(report.published, 4);
        assert.equal(report.deadLettered, 2);
        assert.deepEqual(
          report.sources.map((s) => [s.name, s.emitted, s.deadLettered]),
          [["counter", 6, 2]],
        );
        const letters = await lettersOf(admin, "bigsource");
        assert.equal(letters.length, 2);
        for (const letter of letters) {
          assert.equal(letter.stage, "counter");
          assert.match(letter.reason, /^cannot be passed on through Redis: .*BigInt/);
          assert.match(letter.item.payload.unencodable, /BigInt/);
        }
        // The source is done: a second run reads nothing and writes no letter again.
        const again = await run(flow, registry);
        assert.equal(again.published, 0);
        assert.equal(await admin.xlen(flowKeys("bigsource").dlq), 2);
      });
    });
  },
);
