import assert from "node:assert/strict";
import { join } from "node:path";
import { Redis } from "ioredis";
import { builtinRegistry } from "../../builtins.ts";
import { loadFlow } from "../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../engine/dead_letters.ts";
import { memoryLogger } from "../../engine/log.ts";
import { runFlow } from "../../engine/run_flow.ts";
import {
  dedupeConfigSchema,
  Deduper,
  dedupeStage,
  type DedupeStore,
  MemoryDedupeStore,
  type MergeRequest,
  RedisDedupeStore,
} from "../../actors/deduper.ts";
import { flowKeys } from "../../engine/redis/keys.ts";
import { type Envelope, envelope, type RawItem, type ValidItem } from "../../engine/item.ts";
import type { BuildEnv } from "../../engine/registry.ts";
import { run, testEnv } from "../_outcome.ts";
import { redisTest, withRedis } from "../_redis_server.ts";

const T0 = 1_700_000_000_000;
const iso = (ms: number) => new Date(ms).toISOString();

const STORY = "Uber has halted its self-driving car pilot in San Francisco after California " +
  "regulators revoked the registrations of its sixteen autonomous vehicles on Wednesday " +
  "evening. The company said it would look at where it could redeploy the cars, but " +
  "remained fully committed to its plans for autonomous ride hailing in the state.";

function copy(
  url: string,
  source: string,
  seenAt: number,
  engagement: Record<string, number> = {},
  text = "",
): Envelope<ValidItem> {
  return envelope({ title: "Uber halts self-driving cars", url, text, engagement }, source, seenAt);
}

function deduper(raw: object = {}): Deduper {
  return new Deduper(dedupeConfigSchema.parse(raw), { now: () => T0 });
}

Deno.test("a duplicate updates its first copy: sources united, engagement at its maximum, lastSeenAt forward", async () => {
  const d = deduper();
  const first = copy("https://example.com/a", "hn", T0, { score: 5, comments: 9, ratio: 0.5 });
  const c1 = await run(d, [first], "dedupe");
  assert.equal(c1.emitted.length, 1);
  const story = c1.emitted[0];
  assert.equal(story.id, first.id);
  assert.equal(story.update, undefined);
  assert.deepEqual(story.payload.sources, [
    { source: "hn", url: "https://example.com/a", seenAt: iso(T0) },
  ]);
  assert.deepEqual(story.payload.engagement, { score: 5, comments: 9, ratio: 0.5 });
  assert.equal(story.payload.lastSeenAt, iso(T0));
  assert.equal(story.payload.revision, 1);

  const later = copy("https://EXAMPLE.com/a/?utm_source=rss", "reddit", T0 + 60_000, {
    score: 12,
    comments: 3,
  });
  const c2 = await run(d, [later], "dedupe");
  assert.deepEqual(c2.dropped.map((x) => [x.item, x.label]), [[later, "duplicate"]]);
  assert.equal(c2.emitted.length, 1);
  const update = c2.emitted[0];
  assert.equal(update.id, first.id, "the update names the first copy's story");
  assert.equal(update.update, true);
  assert.equal(update.event, later.event);
  assert.deepEqual(update.payload as unknown, {
    sources: [
      { source: "hn", url: "https://example.com/a", seenAt: iso(T0) },
      { source: "reddit", url: "https://example.com/a", seenAt: iso(T0 + 60_000) },
    ],
    engagement: { score: 12, comments: 9 },
    lastSeenAt: iso(T0 + 60_000),
    revision: 2,
  });
});

Deno.test("a redelivered duplicate counts nothing twice and sends the same story again", async () => {
  const d = deduper();
  await run(d, [copy("https://example.com/a", "hn", T0, { score: 5 })], "dedupe");
  const dup = copy("https://example.com/a", "reddit", T0 + 1, { score: 7 });
  const once = await run(d, [dup], "dedupe");
  const again = await run(d, [{ ...structuredClone(dup), attempts: 1 }], "dedupe");
  assert.deepEqual(again.emitted[0].payload, once.emitted[0].payload);
  assert.equal((again.emitted[0].payload as unknown as { revision: number }).revision, 2);
  // The same source seeing the same url again is one sighting, first seen at the earlier time.
  const rescrape = await run(
    d,
    [copy("https://example.com/a", "hn", T0 + 5, { score: 6 })],
    "dedupe",
  );
  const p = rescrape.emitted[0].payload as unknown as Record<string, unknown>;
  assert.equal((p.sources as unknown[]).length, 2);
  assert.deepEqual(p.engagement, { score: 7 });
  assert.equal(p.lastSeenAt, iso(T0 + 5));
  assert.equal(p.revision, 2, "nothing a revision counts changed");
});

/** A feed polled three times: the same copies again, later, then one with a higher score. */
async function polled(d: Deduper, base = 1): Promise<void> {
  const urls = ["https://example.com/a", "https://example.com/b"];
  const poll = (at: number, score = base) => urls.map((u) => copy(u, "feed", at, { score }));
  const first = await run(d, poll(T0), "dedupe");
  assert.deepEqual(first.emitted.map((e) => e.payload.revision), [1, 1]);
  // Sent again, later: dropped as duplicates, and no update, since the stories stay at the
  // revision their first copies carried.
  const again = await run(d, poll(T0 + 60_000), "dedupe");
  assert.deepEqual(again.dropped.map((x) => x.label), ["duplicate", "duplicate"]);
  assert.deepEqual(again.emitted, []);
  // A real change makes a revision, and carries the latest sighting along.
  const risen = await run(d, poll(T0 + 120_000, 5), "dedupe");
  const payloads = risen.emitted.map((e) => e.payload as unknown as Record<string, unknown>);
  assert.deepEqual(payloads.map((p) => [p.revision, p.lastSeenAt]), [
    [2, iso(T0 + 120_000)],
    [2, iso(T0 + 120_000)],
  ]);
}

Deno.test("a feed sending the same items again makes no revision: sinks write nothing new", async () => {
  // Before: every poll made a revision of every story, and flows/watch.yaml appended 176
  // update lines a second to its JSONL file.
  await polled(deduper());
});

redisTest("over Redis too, the same items sent again make no revision", async () => {
  await withTwo((d) => polled(d));
});

redisTest(
  "a score of 17 significant digits sent again makes no revision, over Redis as in process",
  async () => {
    // Redis's Lua stores numbers to 14 digits: 0.30000000000000004 came back as 0.3, and the
    // same score sent again counted as higher, a revision at every poll for every sink.
    const score = 0.1 + 0.2;
    await polled(deduper(), score);
    await withTwo((d) => polled(d, score));
  },
);

/** A copy and its near duplicate in one batch, then an exact copy of the first in the next. */
async function nearMerges(d: Deduper): Promise<void> {
  const a = copy("https://a.example/story", "hn", T0, { score: 1 }, STORY);
  const b = copy("https://b.example/other", "feed", T0 + 10, { score: 4 }, STORY + " Updated.");
  const c = await run(d, [a, b], "dedupe");
  assert.deepEqual(c.dropped.map((x) => x.reason), [`near-duplicate of ${a.id}`]);
  assert.deepEqual(c.emitted.map((e) => [e.id, e.update]), [[a.id, undefined], [a.id, true]]);
  const merged = c.emitted[1].payload as unknown as Record<string, unknown>;
  assert.deepEqual(merged.sources, [
    { source: "hn", url: "https://a.example/story", seenAt: iso(T0) },
    { source: "feed", url: "https://b.example/other", seenAt: iso(T0 + 10) },
  ]);
  assert.deepEqual(merged.engagement, { score: 4 });
  assert.equal(merged.revision, 2);
  const again = await run(d, [copy("https://a.example/story", "rss", T0 + 20, { score: 9 })]);
  assert.deepEqual(again.dropped.map((x) => x.reason), ["duplicate"]);
  const third = again.emitted[0].payload as unknown as Record<string, unknown>;
  assert.deepEqual(again.emitted.map((e) => [e.id, e.update]), [[a.id, true]]);
  assert.equal((third.sources as unknown[]).length, 3);
  assert.deepEqual(third.engagement, { score: 9 });
  assert.equal(third.revision, 3);
}

Deno.test("a near duplicate merges into the first copy's story under that copy's id", async () => {
  await nearMerges(deduper({ near: {} }));
});

redisTest(
  "over Redis, a near duplicate merges into the first copy's story as in process",
  async () => {
    await withTwo((d) => nearMerges(d), { near: {} });
  },
);

Deno.test("engagement fields are the flow's to name; others keep the first copy's value", async () => {
  const d = deduper({ engagement: ["likes"] });
  await run(d, [copy("https://example.com/a", "x", T0, { likes: 2, score: 50 })], "dedupe");
  const c = await run(
    d,
    [copy("https://example.com/a", "y", T0, { likes: 8, score: 99 })],
    "dedupe",
  );
  assert.deepEqual(c.emitted[0].payload.engagement, { likes: 8 });
});

Deno.test("merge: false drops duplicates and sends no update", async () => {
  const d = deduper({ merge: false, near: {} });
  const a = copy("https://a.example/1", "hn", T0, {}, STORY);
  const c = await run(d, [
    a,
    copy("https://a.example/1?utm_medium=x", "hn", T0),
    copy("https://b.example/2", "hn", T0, {}, STORY),
  ], "dedupe");
  assert.deepEqual(c.emitted, [a]);
  assert.deepEqual(c.dropped.map((x) => x.label), ["duplicate", "near-duplicate"]);
  assert.equal(a.payload.sources, undefined);
});

/** Every spelling of a few addresses, from several sources. */
function variants(): RawItem[] {
  const items: RawItem[] = [];
  for (let n = 0; n < 20; n++) {
    const base = `https://news.example/${2026}/story-${n}`;
    for (
      const url of [
        base,
        base + "/",
        base + "?utm_source=x&utm_medium=y",
        "HTTPS://NEWS.example:443/2026/story-" + n + "#top",
        base + "?fbclid=abc",
      ]
    ) {
      items.push({ title: `Story ${n}`, url, engagement: { score: n } });
    }
  }
  return items;
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

Deno.test("a story's id does not depend on which copy comes first", async () => {
  const idsOf = async (order: RawItem[], raw: object) => {
    const d = deduper(raw);
    const c = await run(d, order.map((p) => envelope(p as ValidItem, "s", T0)), "dedupe");
    const byTitle = new Map<string, Set<string>>();
    for (const e of c.emitted) {
      const title = e.update ? undefined : e.payload.title;
      if (title) byTitle.set(title, (byTitle.get(title) ?? new Set()).add(e.id));
    }
    return { byTitle, ids: new Set(c.emitted.map((e) => e.id)) };
  };
  for (const raw of [{}, { merge: false }, { key: ["url", "title"] }]) {
    const reference = await idsOf(variants(), raw);
    assert.equal(reference.ids.size, 20, JSON.stringify(raw));
    for (let seed = 1; seed <= 5; seed++) {
      const got = await idsOf(shuffled(variants(), seed), raw);
      assert.deepEqual(got.byTitle, reference.byTitle, `${JSON.stringify(raw)} order ${seed}`);
      assert.deepEqual(got.ids, reference.ids);
    }
  }
  // Without a Deduper too: the envelope's id already is the canonical one.
  const ids = new Set(variants().slice(0, 5).map((p) => envelope(p, "s").id));
  assert.equal(ids.size, 1);
});

redisTest("over Redis too, a story's id does not depend on which copy comes first", async () => {
  const ids: Set<string>[] = [];
  for (let seed = 1; seed <= 3; seed++) {
    await withTwo(async (one, two) => {
      const order = shuffled(variants(), seed).map((p) => envelope(p as ValidItem, "s", T0));
      const half = order.length >> 1;
      const [a, b] = await Promise.all([
        run(one, order.slice(0, half), "dedupe"),
        run(two, order.slice(half), "dedupe"),
      ]);
      ids.push(new Set([...a.emitted, ...b.emitted].map((e) => e.id)));
    }, { key: ["url", "title"] });
  }
  assert.equal(ids[0].size, 20);
  assert.deepEqual(ids[1], ids[0]);
  assert.deepEqual(ids[2], ids[0]);
});

/** Two "processes" over one Redis: their own connection and their own Deduper. */
async function withTwo(fn: (a: Deduper, b: Deduper) => Promise<void>, raw: object = {}) {
  await withRedis(async (server) => {
    const connections: Redis[] = [];
    const make = async () => {
      const redis = new Redis(server.url);
      connections.push(redis);
      const env: BuildEnv = { ...testEnv(), durable: { redis, keys: flowKeys("test") } };
      return await dedupeStage.create(dedupeConfigSchema.parse(raw), env) as Deduper;
    };
    try {
      await fn(await make(), await make());
    } finally {
      for (const r of connections) r.disconnect();
    }
  });
}

for (const raw of [{}, { near: {} }]) {
  const how = Object.keys(raw).length
    ? "with near, claims, lookups and folds in one script"
    : "claims and folds in one script";
  redisTest(
    `two processes merging into one story at once lose no sighting (${how})`,
    async () => {
      await withTwo(async (one, two) => {
        const url = "https://example.com/a";
        const batches = Array.from(
          { length: 40 },
          (
            _,
            i,
          ) => [copy(i % 2 ? url : url + "?utm_source=" + i, `source-${i}`, T0 + i, { score: i })],
        );
        const results = await Promise.all(
          batches.map((b, i) => run(i % 2 ? one : two, b, "dedupe")),
        );
        const out = results.flatMap((r) => r.emitted);
        assert.equal(out.filter((e) => !e.update).length, 1, "one first copy");
        // A copy answered while its first copy was not folded yet waits in the
        // story and sends nothing: the first copy carries it.
        assert.ok(out.filter((e) => e.update).length <= 39);
        assert.ok(out.every((e) => e.id === batches[0][0].id));
        const last = out.reduce((a, b) =>
          (a.payload.revision as number) > (b.payload.revision as number) ? a : b
        );
        const p = last.payload as unknown as { sources: { source: string }[]; revision: number };
        assert.deepEqual(
          p.sources.map((s) => s.source).sort(),
          batches.map((b) => b[0].source).sort(),
        );
        assert.deepEqual(last.payload.engagement, { score: 39 });

        // A redelivery in the other process adds nothing.
        const again = await run(
          one,
          [{ ...structuredClone(batches[4][0]), attempts: 1 }],
          "dedupe",
        );
        assert.equal(again.emitted[0].payload.revision, p.revision);
      }, raw);
    },
  );
}

/** The race of a copy with its first copy, against a store (the same steps in memory and in Lua). */
async function racingCopies(store: DedupeStore): Promise<void> {
  const merge = async (copy: MergeRequest) => (await store.mergeMany([copy], T0, 60_000))[0];
  const at = (
    story: string,
    own: string,
    mode: MergeRequest["mode"],
    source: string,
  ): MergeRequest => ({
    story,
    own,
    mode,
    source,
    url: `https://example.com/${own}`,
    seenAt: T0,
    engagement: { score: source.length },
  });
  // A duplicate answered before its first copy was folded: pending, nothing to send.
  assert.equal(await merge(at("k", "k", "duplicate", "bb")), undefined);
  const first = await merge(at("k", "k", "first", "a"));
  assert.deepEqual(first?.s.map((s) => s[0]), ["bb", "a"]);
  assert.equal(first?.r, 1);
  assert.equal(first?.g.score, 2);

  // A copy pending on n, whose first copy then turns out a near duplicate of k:
  // the pending sighting goes to k with it, and later copies of n follow to k.
  assert.equal(await merge(at("n", "n", "duplicate", "ccc")), undefined);
  const near = await merge(at("k", "n", "near", "d"));
  assert.deepEqual(near?.s.map((s) => s[0]), ["bb", "a", "d", "ccc"]);
  assert.equal(near?.id, "k");
  assert.equal(near?.r, 2);
  const later = await merge(at("n", "n", "duplicate", "eeee"));
  assert.equal(later?.id, "k");
  assert.deepEqual(later?.s.length, 5);
  assert.equal(later?.r, 3);
}

Deno.test("a copy that races its first copy waits in the story and reaches the sinks with it", async () => {
  await racingCopies(new MemoryDedupeStore());
});

redisTest(
  "in Redis a copy that races its first copy waits in the story as in process",
  async () => {
    await withRedis(async (server) => {
      const redis = new Redis(server.url);
      try {
        await racingCopies(new RedisDedupeStore(redis, "test:dedupe"));
      } finally {
        redis.disconnect();
      }
    });
  },
);

Deno.test("flows/merged.yaml (the README's example) publishes each story once and appends its updates", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-merged-" });
  try {
    const text = (await Deno.readTextFile(new URL("../../flows/merged.yaml", import.meta.url)))
      .replace("output: out/merged", `output: ${dir}`);
    const path = join(dir, "merged.yaml");
    await Deno.writeTextFile(path, text);
    const registry = builtinRegistry();
    const report = await runFlow(await loadFlow(path, registry), {
      registry,
      deadLetters: new MemoryDeadLetters(),
      log: memoryLogger(),
    });
    const lines = (await Deno.readTextFile(join(dir, "stories.jsonl"))).trim().split("\n")
      .map((l) => JSON.parse(l));
    const items = lines.filter((l) => !l.update);
    const updates = lines.filter((l) => l.update);
    assert.equal(items.length, report.published);
    assert.equal(report.published, 1352, "the number the README quotes");
    const ids = new Set(items.map((l) => l.id));
    assert.equal(ids.size, items.length, "each story once");
    assert.ok(updates.length > 0 && updates.every((u) => ids.has(u.id)), "updates name stories");
    assert.ok(updates.every((u) => u.vector === undefined && u.payload.title === undefined));
    // The summary counts the updates publish handed its sinks: at least the lines written.
    const stage = (id: string) => report.stages.find((s) => s.id === id)!;
    const handed = stage("publish").usage?.["merge updates"] ?? 0;
    const merged = Object.values(stage("dedupe").dropped).reduce((a, b) => a + b, 0);
    assert.ok(handed >= updates.length && handed <= merged, `${handed}`);
    // Both sources carry every story: its last revision names both.
    const last = new Map<string, { revision: number; sources: { source: string }[] }>();
    for (const l of lines) {
      const held = last.get(l.id);
      if (!held || held.revision < l.payload.revision) last.set(l.id, l.payload);
    }
    for (const story of last.values()) {
      assert.deepEqual([...new Set(story.sources.map((s) => s.source))].sort(), ["mirror", "wire"]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

redisTest(
  "in Redis a first copy's story is the one made in process, stored as it came or folded in Lua",
  async () => {
    await withRedis(async (server) => {
      const redis = new Redis(server.url);
      try {
        const copy = (
          key: string,
          mode: MergeRequest["mode"],
          seenAt: number,
          engagement: Record<string, number>,
        ): MergeRequest => ({
          story: key,
          own: key,
          mode,
          source: `wire "${key}" / é`,
          url: `https://example.com/${key}?q="x"`,
          seenAt,
          engagement,
        });
        // Plain integers take the one-SET path; a fractional time or count, folding in Lua.
        const batches = [
          [
            copy("a", "first", T0, { score: 3, likes: 0 }),
            copy("b", "first", T0 + 0.5, { score: 3 }),
            copy("c", "first", T0, { score: 2.5 }),
            copy("a", "duplicate", T0 + 7, { score: 9 }), // the same run's copy of a fresh story
            copy("d", "first", -5, {}),
          ],
          [copy("a", "first", T0, { score: 3, likes: 0 }), copy("b", "duplicate", T0 - 1, {})],
        ];
        const memory = new MemoryDedupeStore();
        const store = new RedisDedupeStore(redis, "test:dedupe");
        const last = new Map<string, unknown>();
        for (const batch of batches) {
          const want = structuredClone(memory.mergeMany(batch, T0, 60_000));
          assert.deepEqual(await store.mergeMany(batch, T0, 60_000), want);
          for (const { id, ...story } of want.filter((s) => s !== undefined)) last.set(id!, story);
        }
        for (const key of ["a", "b", "c", "d"]) {
          const held = JSON.parse((await redis.get(`test:dedupe:m:${key}`))!);
          assert.deepEqual({ ...held, g: Array.isArray(held.g) ? {} : held.g }, last.get(key), key);
          assert.ok(await redis.pttl(`test:dedupe:m:${key}`) > 50_000, "kept for the ttl");
        }
      } finally {
        redis.disconnect();
      }
    });
  },
);

/**
 * A story made where an alias stood: S, then its near duplicate at key k (an alias to S),
 * then k's own first copy once S has left, then a copy of k after the alias's end.
 */
async function storyAfterAlias(store: DedupeStore, age: (key: string) => Promise<void>) {
  const ttl = 3_600_000;
  const fold = (c: MergeRequest, at: number) => store.mergeMany([c], at, ttl);
  const base = { source: "wire", url: "https://s.example/story", engagement: {} };
  await fold({ ...base, story: "s", own: "s", mode: "first", seenAt: T0 }, T0);
  await fold({ ...base, story: "s", own: "k", mode: "near", seenAt: T0 + 1 }, T0 + 1);
  await age("k"); // the alias is near the end of its ttl
  const k = { ...base, url: "https://k.example/copy", story: "k", own: "k" };
  const at = T0 + ttl - 10;
  assert.equal((await fold({ ...k, mode: "first", seenAt: at }, at))[0]?.r, 1);
  // Past the alias's end, within the ttl of k's own first copy: k's story is there.
  const later = T0 + ttl + 60_000;
  const [dup] = await fold({ ...k, source: "social", mode: "duplicate", seenAt: later }, later);
  assert.deepEqual(dup?.s.map((x) => x[0]), ["wire", "social"], "k's story kept its sightings");
}

Deno.test("a story made where an alias stood is kept for the whole ttl, not to the alias's end", async () => {
  await storyAfterAlias(new MemoryDedupeStore(), async () => {});
});

redisTest(
  "over Redis too, a story made where an alias stood is kept for the whole ttl",
  async () => {
    await withRedis(async (server) => {
      const redis = new Redis(server.url);
      try {
        // Redis keeps time itself: the alias is aged by shortening its expiry.
        await storyAfterAlias(new RedisDedupeStore(redis, "test:dedupe"), async (key) => {
          await redis.pexpire(`test:dedupe:m:${key}`, 200);
        });
        assert.ok(await redis.pttl("test:dedupe:m:k") > 3_000_000, "k's story has a whole ttl");
      } finally {
        redis.disconnect();
      }
    });
  },
);

Deno.test("near duplicates' aliases do not push live stories out before their keys", async () => {
  // maxItems 2: A, then B a near duplicate of A (an alias at B), then C. Counted with the
  // stories, B's alias evicted A's story while A's key was held: A seen again from another
  // source was dropped with no update, its sighting and score lost.
  const d = deduper({ maxItems: 2, near: {} });
  const text = (n: number) => Array.from({ length: 40 }, (_, w) => `w${n}x${w}`).join(" ");
  const at = (url: string, source: string, n: number, score: number) =>
    copy(url, source, T0, { score }, text(n));
  assert.equal((await run(d, [at("https://a.example/1", "hn", 1, 1)], "dedupe")).emitted.length, 1);
  const b = await run(d, [at("https://b.example/1", "feed", 1, 1)], "dedupe");
  assert.deepEqual(b.dropped.map((x) => x.label), ["near-duplicate"]);
  await run(d, [at("https://c.example/1", "hn", 2, 1)], "dedupe");
  const again = await run(d, [at("https://a.example/1", "reddit", 1, 50)], "dedupe");
  assert.deepEqual(again.dropped.map((x) => x.label), ["duplicate"]);
  const update = again.emitted.map((e) => e.payload as unknown as Record<string, unknown>);
  assert.deepEqual(update.map((p) => [p.revision, p.engagement]), [[3, { score: 50 }]]);
});
