/**
 * A connection that drops while a durable flow starts (checking its stages,
 * creating its consumer groups, recording its stages) is waited out as at
 * any later time: the start's calls are run again once Redis answers. It
 * ended the run with `FlowStartError: … connection to Redis lost while
 * XGROUP was in flight`. An answer no wait mends (a replica's READONLY)
 * still ends the start at once.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadFlow } from "../../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { FlowStartError } from "../../../engine/build_flow.ts";
import { createLogger, memoryLogger } from "../../../engine/log.ts";
import { runFlow } from "../../../engine/run_flow.ts";
import { RedisProxy } from "../../_redis_proxy.ts";
import { client, readJsonl, redisTest, startRedis, withRedis, writeFlow } from "./_harness.ts";
import { workerRegistry } from "./_worker.ts";

for (const command of ["hgetall", "xgroup", "hset"]) {
  redisTest(`a connection lost with the start's first ${command} is waited out`, async () => {
    await withRedis(async (server) => {
      const proxy = new RedisProxy(server.port);
      proxy.loseRequest(new RegExp(`\\$${command.length}\\r\\n${command}\\r\\n`, "i"));
      const dir = await Deno.makeTempDir({ prefix: "millrace-start-drop-" });
      try {
        const yaml = `name: startdrop\ndurability: redis\nredis: ${proxy.url}\noutput: ${dir}\n` +
          "sources:\n  items: { kind: numbered, count: 300, batch: 100 }\n" +
          "pipeline:\n  - validate: { require: [title, url] }\n" +
          "  - publish: [ { jsonl: { path: items.jsonl } } ]\n";
        const registry = workerRegistry();
        const flow = await loadFlow(await writeFlow(dir, yaml), registry);
        const lines: Record<string, string>[] = [];
        const log = createLogger("json", { out: (_, line) => void lines.push(JSON.parse(line)) });
        const report = await runFlow(flow, {
          registry,
          deadLetters: new MemoryDeadLetters(),
          log,
        });
        assert.equal(proxy.requestsLost, 1, `the start's ${command} was lost`);
        assert.ok(
          lines.some((l) => /^startdrop: the .* failed, pausing until Redis answers$/.test(l.msg)),
          lines.map((l) => l.msg).join("\n"),
        );
        assert.equal(report.published, 300);
        const ids = (await readJsonl(join(dir, "items.jsonl"))).map((l) => l.id);
        assert.equal(new Set(ids).size, 300);
      } finally {
        await proxy.close();
        await Deno.remove(dir, { recursive: true });
      }
    });
  });
}

redisTest(
  "a Redis that refuses the start's writes (a replica: READONLY) ends the start at once",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-start-replica-" });
      // Its dir given: the copy a replica receives is written there, not where the tests run.
      const replica = await startRedis({ dir });
      const admin = client(replica);
      try {
        await admin.call("REPLICAOF", "127.0.0.1", String(server.port));
        const yaml = `name: onreplica\ndurability: redis\nredis: ${replica.url}\noutput: ${dir}\n` +
          "sources:\n  items: { kind: numbered, count: 10, batch: 10 }\n" +
          "pipeline:\n  - publish: [ { jsonl: { path: items.jsonl } } ]\n";
        const registry = workerRegistry();
        const flow = await loadFlow(await writeFlow(dir, yaml), registry);
        await assert.rejects(
          runFlow(flow, { registry, deadLetters: new MemoryDeadLetters(), log: memoryLogger() }),
          (e: Error) => e instanceof FlowStartError && /READONLY/.test(e.message),
        );
      } finally {
        admin.disconnect();
        await replica.stop();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "a Redis full at start (OOM, maxmemory with noeviction) is waited out, as it is later",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-start-oom-" });
      const admin = client(server);
      try {
        // Every write refused: more memory in use than the limit allows.
        await admin.call("CONFIG", "SET", "maxmemory-policy", "noeviction");
        await admin.call("CONFIG", "SET", "maxmemory", "1");
        const yaml = `name: startoom\ndurability: redis\nredis: ${server.url}\noutput: ${dir}\n` +
          "sources:\n  items: { kind: numbered, count: 50, batch: 50 }\n" +
          "pipeline:\n  - publish: [ { jsonl: { path: items.jsonl } } ]\n";
        const registry = workerRegistry();
        const flow = await loadFlow(await writeFlow(dir, yaml), registry);
        const lines: string[] = [];
        const log = createLogger("json", {
          out: (_, line) => void lines.push(JSON.parse(line).msg),
        });
        let ended = false;
        // Settled here at once, so a start that fails is this test's failure, not an uncaught one.
        const run = runFlow(flow, { registry, deadLetters: new MemoryDeadLetters(), log })
          .then((report) => report, (error: Error) => error)
          .finally(() => ended = true);
        // It ended the start with exit 2, as bad input: "redis: OOM command not allowed …".
        while (!ended && !lines.some((l) => /refused by Redis for now/.test(l))) {
          await new Promise((r) => setTimeout(r, 50));
        }
        await admin.call("CONFIG", "SET", "maxmemory", "0");
        const report = await run;
        if (report instanceof Error) throw report;
        assert.equal(report.published, 50, lines.join("\n"));
        assert.ok(
          lines.some((l) => /^startoom: .* refused by Redis for now/.test(l)),
          lines.join("\n"),
        );
        // Full, but evicting nothing: no warning of eviction.
        assert.ok(!lines.some((l) => /evicts keys/.test(l)), lines.join("\n"));
      } finally {
        admin.disconnect();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "a Redis that would evict keys when full is warned of at start, naming its policy",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-start-evict-" });
      const admin = client(server);
      try {
        // A managed service's default: the keys with a TTL (the Deduper's) go first.
        await admin.call("CONFIG", "SET", "maxmemory", "1gb");
        await admin.call("CONFIG", "SET", "maxmemory-policy", "volatile-lru");
        const yaml = `name: evicting\ndurability: redis\nredis: ${server.url}\noutput: ${dir}\n` +
          "sources:\n  items: { kind: numbered, count: 10, batch: 10 }\n" +
          "pipeline:\n  - publish: [ { jsonl: { path: items.jsonl } } ]\n";
        const registry = workerRegistry();
        const flow = await loadFlow(await writeFlow(dir, yaml), registry);
        const log = memoryLogger();
        const report = await runFlow(flow, { registry, deadLetters: new MemoryDeadLetters(), log });
        assert.equal(report.published, 10);
        const warned = log.lines.filter((l) => /evicts keys/.test(l));
        assert.equal(warned.length, 1, log.lines.join("\n"));
        assert.match(
          warned[0],
          /^warn evicting: Redis evicts keys when its memory is full \(maxmemory-policy volatile-lru\): .* set maxmemory-policy noeviction/,
        );
      } finally {
        admin.disconnect();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
