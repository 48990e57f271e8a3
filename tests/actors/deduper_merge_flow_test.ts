/**
 * Merge end to end: durable flows of several processes over one real Redis,
 * writing one real Postgres table, embedding through a local fake OpenAI
 * server that counts what it is asked. Each process runs two sources of the
 * same 5,000 generated items (30% syndicated copies), so every story comes
 * in at least twice, at once, in different processes.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { PROBE_TEXT } from "../../actors/_embed_openai.ts";
import { dedupeConfigSchema, Deduper } from "../../actors/deduper.ts";
import { PostgresSink, postgresSinkSchema } from "../../adapters/sinks/postgres_sink.ts";
import { generateItems } from "../../adapters/sources/generator_source.ts";
import { urlKey } from "../../engine/canonical_url.ts";
import { type Envelope, envelope, type ValidItem } from "../../engine/item.ts";
import { flowKeys } from "../../engine/redis/keys.ts";
import { run } from "../_outcome.ts";
import { type FakeOpenAI, withFakeOpenAI } from "../adapters/embeddings/_fake_openai.ts";
import { type PgScope, pgTest } from "../_postgres.ts";
import { FlowWorker, tail, waitFor, withRedis, writeFlow } from "../engine/redis/_harness.ts";

const signal = new AbortController().signal;
const GENERATOR = { count: 5000, seed: 11, duplicates: 0.1, nearDuplicates: 0.3, invalid: 0 };
const SOURCES = ["wire", "mirror"];

function mergeFlow(redisUrl: string, dir: string, pg: PgScope, openai: FakeOpenAI): string {
  const g = GENERATOR;
  const sources = SOURCES.map((name) =>
    `  ${name}: { kind: generator, count: ${g.count}, seed: ${g.seed}, duplicates: ${g.duplicates}, ` +
    `nearDuplicates: ${g.nearDuplicates}, invalid: 0, batch: 250 }`
  ).join("\n");
  return `
name: merge
durability: redis
redis: ${redisUrl}
output: ${dir}
sources:
${sources}
pipeline:
  - validate: { require: [title, url] }
  - dedupe: { key: [url], near: { threshold: 0.8 } }
  - embed:
      provider: openai
      model: text-embedding-3-small
      baseUrl: ${openai.url}
      apiKey: test-key
      dimensions: 8
      cache: false
      batch: { size: 128, maxWait: 100ms }
  - publish:
      sinks: [ { postgres: { url: "${pg.url}", table: ${pg.table("stories")}, vector: array } } ]
      batch: { size: 200, maxWait: 100ms }
durable: { claimAfter: 1s, maxBacklog: 3000 }
`;
}

/** Per story, what its row must hold: every sighting by both sources, the highest engagement. */
function expectedStories() {
  const { items, labels, origin, stats } = generateItems(GENERATOR);
  const members = new Map<number, number[]>();
  labels.forEach((label, i) => {
    const story = label === "unique" ? i : origin[i];
    members.set(story, [...(members.get(story) ?? []), i]);
  });
  const stories = new Map<string, { score: number; comments: number }>();
  for (const copies of members.values()) {
    const sightings = new Set<string>();
    let score = -Infinity, comments = -Infinity;
    for (const i of copies) {
      for (const source of SOURCES) sightings.add(`${source} ${urlKey(items[i].url!)}`);
      score = Math.max(score, items[i].engagement?.score ?? -Infinity);
      comments = Math.max(comments, items[i].engagement?.comments ?? -Infinity);
    }
    stories.set([...sightings].sort().join("|"), { score, comments });
  }
  assert.equal(stories.size, stats.unique);
  return { stories, texts: stats.unique };
}

interface Row {
  id: string;
  title: string | null;
  sources: { source: string; url: string }[];
  engagement: { score: number; comments: number };
  has_vector: boolean;
}

/** Checks the table; and with `openai`, that it embedded each distinct text once. */
async function checkRows(pg: PgScope, openai?: FakeOpenAI) {
  const { stories, texts } = expectedStories();
  const rows = await pg.sql<Row[]>`
    select id, title, payload->'sources' as sources, payload->'engagement' as engagement,
      vector is not null as has_vector
    from ${pg.ident("stories")}`;
  assert.equal(rows.length, stories.size, "one row per story");
  const seen = new Set<string>();
  for (const row of rows) {
    assert.ok(row.title, `row ${row.id} is whole`);
    assert.ok(row.has_vector, `row ${row.id} has its vector`);
    const key = row.sources.map((s) => `${s.source} ${s.url}`).sort().join("|");
    const want = stories.get(key);
    assert.ok(want, `row ${row.id}: its sources are no story's: ${key}`);
    assert.ok(!seen.has(key), `two rows for the story ${key}`);
    seen.add(key);
    assert.equal(row.engagement.score, want.score, `row ${row.id}: highest score`);
    assert.equal(row.engagement.comments, want.comments, `row ${row.id}: highest comments`);
  }
  if (!openai) return;
  const embedded = openai.hits.filter((h) => !(h.input.length === 1 && h.input[0] === PROBE_TEXT))
    .reduce((n, h) => n + h.input.length, 0);
  assert.equal(embedded, texts, "one embedding per distinct text, none for a merge");
}

pgTest("two processes merging the same 5k items at once: one whole row per story", async (pg) => {
  await withFakeOpenAI({ apiKey: "test-key" }, async (openai) => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-merge-" });
      const flow = await writeFlow(dir, mergeFlow(server.url, dir, pg, openai));
      const workers = [new FlowWorker(flow, { main: true }), new FlowWorker(flow, { main: true })];
      try {
        const deduped: number[] = [];
        for (const w of workers) {
          const r = await w.finished(180_000);
          assert.equal(r.code, 0, tail(r.stderr));
          deduped.push(r.report!.stages.find((s) => s.id === "dedupe")!.received);
        }
        assert.ok(deduped.every((n) => n > 0), `both processes deduplicated: ${deduped}`);
        assert.equal(deduped[0] + deduped[1], 2 * GENERATOR.count);
        await checkRows(pg, openai);
      } finally {
        for (const w of workers) w.kill("SIGKILL");
        await Promise.allSettled(workers.map((w) => w.result));
        await Deno.remove(dir, { recursive: true });
      }
    });
  });
});

pgTest(
  "a process killed between its merges and its sink writes: after recovery every row is whole",
  async (pg) => {
    await withFakeOpenAI({ apiKey: "test-key", latency: 50 }, async (openai) => {
      await withRedis(async (server) => {
        const dir = await Deno.makeTempDir({ prefix: "millrace-merge-kill-" });
        const flow = await writeFlow(dir, mergeFlow(server.url, dir, pg, openai));
        const workers = [
          new FlowWorker(flow, { main: true }),
          new FlowWorker(flow, { main: true }),
        ];
        try {
          // Rows are landing, so merges are in Redis whose updates are not in the table yet.
          await waitFor("some rows", async () => (await pg.count("stories").catch(() => 0)) >= 300);
          workers[0].kill("SIGKILL");
          assert.equal((await workers[0].result).signal, "SIGKILL");
          workers.push(new FlowWorker(flow, { main: true }));
          for (const w of workers.slice(1)) {
            const r = await w.finished(180_000);
            assert.equal(r.code, 0, tail(r.stderr));
          }
          // What the killed process embedded and did not commit is embedded again: rows only.
          await checkRows(pg);
        } finally {
          for (const w of workers) w.kill("SIGKILL");
          await Promise.allSettled(workers.map((w) => w.result));
          await Deno.remove(dir, { recursive: true });
        }
      });
    });
  },
);

pgTest(
  "a merge whose process died before the sink write is written whole when its event comes again",
  async (pg) => {
    await withRedis(async (server) => {
      const redis = new Redis(server.url);
      const table = new PostgresSink(
        postgresSinkSchema.parse({ url: pg.url, table: pg.table("stories"), vector: "none" }),
      );
      await table.open();
      try {
        const process = () =>
          new Deduper(dedupeConfigSchema.parse({}), {
            durable: { redis, keys: flowKeys("crash") },
          });
        const first = envelope(
          { title: "Uber halts", url: "https://example.com/a", engagement: { score: 2 } },
          "wire",
          Date.UTC(2026, 0, 1),
        ) as Envelope<ValidItem>;
        const copy = envelope(
          {
            title: "Uber halts",
            url: "https://example.com/a?utm_source=x",
            engagement: { score: 9 },
          },
          "mirror",
          Date.UTC(2026, 0, 2),
        ) as Envelope<ValidItem>;
        await table.write((await run(process(), [first], "dedupe")).emitted, signal);
        // The copy is merged in Redis, then its process dies: the update never reaches the table.
        const lost = await run(process(), [copy], "dedupe");
        assert.equal(lost.emitted.length, 1);
        const before = await pg.sql`select payload from ${pg.ident("stories")}`;
        assert.equal(before[0].payload.sources.length, 1);
        // Its event is delivered again, to another process: the same story goes out, and lands.
        const again = await run(process(), [{ ...structuredClone(copy), attempts: 1 }], "dedupe");
        assert.deepEqual(again.emitted.map((e) => e.payload), lost.emitted.map((e) => e.payload));
        await table.write(again.emitted, signal);
        await table.write(again.emitted, signal); // and once more: nothing changes
        const rows = await pg.sql`select id, title, payload from ${pg.ident("stories")}`;
        assert.equal(rows.length, 1);
        assert.equal(rows[0].id, first.id);
        assert.equal(rows[0].title, "Uber halts");
        assert.deepEqual(
          rows[0].payload.sources.map((s: { source: string }) => s.source),
          ["wire", "mirror"],
        );
        assert.deepEqual(rows[0].payload.engagement, { score: 9 });
        assert.equal(rows[0].payload.revision, 2, "the redelivery counted nothing twice");
      } finally {
        await table.close();
        redis.disconnect();
      }
    });
  },
);
