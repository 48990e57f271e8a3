/**
 * A durable source stops reading once the first step's backlog passes
 * maxBacklog items, counted in the entries it writes: before a windowed
 * first stage those hold fewer than entryItems items (entrySize).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { builtinRegistry } from "../../../builtins.ts";
import { parseFlow } from "../../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { memoryLogger } from "../../../engine/log.ts";
import type { StageSpec } from "../../../engine/registry.ts";
import { startFlow } from "../../../engine/run_flow.ts";
import { client, flowKeys, redisTest, waitFor, withRedis } from "./_harness.ts";
import { hangingStage } from "../../_hanging_stage.ts";

/** A stage with a window of 256 whose handle never returns: its input only fills. */
const windowedHang: StageSpec<Record<string, never>> = {
  kind: "hangs-windowed",
  summary: "never returns; takes batches of 256",
  schema: z.strictObject({}),
  window: () => ({ size: 256, maxWait: 50 }),
  create: () => ({ handle: () => new Promise<void>(() => {}) }),
};

redisTest(
  "a source fills the first step's backlog up to maxBacklog items, not short of it",
  async () => {
    await withRedis(async (server) => {
      const registry = builtinRegistry().stage(windowedHang);
      const dir = await Deno.makeTempDir({ prefix: "millrace-backlog-" });
      const flow = parseFlow(
        `
name: backlog
durability: redis
redis: ${server.url}
output: ${dir}
sources:
  news: { kind: generator, count: 5000, seed: 3 }
pipeline:
  - hangs-windowed: {}
durable: { maxBacklog: 1100 }
`,
        "backlog.yaml",
        registry,
        {},
      );
      const redis = client(server);
      const key = flowKeys(flow.name, flow.durable.prefix).input("hangs-windowed", "normal");
      // Entries sized to fill the window whole: 3 of 86 items make 258 >= 256.
      const perEntry = Math.ceil(256 / Math.ceil(256 / flow.durable.entryItems));
      try {
        const running = await startFlow(flow, {
          registry,
          deadLetters: new MemoryDeadLetters(),
          log: memoryLogger(),
        });
        try {
          assert.equal(perEntry, 86);
          // Before: it paused once entries x 100 (entryItems) passed 1,100 items: at 12 entries
          // of 86 (1,032 items, short of maxBacklog), the generator sending 6 entries at a time.
          await waitFor(
            "the first step's backlog to pass maxBacklog",
            async () => (await redis.xlen(key)) * perEntry > 1100,
            20_000,
          );
          // Then the source pauses: a send or so past it, not the whole source.
          await new Promise((r) => setTimeout(r, 500));
          const entries = await redis.xlen(key);
          assert.ok(entries * perEntry <= 1100 + 600, `${entries} entries: not far past it`);
        } finally {
          running.kill();
          await running.done.catch(() => {});
        }
      } finally {
        redis.disconnect();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "a source's one batch larger than maxBacklog goes to Redis in parts, each waiting for room",
  async () => {
    // A json file is one batch: 1M items went as one script that held Redis for 5 s, all of
    // them on the edge at once, past maxBacklog.
    await withRedis(async (server) => {
      const registry = builtinRegistry().stage(hangingStage);
      const dir = await Deno.makeTempDir({ prefix: "millrace-backlog-" });
      const flow = parseFlow(
        `
name: onebatch
durability: redis
redis: ${server.url}
output: ${dir}
sources:
  news: { kind: generator, count: 20000, batch: 20000, seed: 3, invalid: 0, duplicates: 0, nearDuplicates: 0 }
pipeline:
  - hangs: {}
durable: { maxBacklog: 1000, entryItems: 10 }
`,
        "onebatch.yaml",
        registry,
        {},
      );
      const redis = client(server);
      const key = flowKeys(flow.name, flow.durable.prefix).input("hangs", "normal");
      try {
        const running = await startFlow(flow, {
          registry,
          deadLetters: new MemoryDeadLetters(),
          log: memoryLogger(),
        });
        try {
          await waitFor("entries to reach the stage", async () => (await redis.xlen(key)) > 0);
          await new Promise((r) => setTimeout(r, 1000));
          const items = (await redis.xlen(key)) * 10;
          assert.ok(items < 5000, `${items} items on the edge: not the whole batch of 20,000`);
          assert.equal(
            await redis.get(flowKeys(flow.name, flow.durable.prefix).done("news")),
            null,
          );
        } finally {
          running.kill();
          await running.done.catch(() => {});
        }
      } finally {
        redis.disconnect();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
