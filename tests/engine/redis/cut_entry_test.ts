/**
 * A durable step whose window ends a batch in the middle of an entry (a
 * weight-limited window: embed's maxTokens) records how far into the entry
 * its commits got, and keeps the rest in its window, in read order. When
 * its process dies holding that rest, the process that claims the entry
 * resumes after what was committed: nothing is done twice, nothing lost.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { generateItems } from "../../../adapters/sources/generator_source.ts";
import { startFakeOpenAI } from "../../adapters/embeddings/_fake_openai.ts";
import {
  client,
  deadLetters,
  flowKeys,
  FlowWorker,
  killAll,
  readJsonl,
  redisTest,
  waitFor,
  withRedis,
  writeFlow,
} from "./_harness.ts";

const SOURCE = { count: 40, seed: 3, duplicates: 0, nearDuplicates: 0, invalid: 0 };

redisTest(
  "a process killed holding the rest of a cut entry: the next resumes after what was committed",
  async () => {
    const titles = new Set(generateItems(SOURCE).items.map((i) => String(i.title)));
    const api = startFakeOpenAI();
    const dir = await Deno.makeTempDir({ prefix: "millrace-cut-entry-" });
    const workers: FlowWorker[] = [];
    try {
      await withRedis(async (server) => {
        const flow = await writeFlow(
          dir,
          `
name: cut
durability: redis
redis: redis://127.0.0.1:${server.port}
output: ${dir}
sources:
  news: { kind: generator, count: ${SOURCE.count}, seed: ${SOURCE.seed}, duplicates: 0, nearDuplicates: 0, invalid: 0 }
pipeline:
  - embed:
      provider: openai
      model: test-embed
      apiKey: k
      baseUrl: ${api.url}
      dimensions: 8
      cache: false
      input: "{title}"
      # About four titles a batch; the batch after the last one that filled
      # waits in the window for maxWait, which this test never reaches.
      batch: { size: 1000, maxTokens: 60, maxWait: 10m }
  - publish:
      sinks: [ { jsonl: { path: items.jsonl } } ]
      batch: { size: 100, maxWait: 100ms }
durable: { claimAfter: 1s }
`,
        );
        /** Our titles the API was asked to embed, in the order asked. */
        const embedded = () =>
          api.hits.map((h) => h.input).filter((c) => c.every((t) => titles.has(t))).flat();
        const first = new FlowWorker(flow);
        workers.push(first);
        // Every full batch embedded and published; the last few items wait.
        let seen = -1;
        await waitFor("the first process to hold only the window's rest", async () => {
          const now = embedded().length;
          const quiet = now === seen && now >= 20;
          seen = now;
          if (!quiet) await new Promise((r) => setTimeout(r, 500));
          return quiet;
        }, 30_000);
        const before = embedded().length;
        assert.ok(before < SOURCE.count, "the rest of the entry is still in the window");
        first.kill("SIGKILL");
        await first.result;
        const second = new FlowWorker(flow);
        workers.push(second);
        const result = await second.result;
        assert.equal(result.code, 0, result.stderr);
        const asked = embedded();
        assert.equal(asked.length, SOURCE.count, "each item embedded once: the rest only, resumed");
        assert.deepEqual(new Set(asked), titles);
        const lines = await readJsonl(join(dir, "items.jsonl"));
        assert.equal(lines.length, SOURCE.count);
        const redis = client(server);
        try {
          assert.deepEqual(await deadLetters(redis, flowKeys("cut")), []);
          const progress = (await redis.hkeys(flowKeys("cut").tries)).filter((f) =>
            f.endsWith(":upTo")
          );
          assert.deepEqual(progress, [], "the record of progress goes with the entry");
        } finally {
          redis.disconnect();
        }
      });
    } finally {
      await killAll(workers);
      await api.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
