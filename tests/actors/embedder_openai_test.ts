/**
 * The Embedder with provider openai, in whole flows against a local server
 * that speaks POST /v1/embeddings (tests/adapters/embeddings/_fake_openai.ts): what the
 * calls cost, what the cache saves, what a bad input or a bad start does.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { z } from "zod";
import { builtinRegistry } from "../../builtins.ts";
import { PROBE_TEXT } from "../../actors/_embed_openai.ts";
import { embedStage } from "../../actors/embedder.ts";
import { defineFlow } from "../../config/define_flow.ts";
import { MemoryDeadLetters } from "../../engine/dead_letters.ts";
import { memoryLogger } from "../../engine/log.ts";
import type { BuildEnv, Registry, SourceSpec } from "../../engine/registry.ts";
import { FlowStartError, runFlow } from "../../engine/run_flow.ts";
import {
  apiError,
  type FakeOpenAI,
  fakeVector,
  withFakeOpenAI,
} from "../adapters/embeddings/_fake_openai.ts";
import { redisTest, withRedis } from "../_redis_server.ts";
import { runTestFlow } from "../../testing.ts";
import { fakeClock } from "../adapters/http/_fake_clock.ts";

const KEY = "sk-flow-test-5f3a9c";
const MODEL = "text-embedding-3-small";

/** `count` items, `title i` / `text of item i`, in source batches of 100; `bad` ones say BAD. */
const listSource: SourceSpec<{ count: number; bad: number[]; offset: number }> = {
  kind: "list",
  summary: "numbered test items",
  schema: z.strictObject({
    count: z.int(),
    bad: z.array(z.int()).default([]),
    offset: z.int().default(0),
  }),
  create: (c) => ({
    async *read() {
      for (let i = 0; i < c.count; i += 100) {
        yield Array.from({ length: Math.min(100, c.count - i) }, (_, k) => {
          const n = c.offset + i + k;
          const text = c.bad.includes(n) ? `BAD item ${n}` : `text of item ${n}`;
          return { title: `title ${n}`, url: `https://example.com/${n}`, text };
        });
      }
    },
  }),
};

function registry(): Registry {
  return builtinRegistry().source(listSource);
}

interface RunOptions {
  dir: string;
  count?: number;
  bad?: number[];
  embed?: Record<string, unknown>;
  flow?: Record<string, unknown>;
  source?: string;
  /** JSONL output; the sink writes an id once per file. Default items.jsonl. */
  path?: string;
  /** The embed stage's clock (its rate limit and retry waits); default the real one. */
  clock?: BuildEnv["clock"];
}

async function runEmbedFlow(server: FakeOpenAI, opts: RunOptions) {
  const reg = registry();
  const clock = opts.clock;
  if (clock) {
    reg.stages.set("embed", {
      ...embedStage,
      create: (c, env) => embedStage.create(c, { ...env, clock }),
    });
  }
  const flow = defineFlow({
    name: "emb",
    output: opts.dir,
    sources: {
      [opts.source ?? "docs"]: { kind: "list", count: opts.count ?? 1000, bad: opts.bad ?? [] },
    },
    pipeline: [
      {
        embed: {
          provider: "openai",
          model: MODEL,
          baseUrl: server.url,
          apiKey: KEY,
          dimensions: 8,
          batch: { size: 128, maxWait: "10s" },
          ...opts.embed,
        },
      },
      { publish: [{ jsonl: { path: opts.path ?? "items.jsonl" } }] },
    ],
    ...opts.flow,
  }, reg);
  const deadLetters = new MemoryDeadLetters();
  const log = memoryLogger();
  const report = await runFlow(flow, { registry: reg, deadLetters, log, backoffBase: 1 });
  return { report, deadLetters, log };
}

/** Hits that carried items (the start-up dimension check is one input of its own). */
const batchHits = (server: FakeOpenAI) =>
  server.hits.filter((h) => !(h.input.length === 1 && h.input[0] === PROBE_TEXT));

async function published(dir: string, path = "items.jsonl") {
  const text = await Deno.readTextFile(join(dir, path));
  return text.split("\n").filter(Boolean).map((l) =>
    JSON.parse(l) as {
      id: string;
      vector: number[];
      payload: { title: string; text: string };
    }
  );
}

Deno.test("a full window is one call: 1000 items in windows of 128 cost ceil(1000 / 128) = 8 calls", async () => {
  await withFakeOpenAI({}, async (server) => {
    const dir = await Deno.makeTempDir();
    const { report, deadLetters } = await runEmbedFlow(server, { dir });
    assert.equal(report.published, 1000);
    assert.equal(deadLetters.entries.length, 0);
    const hits = batchHits(server);
    assert.equal(hits.length, Math.ceil(1000 / 128));
    assert.deepEqual(hits.map((h) => h.input.length).sort((a, b) => b - a), [
      ...Array(7).fill(128),
      1000 - 7 * 128,
    ]);
    assert.equal(server.hits.length - hits.length, 1, "plus one dimension check at start");
    assert.ok(server.hits.every((h) => h.dimensions === 8 && h.encodingFormat === "float"));
    // What the calls cost is counted in the report, the dimension check included.
    const tokens = server.hits.flatMap((h) => h.input).reduce(
      (n, t) => n + Math.ceil(t.length / 4),
      0,
    );
    assert.deepEqual(report.stages.find((s) => s.id === "embed")!.usage, {
      requests: server.hits.length,
      tokens,
    });

    const items = await published(dir);
    assert.equal(items.length, 1000);
    const one = items.find((i) => i.payload.title === "title 7")!;
    assert.deepEqual(one.vector, fakeVector(MODEL, 8, "title 7\ntext of item 7").map(Math.fround));
  });
});

Deno.test("a second run over the same items costs no call, and a model change misses the cache", async () => {
  await withFakeOpenAI({}, async (server) => {
    const dir = await Deno.makeTempDir();
    await runEmbedFlow(server, { dir, count: 300 });
    const first = server.hits.length;
    assert.equal(first, 1 + 3);

    const again = await runEmbedFlow(server, { dir, count: 300 });
    assert.equal(again.report.published, 300);
    assert.equal(server.hits.length, first, "no call at all, the dimension check included");
    assert.match(again.log.lines.join("\n"), /"requests":0,.*"cacheHits":301,"cacheMisses":0/);

    const embed = { model: "text-embedding-3-large" };
    await runEmbedFlow(server, { dir, count: 300, embed, path: "large.jsonl" });
    const large = server.hits.slice(first);
    assert.equal(large.length, 1 + 3, "a new model pays for every item again");
    assert.ok(large.every((h) => h.model === "text-embedding-3-large"));
    const items = await published(dir, "large.jsonl");
    const one = items.find((i) => i.payload.title === "title 3")!;
    assert.deepEqual(
      one.vector,
      fakeVector("text-embedding-3-large", 8, "title 3\ntext of item 3").map(Math.fround),
      "the new model's vector, not the cached one of the old",
    );

    await runEmbedFlow(server, { dir, count: 300, embed: { dimensions: 4 } });
    assert.equal(server.hits.length, first + 4 + 4, "so does a new dimension");
  });
});

Deno.test("duplicates within a run are paid for once", async () => {
  await withFakeOpenAI({}, async (server) => {
    const dir = await Deno.makeTempDir();
    // Two sources emitting the same 200 items: 400 items, 200 distinct texts.
    const reg = registry();
    const flow = defineFlow({
      name: "dups",
      output: dir,
      sources: { a: { kind: "list", count: 200 }, b: { kind: "list", count: 200 } },
      pipeline: [{
        embed: {
          provider: "openai",
          model: MODEL,
          baseUrl: server.url,
          apiKey: KEY,
          dimensions: 8,
          batch: { size: 100, maxWait: "10s" },
        },
      }],
    }, reg);
    const report = await runFlow(flow, {
      registry: reg,
      deadLetters: new MemoryDeadLetters(),
      log: memoryLogger(),
    });
    assert.equal(report.published, 400);
    const sent = batchHits(server).flatMap((h) => h.input);
    assert.equal(sent.length, 200);
    assert.equal(new Set(sent).size, 200);
  });
});

redisTest(
  "in a durable flow the cache is in Redis: a second pass over the same items costs no call",
  async () => {
    await withRedis(async (redisServer) => {
      await withFakeOpenAI({}, async (server) => {
        const dir = await Deno.makeTempDir();
        const flow = { durability: "redis", redis: redisServer.url };
        // A durable window flushes whole stream entries (100 items here) and the last
        // partial one after maxWait.
        const embed = { batch: { size: 128, maxWait: "100ms" } };
        const first = await runEmbedFlow(server, { dir, count: 300, flow, embed });
        assert.equal(first.report.published, 300);
        const paid = server.hits.length;
        assert.ok(paid >= 1 + 2 && paid <= 1 + 3, `${paid} calls`);
        // A one-shot source is done for good in a durable flow: the same items come again
        // from a source of another name.
        const second = await runEmbedFlow(server, {
          dir,
          count: 300,
          flow,
          embed,
          source: "again",
        });
        assert.equal(second.report.published, 300);
        assert.equal(server.hits.length, paid, "every vector came from Redis");
        const local = await Deno.stat(join(dir, "vectors")).catch(() => undefined);
        assert.equal(local, undefined, "no local cache file in a durable flow");
      });
    });
  },
);

Deno.test("a 400 for one bad input isolates that item in log2(n) rounds; the rest are embedded", async () => {
  await withFakeOpenAI({
    intercept: (hit) => {
      const bad = hit.input.findIndex((t) => t.includes("BAD"));
      return bad >= 0 ? apiError(400, `input[${bad}] is not valid: refused`) : undefined;
    },
  }, async (server) => {
    const dir = await Deno.makeTempDir();
    const { report, deadLetters } = await runEmbedFlow(server, {
      dir,
      count: 128,
      bad: [77],
      embed: { cache: false },
    });
    assert.equal(report.published, 127);
    assert.equal(deadLetters.entries.length, 1);
    const [letter] = deadLetters.entries;
    assert.equal((letter.item.payload as { title: string }).title, "title 77");
    assert.equal(letter.stage, "embed");
    assert.match(letter.reason, /failed: .*400 input\[0\] is not valid: refused/);

    const embed = report.stages.find((s) => s.id === "embed")!;
    assert.equal(embed.retries, 0, "a 400 is not retried");
    // 128 -> 64 -> ... -> 1: one failed call per level and one good half per level.
    const calls = batchHits(server).length;
    assert.equal(calls, 1 + 2 * Math.log2(128));
    const items = await published(dir);
    assert.equal(items.length, 127);
    assert.ok(!items.some((i) => i.payload.title === "title 77"));
  });
});

Deno.test("an API that answers 503 for a while is waited out: no item goes to dead letters", async () => {
  // 503 for the first 12 batch calls: past the client's own retries (1) and
  // the runner's (3) for the batch; before, the batch was then split down
  // to single items, which went to dead letters while the API was away.
  let down = 12;
  await withFakeOpenAI({
    intercept: (hit) =>
      hit.input[0] !== PROBE_TEXT && down-- > 0
        ? apiError(503, "The server is overloaded or not ready yet.")
        : undefined,
  }, async (server) => {
    const dir = await Deno.makeTempDir();
    const { report, deadLetters, log } = await runEmbedFlow(server, {
      dir,
      count: 64,
      embed: { cache: false, maxRetries: 1 },
    });
    assert.equal(deadLetters.entries.length, 0, deadLetters.entries[0]?.reason);
    assert.equal(report.published, 64);
    assert.equal((await published(dir)).length, 64);
    // Every call while the API was down carried the whole batch: it was never split.
    assert.deepEqual(batchHits(server).map((h) => h.input.length), Array(13).fill(64));
    const warned = log.lines.filter((l) => l.includes("met an outage"));
    assert.equal(warned.length, 1, "one warning for the outage of the batch");
    assert.match(warned[0], /503 The server is overloaded/);
  });
});

for (
  const [status, message] of [
    [500, "internal error"],
    [504, "Gateway Timeout"], // a gateway timing out on a large batch
    [429, "Request too large for text-embedding-3-small on tokens per min (TPM)"],
    [429, "You exceeded your current quota, please check your plan and billing details."],
  ] as const
) {
  Deno.test(`a ${status} (${message.slice(0, 24)}…) is no outage: the batch is split, not waited on`, async () => {
    await withFakeOpenAI({
      intercept: (hit) =>
        hit.input.some((t) => t.includes("BAD")) ? apiError(status, message) : undefined,
    }, async (server) => {
      const dir = await Deno.makeTempDir();
      const { report, deadLetters } = await runEmbedFlow(server, {
        dir,
        count: 16,
        bad: [5],
        embed: { cache: false, maxRetries: 0 },
      });
      assert.equal(report.published, 15);
      assert.deepEqual(
        deadLetters.entries.map((l) => (l.item.payload as { title: string }).title),
        ["title 5"],
      );
    });
  });
}

Deno.test("several batches in flight share one rate limit", async () => {
  // Sleeps return at once, time jumping to when the sleeper would wake: each
  // wake is the slot the limiter gave a request, on this clock, not the wall's.
  const fake = fakeClock();
  const wakes: number[] = [];
  const clock = {
    now: fake.now,
    sleep: (ms: number) => (wakes.push(fake.now() + ms), fake.sleep(ms)),
  };
  // Replies take 30 ms, so the five batches are in the client at once.
  await withFakeOpenAI({ latency: 30 }, async (server) => {
    const dir = await Deno.makeTempDir();
    const { report } = await runEmbedFlow(server, {
      dir,
      count: 500,
      embed: { rpm: 600, batch: { size: 100, maxWait: "10s" }, concurrency: 5, cache: false },
      clock,
    });
    assert.equal(report.published, 500);
    assert.equal(server.hits.length, 1 + 5);
    // 600 rpm = one request per 100 ms, whichever batch asks: the start-up probe
    // goes at 0, batch k waits for k * 100 ms. A limiter per batch (or none) would
    // let all five go at once, waiting for nothing.
    assert.deepEqual(wakes, [100, 200, 300, 400, 500]);
  });
});

Deno.test("a dimension the model does not give fails the flow at start, before any item moves", async () => {
  await withFakeOpenAI({ ignoreDimensions: true, nativeDimensions: 8 }, async (server) => {
    const dir = await Deno.makeTempDir();
    const error = await runEmbedFlow(server, { dir, embed: { dimensions: 16 } }).catch((e) => e);
    assert.ok(error instanceof FlowStartError, String(error));
    assert.match(
      error.message,
      /^emb: stage embed: text-embedding-3-small at http:\/\/127\.0\.0\.1:\d+\/v1 returned vectors of 8 dimensions, expected 16/,
    );
    assert.equal(server.hits.length, 1, "only the check was sent");
    const out = await Deno.stat(join(dir, "items.jsonl")).catch(() => undefined);
    assert.ok(!out || out.size === 0, "nothing was published");
  });
});

Deno.test("without dimensions the model's own is learned at start and used for every item", async () => {
  await withFakeOpenAI({ nativeDimensions: 5 }, async (server) => {
    const dir = await Deno.makeTempDir();
    const { report } = await runEmbedFlow(server, {
      dir,
      count: 10,
      embed: { dimensions: undefined },
    });
    assert.equal(report.published, 10);
    assert.ok(server.hits.every((h) => h.dimensions === undefined));
    assert.ok((await published(dir)).every((i) => i.vector.length === 5));
    const files = [...Deno.readDirSync(join(dir, "vectors"))].map((f) => f.name);
    assert.deepEqual(files, [`${MODEL}.5.f32`]);
  });
});

Deno.test("a wrong key fails at start, and the key appears in no log line or message", async () => {
  await withFakeOpenAI({ apiKey: "sk-the-right-key" }, async (server) => {
    const dir = await Deno.makeTempDir();
    const error = await runEmbedFlow(server, { dir }).catch((e) => e);
    assert.ok(error instanceof FlowStartError);
    assert.match(error.message, /401 Incorrect API key provided: \[redacted\]/);
    assert.ok(!error.message.includes(KEY));
  });
  let n = 0;
  await withFakeOpenAI({
    intercept: () =>
      ++n % 3 === 2 ? apiError(429, `slow down, ${KEY}`, { "retry-after-ms": "10" }) : undefined,
  }, async (server) => {
    const dir = await Deno.makeTempDir();
    const { report, log } = await runEmbedFlow(server, { dir, count: 300 });
    assert.equal(report.published, 300);
    assert.ok(log.lines.some((l) => l.includes("429")), "the retries were logged");
    assert.ok(
      log.lines.some((l) => /emb\/embed: .*429.*; retrying/.test(l)),
      "saying whose they are",
    );
    for (const line of log.lines) assert.ok(!line.includes(KEY), line);
  });
});

Deno.test("an empty input goes to dead letters without a call; the API would refuse it", async () => {
  await withFakeOpenAI({}, async (server) => {
    const dir = await Deno.makeTempDir();
    const { report, deadLetters } = await runEmbedFlow(server, {
      dir,
      count: 5,
      embed: { input: "{summary}" },
    });
    assert.equal(report.published, 0);
    assert.equal(deadLetters.entries.length, 5);
    assert.match(deadLetters.entries[0].reason, /emb\/embed: empty input: nothing to embed/);
    assert.equal(batchHits(server).length, 0);
  });
});

Deno.test("a key revoked mid-run stops the run instead of dead-lettering every item", async () => {
  let n = 0;
  await withFakeOpenAI({
    // The start-up check passes; every request after it is refused.
    intercept: () => ++n > 1 ? apiError(401, `Incorrect API key provided: ${KEY}.`) : undefined,
  }, async (server) => {
    const dir = await Deno.makeTempDir();
    const error = await runEmbedFlow(server, { dir, count: 300 }).then(
      () => undefined,
      (e: Error) => e,
    );
    // Before: 300 items split into dead letters over ~600 requests, and the run ended well.
    assert.ok(error, "the run ends with the refusal");
    assert.match(error.message, /401 .*check apiKey, model and baseUrl/);
    assert.doesNotMatch(error.message, new RegExp(KEY));
    assert.ok(batchHits(server).length <= 3, `${batchHits(server).length} requests`);
  });
});

Deno.test("a server repeating the baseUrl's key has it masked in dead letters", async () => {
  // (A user:password in baseUrl is refused at load: it went as a second Authorization beside
  // apiKey's, and out with the URL in Deno's HTTP spans.)
  await withFakeOpenAI({
    intercept: (hit) =>
      hit.input.some((t) => t.includes("BAD"))
        ? apiError(400, `bad credentials AZURESECRET12345 for bob`)
        : undefined,
  }, async (server) => {
    const dir = await Deno.makeTempDir();
    // An Azure-style key in the query.
    const baseUrl = server.url + "?api-key=AZURESECRET12345";
    const { report, deadLetters } = await runEmbedFlow(server, {
      dir,
      count: 8,
      bad: [3],
      embed: { cache: false, baseUrl },
    });
    assert.equal(report.published, 7);
    assert.equal(deadLetters.entries.length, 1);
    const { reason } = deadLetters.entries[0];
    assert.match(reason, /400 bad credentials \*\*\* for bob/);
    assert.doesNotMatch(reason, /AZURESECRET12345/);
  });
});

Deno.test("a reply's size cap follows the batch size, not the API's 2,048 inputs", async () => {
  // 4 inputs of 8 dimensions: the cap is 4 x 8 x 40 bytes + 1 MiB. A reply of 1.5 MB (valid
  // JSON, padded) passed the cap of 2,048 inputs (1.7 MB here; 336 MB without dimensions).
  const padded = (hit: { model: string; input: string[] }): Response =>
    new Response(
      JSON.stringify({
        object: "list",
        data: hit.input.map((text, index) => ({
          object: "embedding",
          index,
          embedding: fakeVector(hit.model, 8, text),
        })),
        model: hit.model,
        usage: { prompt_tokens: 1, total_tokens: 1 },
      }) + " ".repeat(1_500_000),
      { headers: { "content-type": "application/json" } },
    );
  // The start-up check (the first request) is answered as usual.
  await withFakeOpenAI(
    { intercept: (hit) => hit.n > 1 ? padded(hit) : undefined },
    async (server) => {
      const dir = await Deno.makeTempDir();
      const { report, deadLetters } = await runEmbedFlow(server, {
        dir,
        count: 4,
        embed: { cache: false, batch: { size: 4, maxWait: "10s" }, maxRetries: 0 },
      });
      assert.equal(report.published, 0);
      assert.equal(deadLetters.entries.length, 4);
      assert.match(
        deadLetters.entries[0].reason,
        /reply is larger than the limit of 1049856 bytes/,
      );
    },
  );
});

Deno.test("a long document's chunks go in calls within batch.maxTokens", async () => {
  // The window lets an item heavier than batch.maxTokens through alone; its chunks all went
  // in one call (306,625 tokens against OpenAI's 300,000 a request, refused: dead-lettered).
  await withFakeOpenAI({}, async (server) => {
    const words = Array.from({ length: 10_000 }, (_, i) => `w${i.toString(36)}`).join(" ");
    const { published, deadLetters } = await runTestFlow(
      `
name: long
sources: { inbox: { kind: memory } }
pipeline:
  - embed:
      provider: openai
      model: some-compatible-model
      apiKey: sk-test-123456
      baseUrl: ${server.url}
      dimensions: 8
      cache: false
      truncate: { maxTokens: 1000, policy: chunk-average }
      batch: { size: 16, maxTokens: 5000, maxWait: 10ms }
  - publish: [ { collect: { name: out } } ]
`,
      { items: [{ title: "a long report", url: "https://e.com/long", text: words }] },
    );
    assert.equal(deadLetters.length, 0);
    assert.equal(published.get("out")?.length, 1);
    const calls = server.hits.filter((h) => h.input[0] !== PROBE_TEXT);
    const chars = (h: { input: string[] }) =>
      h.input.reduce((n, t) => n + Math.ceil(t.length / 4), 0);
    assert.ok(calls.length >= 3, `${calls.length} calls`);
    assert.ok(calls.every((h) => chars(h) <= 5000), calls.map(chars).join(", "));
  });
});
