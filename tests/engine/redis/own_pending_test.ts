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
      const run = await gatedRun(server, "own");
      try {
        // The orphan is found and run: the gate holds all three entries.
        await waitFor("the orphan entry to run", () => run.entered === 3, 20_000);
        assert.equal(run.proxy.repliesLost, 1);
        const pending = await run.admin.xpending(run.key, "gate", "-", "+", 10) as [
          string,
          string,
          number,
          number,
        ][];
        assert.deepEqual(pending.map(([, , , deliveries]) => deliveries), [1, 1, 1]);
        run.release();
        assert.equal((await run.running).published, 150);
      } finally {
        await run.close();
      }
    });
  },
);

redisTest(
  "an orphan another consumer claims while the step looks for it is left to that consumer",
  async () => {
    await withRedis(async (server) => {
      let stolen = "";
      const run = await gatedRun(server, "race", (proxy, key) => {
        // Another process's claim loop, landing after the step listed its pending entries and
        // before it marks the orphan held: "other" claims the orphan when the mark goes out.
        proxy.loseRequest((chunk) => {
          if (stolen || proxy.repliesLost === 0 || !/evalsha/i.test(chunk)) return false;
          if (!chunk.includes(key)) return false;
          const last = redisCli(server.port, "XPENDING", key, "gate", "-", "+", "10").at(-4)!;
          if (!chunk.includes(last)) return false;
          stolen = last;
          redisCli(server.port, "XCLAIM", key, "gate", "other:1:x", "0", last, "JUSTID");
          return false;
        });
      });
      try {
        await waitFor("the orphan to be claimed by another consumer", () => stolen !== "", 20_000);
        // The step's look ends at once: what it found is a batch by now, had it taken the orphan.
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(run.entered, 2, "the orphan another consumer holds was not run here");
        const owners = await pendingOwners(run.admin, run.key);
        assert.equal(owners.get(stolen), "other:1:x");
        // Given back to the step's consumer, and a drop later, it is found and run, once.
        const mine = [...owners.values()].find((o) => o !== "other:1:x")!;
        await run.admin.xclaim(run.key, "gate", mine, 0, stolen, "JUSTID");
        await run.admin.client("KILL", "TYPE", "normal", "SKIPME", "yes");
        await waitFor("the orphan to run", () => run.entered === 3, 20_000);
        run.release();
        assert.equal((await run.running).published, 150);
      } finally {
        await run.close();
      }
    });
  },
);

/**
 * Flow `name` started over a loopback proxy: 150 items in three entries to
 * a stage `gate` that holds each batch until released (3 at once), then
 * publish. The third read of the gate's input that delivers (after two
 * batches entered) loses its reply: its entry is pending to the step,
 * which never saw it. `arm` adds the test's own losses before the start.
 */
async function gatedRun(
  server: { port: number },
  name: string,
  arm?: (proxy: RedisProxy, key: string) => void,
) {
  const proxy = new RedisProxy(server.port);
  const admin = client(server);
  const dir = await Deno.makeTempDir({ prefix: `millrace-own-pending-${name}-` });
  const key = flowKeys(name, "millrace").input("gate", "normal");
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const run = {
    proxy,
    admin,
    key,
    entered: 0,
    release,
    running: undefined as unknown as ReturnType<typeof runFlow>,
    async close() {
      release();
      await run.running.catch(() => {});
      admin.disconnect();
      await proxy.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
  const registry = workerRegistry().stage({
    kind: "gate",
    summary: "holds its batches until the test releases them",
    schema: z.strictObject({}),
    create: () => ({
      async handle(batch, out) {
        run.entered++;
        await released;
        for (const item of batch) out.emit(item);
      },
    }),
  });
  proxy.loseReply(
    (chunk) =>
      run.entered === 2 && /xreadgroup/i.test(chunk) && /:in:gate\r\n/.test(chunk) &&
      /\$1\r\n>\r\n/.test(chunk),
  );
  arm?.(proxy, key);
  const yaml = `
name: ${name}
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
  run.running = runFlow(flow, {
    registry,
    deadLetters: new MemoryDeadLetters(),
    log: memoryLogger(),
  });
  return run;
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
