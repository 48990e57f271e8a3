import assert from "node:assert/strict";
import { join } from "node:path";
import { generateItems } from "../../../adapters/sources/generator_source.ts";
import { itemId } from "../../../engine/item.ts";
import {
  client,
  countLines,
  deadLetters,
  edges,
  flowKeys,
  FlowWorker,
  readJsonl,
  type RedisServer,
  redisTest,
  repeats,
  startRedis,
  tail,
  waitFor,
  writeFlow,
} from "./_harness.ts";

const GENERATOR = { count: 20_000, seed: 11, duplicates: 0, nearDuplicates: 0, invalid: 0.02 };

function restartFlow(url: string, dir: string): string {
  const g = GENERATOR;
  return `
name: restart
durability: redis
redis: ${url}
output: ${dir}
sources:
  news:
    kind: generator
    count: ${g.count}
    seed: ${g.seed}
    duplicates: ${g.duplicates}
    nearDuplicates: ${g.nearDuplicates}
    invalid: ${g.invalid}
pipeline:
  - validate: { require: [title, url], title: { min: 5 }, spam: [casino] }
  - dedupe: { key: [url] }
  - enrich: { steps: [canonical-url, domain, word-count] }
  - slow: { ms: 20 }
  - publish:
      sinks: [ { jsonl: { path: items.jsonl } } ]
      batch: { size: 200, maxWait: 100ms }
durable: { claimAfter: 1s }
`;
}

redisTest(
  "a worker pauses while Redis restarts, resumes by itself and publishes every item once",
  async () => {
    const { items, labels } = generateItems(GENERATOR);
    const valid = new Set(items.filter((_, i) => labels[i] !== "invalid").map(itemId));
    const invalid = new Set(items.filter((_, i) => labels[i] === "invalid").map(itemId));

    const dir = await Deno.makeTempDir({ prefix: "millrace-restart-" });
    const data = join(dir, "redis");
    await Deno.mkdir(data);
    const out = join(dir, "items.jsonl");
    let server: RedisServer = await startRedis({ dir: data });
    let worker: FlowWorker | undefined;
    try {
      const flow = await writeFlow(dir, restartFlow(server.url, dir));
      worker = new FlowWorker(flow);
      await waitFor("some items to be published", async () => (await countLines(out)) >= 3000);

      // A crash of Redis (SIGKILL: every acknowledged write is on disk with
      // appendfsync always), then the same server back on the same port.
      await server.stop();
      const atCrash = await countLines(out);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(worker.exited, false, "the worker waits for Redis instead of exiting");
      server = await startRedis({ port: server.port, dir: data });

      const result = await worker.finished(120_000);
      assert.match(result.stderr, /pausing until Redis answers/, "the worker noticed the outage");
      assert.match(result.stderr, /Redis is back, resuming/, "and resumed by itself");
      assert.equal(result.code, 0, tail(result.stderr));
      assert.ok(atCrash < valid.size, "Redis went away mid-run");

      const ids = (await readJsonl(out)).map((l) => l.id as string);
      assert.deepEqual(repeats(ids), new Map(), "an item was written twice");
      assert.deepEqual(new Set(ids), valid, "every valid item, and nothing else");

      const redis = client(server);
      try {
        const keys = flowKeys("restart");
        for (const e of await edges(redis, keys)) {
          assert.equal(e.pending + e.lag, 0, `${e.key}: entries left behind`);
        }
        const letters = await deadLetters(redis, keys);
        assert.deepEqual(new Set(letters.map((l) => l.item.id)), invalid);
      } finally {
        await redis.quit();
      }
    } finally {
      worker?.kill("SIGKILL");
      await worker?.result;
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
