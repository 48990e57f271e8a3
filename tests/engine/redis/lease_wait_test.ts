/**
 * A source whose lease another process holds, as a crashed one leaves it:
 * the flow waits the lease out, and says whose it is and when it runs out,
 * instead of only that it waits for the source to mark itself done.
 */
import assert from "node:assert/strict";
import { builtinRegistry } from "../../../builtins.ts";
import { parseFlow } from "../../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { runFlow } from "../../../engine/run_flow.ts";
import { client, flowKeys, redisTest, withRedis } from "./_harness.ts";

redisTest(
  "a flow waiting out another process's lease on its source names that process and when the lease runs out",
  async () => {
    await withRedis(async (server) => {
      const registry = builtinRegistry();
      const dir = await Deno.makeTempDir({ prefix: "millrace-lease-wait-" });
      const flow = parseFlow(
        `
name: leased
durability: redis
redis: ${server.url}
output: ${dir}
sources:
  news: { kind: generator, count: 30, seed: 3 }
pipeline:
  - validate: { require: [title, url] }
  - publish: [ { jsonl: { path: items.jsonl } } ]
`,
        "leased.yaml",
        registry,
        {},
      );
      const redis = client(server);
      try {
        // A process that crashed while reading the source: its lease runs for another 12 s.
        const keys = flowKeys(flow.name, flow.durable.prefix);
        await redis.set(keys.lease("news"), "otherhost:4242:abcd1234#1", "PX", 12_000);
        const log = memoryLogger();
        const report = await runFlow(flow, { registry, deadLetters: new MemoryDeadLetters(), log });
        const waiting = log.lines.filter((l) => l.includes("waiting for source news"));
        assert.equal(waiting.length, 1, log.lines.join("\n"));
        assert.match(
          waiting[0],
          /source news \(read by process otherhost:4242; if it ended without letting go, this one takes the source over when its lease runs out, in \d+s\) to mark itself done/,
        );
        assert.equal(report.sources[0].emitted, 30, "then this process read the source");
      } finally {
        redis.disconnect();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
