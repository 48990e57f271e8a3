/**
 * A durable step whose window ends a batch in the middle of an entry (a
 * weight-limited window: embed's maxTokens) records how far into the entry
 * its commits got, and keeps the rest in its window, in read order. When
 * its process dies holding that rest, the process that claims the entry
 * resumes after what was committed: nothing is done twice, nothing lost.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { z } from "zod";
import { generateItems } from "../../../adapters/sources/generator_source.ts";
import { defineFlow } from "../../../config/define_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { memoryLogger } from "../../../engine/log.ts";
import type { Registry, StageSpec } from "../../../engine/registry.ts";
import { startFlow } from "../../../engine/run_flow.ts";
import { startFakeOpenAI } from "../../adapters/embeddings/_fake_openai.ts";
import { RedisProxy } from "../../_redis_proxy.ts";
import { conformanceRegistry, Probe } from "../_conformance_registry.ts";
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

/**
 * Embed with a window of about four titles, so a batch seldom ends at the
 * end of the source's entry, then publish to JSONL. With a long `maxWait`,
 * the batch after the last one that filled waits in the window.
 */
function cutFlow(redis: string, api: string, dir: string, maxWait: string): string {
  return `
name: cut
durability: redis
redis: ${redis}
output: ${dir}
sources:
  news: { kind: generator, count: ${SOURCE.count}, seed: ${SOURCE.seed}, duplicates: 0, nearDuplicates: 0, invalid: 0 }
pipeline:
  - embed:
      provider: openai
      model: test-embed
      apiKey: k
      baseUrl: ${api}
      dimensions: 8
      cache: false
      input: "{title}"
      batch: { size: 1000, maxTokens: 60, maxWait: ${maxWait} }
  - publish:
      sinks: [ { jsonl: { path: items.jsonl } } ]
      batch: { size: 100, maxWait: 100ms }
durable: { claimAfter: 1s }
`;
}

/** A fake embeddings API, a temporary directory and Redis for `fn`; workers it starts are killed after. */
async function withCutFlow(
  fn: (
    ctx: { api: ReturnType<typeof startFakeOpenAI>; dir: string; workers: FlowWorker[] },
    server: { port: number; url: string },
  ) => Promise<void>,
): Promise<void> {
  const api = startFakeOpenAI();
  const dir = await Deno.makeTempDir({ prefix: "millrace-cut-entry-" });
  const workers: FlowWorker[] = [];
  try {
    await withRedis((server) => fn({ api, dir, workers }, server));
  } finally {
    await killAll(workers);
    await api.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A test stage that passes its items on; with `holdAt`, it holds that
 * batch (counted from 1) until `release` is called, `holding` once it does.
 */
function passOn(
  kind: string,
  summary: string,
  opts: { window?: { size: number; maxWeight: number; maxWait: number }; holdAt?: number } = {},
) {
  const holding = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  let batches = 0;
  const { window } = opts;
  const spec: StageSpec<Record<string, never>> = {
    kind,
    summary,
    schema: z.strictObject({}),
    ...(window ? { window: () => ({ ...window, weigh: () => 1 }) } : {}),
    create: () => ({
      async handle(batch, out) {
        if (++batches === opts.holdAt) {
          holding.resolve();
          await release.promise;
        }
        for (const item of batch) out.emit(item);
      },
    }),
  };
  return { spec, holding: holding.promise, release: () => release.resolve() };
}

/** A durable flow over `server` in this process: a feed source of `count` items in one entry. */
async function startCutFlow(
  name: string,
  server: { url: string },
  dir: string,
  registry: Registry,
  source: { count: number; hold?: boolean },
  pipeline: Record<string, unknown>[],
) {
  const flow = defineFlow({
    name,
    output: dir,
    durability: "redis",
    redis: server.url,
    sources: { n: { kind: "feed", batch: source.count, ...source } },
    pipeline,
    durable: { claimAfter: "1s" },
  }, registry);
  return await startFlow(flow, {
    registry,
    deadLetters: new MemoryDeadLetters(),
    log: memoryLogger(),
    backoffBase: 20,
  });
}

redisTest(
  "a process killed holding the rest of a cut entry: the next resumes after what was committed",
  async () => {
    const titles = new Set(generateItems(SOURCE).items.map((i) => String(i.title)));
    await withCutFlow(async ({ api, dir, workers }, server) => {
      const flow = await writeFlow(dir, cutFlow(server.url, api.url, dir, "10m"));
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
  },
);

redisTest(
  "a commit that recorded progress, sent again after its reply was lost, appends nothing twice",
  async () => {
    await withCutFlow(async ({ api, dir, workers }, server) => {
      const proxy = new RedisProxy(server.port);
      try {
        // The first commit that records how far into an entry it got runs,
        // and its reply is lost: the step sends it again. (It is the first
        // commit script call on this Redis, so it runs as EVAL, after an
        // EVALSHA answered NOSCRIPT: an EVALSHA's lost reply would be that.)
        proxy.loseReply((chunk) => /\$4\r\neval\r\n/i.test(chunk) && /:upTo\r\n/.test(chunk));
        const flow = await writeFlow(dir, cutFlow(proxy.url, api.url, dir, "200ms"));
        const worker = new FlowWorker(flow);
        workers.push(worker);
        const result = await worker.result;
        assert.equal(result.code, 0, result.stderr);
        assert.equal(proxy.repliesLost, 1);
        const publish = result.report!.stages.find((s) => s.id === "publish")!;
        // Before: 44 (the JSONL sink then skips ids it wrote: only counts show it).
        assert.equal(publish.received, SOURCE.count, "each item reaches publish once");
        assert.equal((await readJsonl(join(dir, "items.jsonl"))).length, SOURCE.count);
      } finally {
        await proxy.close();
      }
    });
  },
);

redisTest(
  "Redis losing the commit of a cut entry's first part: the entry runs again from what it kept",
  async () => {
    await withRedis(async (server) => {
      const probe = new Probe();
      const cut = passOn(
        "cutter",
        "a window of three items' weight: ends a batch inside an entry of six",
        {
          window: { size: 1000, maxWeight: 3, maxWait: 30_000 },
          holdAt: 2,
        },
      );
      const hold = passOn("hold", "holds its first batch until released", { holdAt: 1 });
      const registry = conformanceRegistry(probe).stage(cut.spec).stage(hold.spec);
      const dir = await Deno.makeTempDir({ prefix: "millrace-cut-entry-" });
      const admin = client(server);
      try {
        const running = await startCutFlow("lostcut", server, dir, registry, { count: 6 }, [
          { cutter: {} },
          { hold: {} },
          { record: {} },
        ]);
        const keys = flowKeys("lostcut");
        const cutKey = keys.input("cutter", "normal");
        const holdKey = keys.input("hold", "normal");
        await cut.holding;
        await hold.holding;
        const progress = (await admin.hkeys(keys.tries)).filter((f) => f.endsWith(":upTo"));
        assert.equal(progress.length, 1, "the first part's commit recorded progress");
        const [[entry, consumer]] = await admin.xpending(cutKey, "cutter", "-", "+", 10) as [
          string,
          string,
        ][];
        // What appendfsync everysec loses in a crash: the entry's delivery,
        // and the first part's commit (its output, read by hold meanwhile,
        // and the progress record); every connection drops.
        const [[out]] = await admin.xpending(holdKey, "hold", "-", "+", 10) as [string][];
        await admin.xack(holdKey, "hold", out);
        await admin.xdel(holdKey, out);
        await admin.hdel(keys.tries, progress[0]);
        await admin.xack(cutKey, "cutter", entry);
        await admin.call("XGROUP", "SETID", cutKey, "cutter", "0");
        await admin.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
        // The step reads the entry again, pending to it again, and skips it: it holds it.
        await waitFor("the entry pending to the step again", async () => {
          const p = await admin.xpending(cutKey, "cutter", "-", "+", 10) as [string, string][];
          return p.length === 1 && p[0][1] === consumer;
        });
        cut.release();
        hold.release();
        await running.done;
        // Before: n3, n4 and n5 only, the entry acknowledged.
        assert.deepEqual(
          [...new Set(probe.handled.flat())].sort(),
          ["n0", "n1", "n2", "n3", "n4", "n5"],
          "every item reaches the end",
        );
      } finally {
        admin.disconnect();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "a hard stop while a cut entry's rest waits in the window counts only that rest in flight",
  async () => {
    await withRedis(async (server) => {
      const probe = new Probe();
      const cutter = passOn("cutter", "a window of four items' weight, a minute's maxWait", {
        window: { size: 1000, maxWeight: 4, maxWait: 60_000 },
      });
      const registry = conformanceRegistry(probe).stage(cutter.spec);
      const dir = await Deno.makeTempDir({ prefix: "millrace-cut-entry-" });
      try {
        // One entry of 30: seven batches of four go through, two items wait.
        const running = await startCutFlow("inflight", server, dir, registry, {
          count: 30,
          hold: true,
        }, [{ cutter: {} }, { record: {} }]);
        await waitFor("28 items through", () => probe.handled.flat().length >= 28);
        running.kill();
        const report = await running.done;
        // Before: 30, the whole entry, though 28 of its items were committed.
        assert.equal(report.inFlight, 2);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
