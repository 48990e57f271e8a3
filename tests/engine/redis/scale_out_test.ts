import assert from "node:assert/strict";
import { join } from "node:path";
import { itemId } from "../../../engine/item.ts";
import {
  FlowWorker,
  readJsonl,
  redisTest,
  repeats,
  tail,
  withRedis,
  writeFlow,
} from "./_harness.ts";
import { numberedItem } from "./_worker.ts";

const COUNT = 4000;

function shareFlow(url: string, dir: string): string {
  // Entries of 20 items and 20 ms per entry in the slow stage: about 4 s of
  // work for one process, in 200 pieces two processes can share.
  return `
name: share
durability: redis
redis: ${url}
output: ${dir}
sources:
  items: { kind: numbered, count: ${COUNT}, batch: 20 }
pipeline:
  - validate: { require: [title, url] }
  - slow: { ms: 20 }
  - publish:
      sinks: [ { jsonl: { path: items.jsonl } } ]
      batch: { size: 100, maxWait: 50ms }
durable: { entryItems: 20, claimAfter: 2s }
`;
}

redisTest("two processes on one flow share the work of its expensive stage", async () => {
  await withRedis(async (server) => {
    const dir = await Deno.makeTempDir({ prefix: "millrace-share-" });
    const flow = await writeFlow(dir, shareFlow(server.url, dir));
    const workers = [new FlowWorker(flow), new FlowWorker(flow)];
    try {
      const results = await Promise.all(workers.map((w) => w.finished(60_000)));
      for (const r of results) assert.equal(r.code, 0, tail(r.stderr));
      const slow = results.map((r) => r.report!.stages.find((s) => s.id === "slow")!.received);
      assert.equal(slow[0] + slow[1], COUNT, `each item through the slow stage once: ${slow}`);
      for (const n of slow) {
        assert.ok(n <= 0.7 * COUNT, `one process did ${n} of ${COUNT} items: ${slow}`);
      }

      const ids = (await readJsonl(join(dir, "items.jsonl"))).map((l) => l.id as string);
      assert.deepEqual(repeats(ids), new Map());
      const expected = Array.from({ length: COUNT }, (_, i) => itemId(numberedItem(i)));
      assert.deepEqual(new Set(ids), new Set(expected));
      const published = results.reduce((n, r) => n + r.report!.published, 0);
      assert.equal(published, COUNT, "what each process published adds up to every item");
    } finally {
      for (const w of workers) w.kill("SIGKILL");
      await Promise.allSettled(workers.map((w) => w.result));
      await Deno.remove(dir, { recursive: true });
    }
  });
});
