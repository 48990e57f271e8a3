/**
 * After a connection drop, a step looks for entries pending to it that it
 * never saw (a read whose reply was lost) and runs them. Looking must not
 * count a delivery: Redis's delivery count is what a dead letter's
 * `attempts` says, and the entries the step holds meanwhile were delivered
 * once. A read of the consumer's own history (XREADGROUP from 0) counted one
 * for each of them, and reset their idle time, at every drop. And what it
 * runs is only what is still its own: an orphan another process claims
 * meanwhile is that process's.
 */
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { z } from "zod";
import { loadFlow } from "../../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { runFlow } from "../../../engine/run_flow.ts";
import { RedisProxy } from "../../_redis_proxy.ts";
import { client, flowKeys, redisTest, waitFor, withRedis, writeFlow } from "./_harness.ts";
import { workerRegistry } from "./_worker.ts";

redisTest(
  "entries a step holds keep a delivery count of 1 when it reads back an orphan after a drop",
  async () => {
    await withRedis(async (server) => {
      const proxy = new RedisProxy(server.port);
      const admin = client(server);
      const dir = await Deno.makeTempDir({ prefix: "millrace-own-pending-" });
      // A stage that holds every batch until released, counting the batches it was given.
      let entered = 0;
      let release!: () => void;
      const released = new Promise<void>((r) => release = r);
      const registry = gated(() => entered++, released);
      // The third read of the gate's input that delivers (after two batches entered) loses its
      // reply: its entry is pending to the step, which never saw it.
      proxy.loseReply(
        (chunk) =>
          entered === 2 && /xreadgroup/i.test(chunk) && /:in:gate\r\n/.test(chunk) &&
          /\$1\r\n>\r\n/.test(chunk),
      );
      try {
        const yaml = `
name: own
durability: redis
redis: ${proxy.url}
output: ${dir}
sources:
  items: { kind: numbered, count: 150, batch: 150 }
pipeline:
  - gate: { concurrency: 3 }
  - publish: [ { jsonl: { path: items.jsonl } } ]
durable: { claimAfter: 30s, entryItems: 50 }
`;
        const flow = await loadFlow(await writeFlow(dir, yaml), registry);
        const running = runFlow(flow, {
          registry,
          deadLetters: new MemoryDeadLetters(),
          log: memoryLogger(),
        });
        // The orphan is found and run: the gate holds all three entries.
        await waitFor("the orphan entry to run", () => entered === 3, 20_000);
        assert.equal(proxy.repliesLost, 1);
        const key = flowKeys("own", "millrace").input("gate", "normal");
        const pending = await admin.xpending(key, "gate", "-", "+", 10) as [
          string,
          string,
          number,
          number,
        ][];
        assert.deepEqual(pending.map(([, , , deliveries]) => deliveries), [1, 1, 1]);
        release();
        const report = await running;
        assert.equal(report.published, 150);
      } finally {
        release();
        admin.disconnect();
        await proxy.close();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "an orphan another consumer claims while the step looks for it is left to that consumer",
  async () => {
    await withRedis(async (server) => {
      const proxy = new RedisProxy(server.port);
      const admin = client(server);
      const dir = await Deno.makeTempDir({ prefix: "millrace-own-pending-race-" });
      const key = flowKeys("race", "millrace").input("gate", "normal");
      let entered = 0;
      let release!: () => void;
      const released = new Promise<void>((r) => release = r);
      const registry = gated(() => entered++, released);
      proxy.loseReply(
        (chunk) =>
          entered === 2 && /xreadgroup/i.test(chunk) && /:in:gate\r\n/.test(chunk) &&
          /\$1\r\n>\r\n/.test(chunk),
      );
      // Another process's claim loop, landing after the step listed its pending entries and
      // before it marks the orphan held: "other" claims the orphan when the mark goes out.
      let stolen = "";
      proxy.loseRequest((chunk) => {
        if (stolen || proxy.repliesLost === 0 || !/evalsha/i.test(chunk)) return false;
        if (!chunk.includes(key)) return false;
        const last = redisCli(server.port, "XPENDING", key, "gate", "-", "+", "10").at(-4)!;
        if (!chunk.includes(last)) return false;
        stolen = last;
        redisCli(server.port, "XCLAIM", key, "gate", "other:1:x", "0", last, "JUSTID");
        return false;
      });
      try {
        const yaml = `
name: race
durability: redis
redis: ${proxy.url}
output: ${dir}
sources:
  items: { kind: numbered, count: 150, batch: 150 }
pipeline:
  - gate: { concurrency: 3 }
  - publish: [ { jsonl: { path: items.jsonl } } ]
durable: { claimAfter: 30s, entryItems: 50 }
`;
        const flow = await loadFlow(await writeFlow(dir, yaml), registry);
        const running = runFlow(flow, {
          registry,
          deadLetters: new MemoryDeadLetters(),
          log: memoryLogger(),
        });
        await waitFor("the orphan to be claimed by another consumer", () => stolen !== "", 20_000);
        // The step's look ends: what it found is a batch by now, had it taken the orphan.
        await waitFor("the step to read on", async () => (await clientList(admin)) > 0, 5_000);
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(entered, 2, "the orphan another consumer holds was not run here");
        const owners = await pendingOwners(admin, key);
        assert.equal(owners.get(stolen), "other:1:x");
        // Given back to the step's consumer, and a drop later, it is found and run, once.
        const mine = [...owners.values()].find((o) => o !== "other:1:x")!;
        await admin.xclaim(key, "gate", mine, 0, stolen, "JUSTID");
        await admin.client("KILL", "TYPE", "normal", "SKIPME", "yes");
        await waitFor("the orphan to run", () => entered === 3, 20_000);
        release();
        const report = await running;
        assert.equal(report.published, 150);
      } finally {
        release();
        admin.disconnect();
        await proxy.close();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

/** The test stages with `gate`: each batch counted by `enter`, held until `released`. */
function gated(enter: () => void, released: Promise<void>) {
  return workerRegistry().stage({
    kind: "gate",
    summary: "holds its batches until the test releases them",
    schema: z.strictObject({}),
    create: () => ({
      async handle(batch, out) {
        enter();
        await released;
        for (const item of batch) out.emit(item);
      },
    }),
  });
}

/** A redis-cli call's reply, one word a line: a seam the proxy's synchronous hooks can use. */
function redisCli(port: number, ...args: string[]): string[] {
  const out = new Deno.Command("redis-cli", { args: ["-p", String(port), ...args] }).outputSync();
  return new TextDecoder().decode(out.stdout).trim().split("\n");
}

/** Each pending entry of `key`'s gate group, and the consumer it is pending to. */
async function pendingOwners(admin: Redis, key: string): Promise<Map<string, string>> {
  const pending = await admin.xpending(key, "gate", "-", "+", 10) as [string, string][];
  return new Map(pending.map(([id, owner]) => [id, owner]));
}

/** How many of the flow's connections are up (named `millrace:race:…`). */
async function clientList(admin: Redis): Promise<number> {
  const list = String(await admin.client("LIST"));
  return list.split("\n").filter((l) => l.includes("name=millrace:race:")).length;
}
