import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import {
  type Claim,
  type ClaimRequest,
  type DedupeConfig,
  dedupeConfigSchema,
  Deduper,
  dedupeStage,
  type DedupeStore,
  MemoryDedupeStore,
} from "../../actors/deduper.ts";
import { hash128 } from "../../engine/hash.ts";
import { type Envelope, envelope, type RawItem, type ValidItem } from "../../engine/item.ts";
import { memoryLogger } from "../../engine/log.ts";
import { Registry } from "../../engine/registry.ts";
import { collector, createStage, run, testContext } from "../_outcome.ts";
import { redditAllNew, type RedditPost } from "./_fixtures.ts";
import { fixtureTest } from "../_fixtures_dir.ts";
import { runStage } from "../../testing.ts";
import { nearPairs } from "./_near_pairs.ts";

const HOUR = 3_600_000;

function item(
  url: string,
  title = "Uber suspends self-driving cars service",
  text = "",
): Envelope<ValidItem> {
  return envelope({ title, url, text }, "test");
}

/** A Deduper on a fake clock that the test moves. */
function clocked(raw: object = {}) {
  const clock = { now: 1_700_000_000_000 };
  const config: DedupeConfig = dedupeConfigSchema.parse({ merge: false, ...raw });
  return { deduper: new Deduper(config, { now: () => clock.now }), clock };
}

const reasons = (c: { dropped: { reason: string }[] }) => c.dropped.map((d) => d.reason);

Deno.test("a second event with the same canonical url is dropped as a duplicate", async () => {
  const deduper = await createStage<ValidItem, ValidItem>(dedupeStage, { merge: false });
  const first = item("http://www.bbc.co.uk/news/technology-38400224");
  const copies = [
    item("HTTP://WWW.BBC.CO.UK:80/news/technology-38400224/?utm_source=twitter"),
    item("http://www.bbc.co.uk/news/technology-38400224#comments", "Another title"),
  ];
  const other = item("http://www.bbc.co.uk/news/technology-38400225");
  const c = await run(deduper, [first, ...copies, other]);
  assert.deepEqual(c.emitted, [first, other]);
  assert.deepEqual(c.dropped.map((d) => d.item), copies);
  assert.deepEqual(reasons(c), ["duplicate", "duplicate"]);
  assert.equal(c.rejected.length, 0);

  const later = await run(deduper, [item("http://www.bbc.co.uk/news/technology-38400224")]);
  assert.deepEqual(reasons(later), ["duplicate"], "remembered across batches");
});

Deno.test("a key of several fields needs all of them equal; text is trimmed and case-folded", async () => {
  const deduper = await createStage<ValidItem, ValidItem>(dedupeStage, {
    key: ["url", "title"],
    merge: false,
  });
  const url = "https://example.com/story";
  const c = await run(deduper, [
    item(url, "Mongolia pledges to halt visits"),
    item(url, "Hong Kong customs seize firearms"),
    item(url + "?utm_medium=rss", "  MONGOLIA pledges to halt visits "),
  ]);
  assert.equal(c.emitted.length, 2);
  assert.deepEqual(reasons(c), ["duplicate"]);
});

Deno.test("the same event delivered again passes, a different event with the same key does not", async () => {
  const deduper = await createStage<ValidItem, ValidItem>(dedupeStage, { merge: false });
  const original = item("https://example.com/a");
  assert.equal((await run(deduper, [original])).emitted.length, 1);

  // A redelivery: the same ingestion event, one attempt later (a crash before the ack).
  const redelivered = { ...structuredClone(original), attempts: 1 };
  const again = await run(deduper, [redelivered, original]);
  assert.deepEqual(again.emitted, [redelivered, original]);
  assert.equal(again.dropped.length, 0);

  // The same article scraped again is a new event: a duplicate.
  const rescraped = item("https://example.com/a");
  assert.notEqual(rescraped.event, original.event);
  assert.equal(rescraped.id, original.id);
  assert.deepEqual(reasons(await run(deduper, [rescraped])), ["duplicate"]);
});

Deno.test("a retried batch gives the same answers as its first attempt", async () => {
  const deduper = await createStage<ValidItem, ValidItem>(dedupeStage, { merge: false });
  const batch = [
    item("https://example.com/a"),
    item("https://example.com/a"),
    item("https://example.com/b"),
  ];
  const first = await run(deduper, batch);
  const retry = await run(deduper, batch);
  assert.deepEqual(retry.emitted, first.emitted);
  assert.deepEqual(retry.dropped, first.dropped);
  assert.deepEqual(first.emitted, [batch[0], batch[2]]);
});

Deno.test("a key is forgotten once its ttl has passed", async () => {
  const { deduper, clock } = clocked({ ttl: "1h" });
  const url = "https://example.com/a";
  assert.equal((await run(deduper, [item(url)])).emitted.length, 1);

  clock.now += HOUR - 1;
  assert.deepEqual(reasons(await run(deduper, [item(url)])), ["duplicate"], "still remembered");

  clock.now += 1;
  const afterTtl = await run(deduper, [item(url)]);
  assert.equal(afterTtl.emitted.length, 1, "expired: new again");

  clock.now += HOUR / 2;
  assert.deepEqual(reasons(await run(deduper, [item(url)])), ["duplicate"], "the new claim holds");
});

Deno.test("past maxItems the oldest key and text are forgotten before their ttl: a copy of it passes as new", async () => {
  const { deduper } = clocked({ maxItems: 2, near: { threshold: 0.8 } });
  const texts = [
    "Ancient supervolcano that caused the largest eruption in European history is stirring again",
    "Hong Kong customs seize a firearms package at the airfreight terminal on Monday night",
    "Uber has halted its self-driving car pilot in San Francisco after regulators acted",
  ];
  const originals = texts.map((t, i) => item(`https://a.example/${i}`, "A", t));
  for (const original of originals) {
    assert.equal((await run(deduper, [original])).emitted.length, 1);
  }
  // The two newest are held, by key and by text (near.maxItems defaults to maxItems).
  assert.deepEqual(reasons(await run(deduper, [item("https://a.example/2", "A", texts[2])])), [
    "duplicate",
  ]);
  assert.match(
    reasons(await run(deduper, [item("https://b.example/1", "A", texts[1])]))[0],
    /^near-duplicate of /,
  );
  // The first left: its copies pass, by key and by text.
  assert.equal(
    (await run(deduper, [item("https://a.example/0", "A", texts[0])])).emitted.length,
    1,
  );
});

Deno.test("items with no key value are keyed by their id, not lumped together", async () => {
  const deduper = await createStage<ValidItem, ValidItem>(dedupeStage, {
    key: ["guid"],
    merge: false,
  });
  const a = envelope({ title: "Liftoff News", url: "https://liftoff.msfc.nasa.gov/" }, "t");
  const b = envelope({
    title: "Star City",
    url: "https://liftoff.msfc.nasa.gov/news/2003/news-starcity.asp",
  }, "t");
  const c = await run(deduper, [a, b, envelope({ ...a.payload }, "t")]);
  assert.deepEqual(c.emitted, [a, b]);
  assert.deepEqual(reasons(c), ["duplicate"]);
});

/** Exact Jaccard similarity of two texts' word shingle sets, to check the estimates against. */
function jaccard(a: string, b: string, k: number): number {
  const shingles = (t: string) => {
    const w = t.toLowerCase().match(/[\p{L}\p{N}]+(?:['’\-][\p{L}\p{N}]+)*/gu) ?? [];
    if (w.length < k) return new Set([w.join(" ")]);
    return new Set(w.slice(0, w.length - k + 1).map((_, i) => w.slice(i, i + k).join(" ")));
  };
  const sa = shingles(a), sb = shingles(b);
  const common = [...sa].filter((s) => sb.has(s)).length;
  return common / (sa.size + sb.size - common);
}

/** Drops by a Deduper keyed by the reddit fullname (unique per post), so only the near check drops. */
async function nearDuplicatesIn(posts: Envelope<RedditPost>[], near: object) {
  const deduper = await createStage<ValidItem, ValidItem>(dedupeStage, {
    key: ["guid"],
    near,
    merge: false,
  });
  const c = await run(deduper, posts);
  // Keyed by guid, a post leaves under its key's id: a near duplicate names it.
  const guidOf = new Map<string, string>();
  for (const p of c.emitted) guidOf.set(p.id, p.payload.guid as string);
  return {
    emitted: c.emitted.map((e) => posts.find((p) => p.event === e.event)!),
    pairs: c.dropped.map((d) => {
      const copyOf = /^near-duplicate of ([0-9a-f]{32})$/.exec(d.reason)?.[1];
      assert.ok(copyOf && guidOf.has(copyOf), d.reason);
      return [(d.item.payload as RedditPost).guid, guidOf.get(copyOf)!];
    }),
  };
}

/** Every later post whose text (title when empty) has a true Jaccard >= threshold with an earlier one. */
function trueCopies(posts: Envelope<RedditPost>[], threshold: number, k: number): string[] {
  const texts = posts.map((p) => p.payload.text || p.payload.title!);
  return posts.filter((_, j) => texts.slice(0, j).some((t) => jaccard(t, texts[j], k) >= threshold))
    .map((p) => p.payload.guid);
}

fixtureTest(
  "near duplicates on the real reddit listing: reposts are caught, distinct posts pass",
  async () => {
    const posts = await redditAllNew();
    // Link posts have no selftext, so their titles are compared.
    const { emitted, pairs } = await nearDuplicatesIn(posts, { threshold: 0.8 });
    assert.deepEqual(pairs, [
      ["t3_5jo137", "t3_5jo13g"], // "Three Days of the Condor (1975) [Dir: Sydney Pollack]", same bot
      ["t3_5jo12t", "t3_5jo13g"], // ... reposted by another account
      ["t3_5jo10y", "t3_5jo13j"], // "Pretty cool 4v5 fight I had today as Thresh top!"
    ]);
    assert.deepEqual(pairs.map(([copy]) => copy), trueCopies(posts, 0.8, 3));
    assert.equal(emitted.length, 97);
    // The bot floods are distinct posts in one template, not copies: none may be dropped.
    for (const author of ["Theoutlaw1911", "AutoNewsAdmin"]) {
      const flood = posts.filter((p) => p.payload.author === author);
      assert.ok(flood.length >= 8, author);
      assert.ok(flood.every((p) => emitted.includes(p)), `every post by ${author} passes`);
    }
  },
);

fixtureTest(
  "near duplicates with a lower threshold also catch reworded reposts, and nothing else",
  async () => {
    const posts = await redditAllNew();
    const { pairs } = await nearDuplicatesIn(posts, { threshold: 0.6, shingle: 1 });
    assert.deepEqual(pairs.slice(3), [
      ["t3_5jo10n", "t3_5jo130"], // "[World] - Mongolia pledges ..." vs "(SCMP) Mongolia pledges ..."
      ["t3_5jo10g", "t3_5jo120"], // "Corporate Propaganda ... | The Young Turks" vs "... - TYT"
    ]);
    assert.deepEqual(pairs.map(([copy]) => copy), trueCopies(posts, 0.6, 1));
  },
);

Deno.test("near check: duplicates are not compared, and a near duplicate's key is not kept", async () => {
  const deduper = await createStage<ValidItem, ValidItem>(dedupeStage, { near: {}, merge: false });
  const story = "Uber has halted its self-driving car pilot in San Francisco after California " +
    "regulators revoked the registrations of its sixteen autonomous vehicles on Wednesday " +
    "evening. The company said it would look at where it could redeploy the cars, but " +
    "remained fully committed to its plans for autonomous ride hailing in the state.";
  const a = item("https://example.com/a", "Uber halts", story);
  const exactCopy = item("https://example.com/a", "Uber halts", story);
  const b = item("https://example.com/b", "Uber halts", story.replace("Wednesday", "Thursday"));
  const c1 = await run(deduper, [a, exactCopy, b]);
  assert.deepEqual(c1.emitted, [a]);
  assert.deepEqual(reasons(c1), ["duplicate", `near-duplicate of ${a.id}`]);

  // b's url was released with it: a different story at that url is new.
  const other = item(
    "https://example.com/b",
    "Hong Kong",
    "Hong Kong customs seize a firearms package at the airfreight terminal.",
  );
  assert.deepEqual((await run(deduper, [other])).emitted, [other]);
  // And a redelivery of a is not a near duplicate of itself.
  assert.deepEqual((await run(deduper, [a])).emitted, [a]);
});

Deno.test("near check: a text too short to tell stories apart is compared with its title", async () => {
  // Hacker News's RSS gives every item the description "Comments": signed alone, every
  // story of the feed was a near duplicate of its first, and 7 of 8 were dropped.
  const deduper = await createStage<ValidItem, ValidItem>(dedupeStage, { near: {}, merge: false });
  const titles = [
    "Show HN: A tiny Lisp in 500 lines of Rust",
    "The unreasonable effectiveness of SQLite",
    "Why we moved our build system to Bazel",
    "A visual guide to the Fourier transform",
  ];
  const stories = titles.map((t, i) => item(`https://site${i}.example/post`, t, "Comments"));
  assert.deepEqual((await run(deduper, stories)).emitted, stories);
  // A copy with the same title and text under another url is still a near duplicate.
  const repost = item("https://mirror.example/post", titles[1], "Comments");
  assert.deepEqual(reasons(await run(deduper, [repost])), [`near-duplicate of ${stories[1].id}`]);
  // An item whose text has no words at all: its title stands in, and a copy of it is one.
  const bare = item("https://bare.example/a", "Notes on a quiet week in the archives", "   ");
  assert.deepEqual((await run(deduper, [bare])).emitted, [bare]);
  const bareCopy = item("https://mirror.example/other", bare.payload.title, "");
  assert.deepEqual(reasons(await run(deduper, [bareCopy])), [`near-duplicate of ${bare.id}`]);
});

Deno.test("near check: short texts under one shared title are told apart by their text", async () => {
  // A reddit thread's comments each take the thread's title: signed as one run of words with
  // it, "ez" and "Just sayin'..." were near duplicates of "I'm sorry", and merged away.
  const deduper = await createStage<ValidItem, ValidItem>(dedupeStage, { near: {}, merge: false });
  const thread = "What is the most useless talent you have that you are proud of anyway";
  const comments = ["I'm sorry", "ez", '"Just sayin\'..."', "I can lick my elbow", "Nope"].map(
    (text, i) => item(`https://www.reddit.com/r/AskReddit/comments/4r1tos/_/c${i}/`, thread, text),
  );
  assert.deepEqual((await run(deduper, comments)).emitted, comments);
  // The same short comment again under the same title is still one.
  const again = item("https://www.reddit.com/r/AskReddit/comments/4r1tos/_/c9/", thread, "ez");
  assert.deepEqual(reasons(await run(deduper, [again])), [`near-duplicate of ${comments[1].id}`]);
});

Deno.test("near entries expire with the ttl", async () => {
  const { deduper, clock } = clocked({ ttl: "2h", near: { threshold: 0.8 } });
  const text =
    "Ancient supervolcano that caused the largest eruption in European history is stirring again";
  assert.equal((await run(deduper, [item("https://a.example/1", "A", text)])).emitted.length, 1);
  clock.now += HOUR;
  assert.match(
    reasons(await run(deduper, [item("https://a.example/2", "A", text)]))[0],
    /^near-duplicate of /,
  );
  clock.now += HOUR;
  assert.equal((await run(deduper, [item("https://a.example/3", "A", text)])).emitted.length, 1);
});

Deno.test("the store is a seam: a custom DedupeStore gets every claim, one call per batch", async () => {
  const calls: { claims: ClaimRequest[]; now: number; ttl: number }[] = [];
  const inner = new MemoryDedupeStore();
  const store: DedupeStore = {
    claimMany(claims, now, ttl): Claim[] {
      calls.push({ claims: [...claims], now, ttl });
      return inner.claimMany(claims, now, ttl);
    },
    release: (claims) => inner.release(claims),
    mergeMany: (copies, now, ttl) => inner.mergeMany(copies, now, ttl),
  };
  const deduper = new Deduper(dedupeConfigSchema.parse({ ttl: "5m", merge: false }), {
    store,
    now: () => 42,
  });
  const a = item("https://example.com/a");
  const copy = item("https://example.com/a");
  const c = await run(deduper, [a, copy]);
  assert.deepEqual(reasons(c), ["duplicate"]);
  assert.equal(calls.length, 1);
  const key = deduper.keyOf(a.payload)!;
  assert.match(key, /^[0-9a-f]{32}$/);
  assert.deepEqual(calls[0], {
    claims: [{ key, event: a.event }, { key, event: copy.event }],
    now: 42,
    ttl: 300_000,
  });
});

Deno.test("an asynchronous store is awaited, and nothing is reported before it answers", async () => {
  let answer!: (claims: Claim[]) => void;
  const store: DedupeStore = {
    claimMany: () => new Promise<Claim[]>((resolve) => answer = resolve),
    release: () => {},
    mergeMany: () => [],
  };
  const deduper = new Deduper(dedupeConfigSchema.parse({ merge: false }), { store });
  const batch = [item("https://example.com/a"), item("https://example.com/b")];
  const c = collector<ValidItem>();
  const pending = deduper.handle(batch, c.out, testContext("dedupe"));
  assert.ok(pending instanceof Promise);
  await Promise.resolve();
  assert.equal(c.emitted.length + c.dropped.length, 0, "nothing reported yet");
  answer(["new", "duplicate"]);
  await pending;
  assert.deepEqual(c.emitted, [batch[0]]);
  assert.deepEqual(c.dropped.map((d) => [d.item, d.reason]), [[batch[1], "duplicate"]]);
});

Deno.test("the in-memory path answers synchronously, near check included", () => {
  const deduper = new Deduper(dedupeConfigSchema.parse({ near: {}, merge: false }));
  const c = collector<ValidItem>();
  const text = "The quick brown fox jumps over the lazy dog near the river bank today";
  const returned = deduper.handle(
    [item("https://example.com/a", "A", text), item("https://example.com/b", "B", text)],
    c.out,
    testContext("dedupe"),
  );
  assert.equal(returned, undefined);
  assert.equal(c.emitted.length, 1);
  assert.match(c.dropped[0].reason, /^near-duplicate of /);
});

Deno.test("the in-memory store stays exact as its claims expire, grow its table and are compacted", () => {
  const store = new MemoryDedupeStore();
  const key = (i: number) => hash128("key " + i);
  for (let i = 0; i < 3_000; i++) {
    assert.equal(store.claim(key(i), "e" + i, i, 500), "new");
    // Every fourth key is released (a near duplicate's), leaving dead slots behind.
    if (i % 4 === 3) store.release([{ key: key(i), event: "e" + i }]);
  }
  // Keys claimed at 2500..2999 are live at 2999 (less the released), the older ones evicted.
  assert.equal(store.size, 375);
  for (let i = 2_500; i < 3_000; i++) {
    const want = i % 4 === 3 ? "new" : "duplicate";
    assert.equal(store.claim(key(i), "other", 2_999, 500), want, `key ${i}`);
  }
  for (let i = 2_500; i < 3_000; i++) {
    const want = i % 4 === 3 ? "duplicate" : "same-event"; // released ones now belong to "other"
    assert.equal(store.claim(key(i), "e" + i, 2_999, 500), want, `key ${i}`);
  }
  for (let i = 0; i < 500; i++) assert.equal(store.claim(key(i), "later", 2_999, 500), "new");
  // Keys that are not hex hashes are held as exactly.
  assert.equal(store.claim("https://example.com/a", "x", 2_999, 500), "new");
  assert.equal(store.claim("https://example.com/a", "y", 2_999, 500), "duplicate");
  assert.equal(store.claim("https://example.com/b", "y", 2_999, 500), "new");
});

Deno.test("config: the documented YAML example parses and typos are refused", async () => {
  const source = await Deno.readTextFile(new URL("../../actors/deduper.ts", import.meta.url));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(
    source.slice(source.indexOf("export const dedupeStage") - 400),
  )![1]
    .replace(/^ \* ?/gm, "");
  const config = dedupeConfigSchema.parse(parseYaml(yaml)[0].dedupe);
  assert.deepEqual(config, {
    key: ["url", "title"],
    ttl: 24 * HOUR,
    maxItems: 200_000,
    near: { field: "text", threshold: 0.8, shingle: 3, maxItems: 200_000 },
    merge: true,
    engagement: ["score", "comments", "likes"],
  });
  assert.deepEqual(dedupeConfigSchema.parse({}), {
    key: ["url"],
    ttl: 24 * HOUR,
    merge: true,
    engagement: ["score", "comments", "likes", "shares", "views"],
  });
  // The bloom filter's settings are gone but any value still loads, so older flows do.
  assert.equal(dedupeConfigSchema.parse({ expected: 1000, errorRate: 0.01 }).ttl, 24 * HOUR);
  assert.equal(dedupeConfigSchema.parse({ expected: "abc", errorRate: 2 }).ttl, 24 * HOUR);
  // A ttl of 0 would remember nothing, so catch nothing.
  assert.throws(() => dedupeConfigSchema.parse({ ttl: "0s" }), /above zero/);
  assert.throws(() => dedupeConfigSchema.parse({ keys: ["url"] }));
  assert.throws(() => dedupeConfigSchema.parse({ ttl: "a day" }));
  assert.throws(() => dedupeConfigSchema.parse({ near: { threshold: 1.5 } }));
  assert.throws(() => dedupeConfigSchema.parse({ near: { treshold: 0.9 } }));
  assert.deepEqual(dedupeStage.needs!(config), ["valid"]);
  assert.deepEqual(dedupeStage.adds, ["unique"]);
});

Deno.test("a misspelt key field or near field is said once, not left to change the results unseen", async () => {
  const deduper = await createStage<RawItem, RawItem>(dedupeStage, {
    key: ["nope"],
    near: { field: "body" },
  });
  const ctx = testContext("dedupe");
  const c = collector<RawItem>();
  const items = [
    envelope({ title: "A story about caches", url: "https://example.com/a", text: "x" }, "s"),
    envelope({ title: "Another story entirely", url: "https://example.com/b", text: "y" }, "s"),
  ];
  await deduper.handle(items, c.out, ctx);
  await deduper.handle(
    [envelope({ title: "Third", url: "https://example.com/c" }, "s")],
    c.out,
    ctx,
  );
  const lines = (ctx.log as ReturnType<typeof memoryLogger>).lines;
  assert.equal(lines.length, 2, lines.join("\n"));
  assert.match(
    lines[0],
    /test: dedupe: item \w+ has none of the key fields \["nope"\]: keyed by its id/,
  );
  assert.match(
    lines[1],
    /test: dedupe: an item of source s \(https:\/\/example\.com\/a\) has no "body" for the near check: its title stands in \(said once; if that source's items all lack it, that is expected, else check near\.field\)/,
  );
  // Fields that are there say nothing.
  const quiet = await createStage<RawItem, RawItem>(dedupeStage, { key: ["title"], near: {} });
  const ctx2 = testContext("dedupe");
  await quiet.handle(items, collector<RawItem>().out, ctx2);
  assert.deepEqual((ctx2.log as ReturnType<typeof memoryLogger>).lines, []);
});

Deno.test("a flow that still sets the bloom filter's expected or errorRate is warned they do nothing", async () => {
  const log = memoryLogger();
  const env = { flow: "news", baseDir: ".", outDir: ".", log, registry: new Registry() };
  await dedupeStage.create(dedupeConfigSchema.parse({ expected: 1000 }), env);
  assert.equal(log.lines.length, 1);
  assert.match(log.lines[0], /news: dedupe: expected and errorRate are ignored .*remove them/);
  await dedupeStage.create(dedupeConfigSchema.parse({}), env);
  assert.equal(log.lines.length, 1, "no warning without them");
});

Deno.test("a durable flow that sets maxItems is told it bounds only what a flow keeps in process", async () => {
  const log = memoryLogger();
  const env = { flow: "news", baseDir: ".", outDir: ".", log, registry: new Registry() };
  const durable = { redis: {} as never, keys: {} as never };
  await dedupeStage.create(dedupeConfigSchema.parse({ maxItems: 5000 }), { ...env, durable });
  assert.equal(log.lines.length, 1);
  assert.match(log.lines[0], /news: dedupe: maxItems bounds what a flow keeps in process; .*Redis/);
  await dedupeStage.create(dedupeConfigSchema.parse({}), { ...env, durable });
  await dedupeStage.create(dedupeConfigSchema.parse({ maxItems: 5000 }), env);
  assert.equal(log.lines.length, 1, "not without maxItems, nor in memory");
});

Deno.test("a deletion passes the deduper even when its url was seen, after the batch's other items", async () => {
  const deduper = await createStage<RawItem, RawItem>(dedupeStage, { key: ["url"] });
  const seen = envelope({ title: "A story", url: "https://example.com/a" }, "s");
  await run(deduper, [seen]);
  const gone = envelope({ url: "https://example.com/a", deleted: true }, "s");
  const fresh = envelope({ title: "Another story", url: "https://example.com/b" }, "s");
  const c = await run(deduper, [gone, fresh]);
  assert.deepEqual(c.emitted.map((i) => i.payload.url), [
    "https://example.com/b",
    "https://example.com/a",
  ]);
  assert.equal(c.dropped.length, 0);
});

Deno.test("with a key other than [url], a deletion that carries the key leaves under its story's id", async () => {
  const deduper = await createStage<RawItem, RawItem>(dedupeStage, { key: ["title"] });
  const story = envelope({ title: "A story", url: "https://example.com/a" }, "s");
  const [published] = (await run(deduper, [story])).emitted;
  assert.notEqual(published.id, story.id, "re-ided by its key");
  const gone = envelope({ title: "A story", url: "https://example.com/a", deleted: true }, "s");
  // Before: the delete kept its url's id, which no sink had a row for.
  assert.deepEqual((await run(deduper, [gone])).emitted.map((i) => i.id), [published.id]);
  // Without the key's fields it cannot be placed, and keeps its own id.
  const bare = envelope({ url: "https://example.com/a", deleted: true }, "s");
  assert.deepEqual((await run(deduper, [bare])).emitted.map((i) => i.id), [bare.id]);
});

Deno.test("near.threshold 0.4 catches copies just above it, as 0.8 does its own", async () => {
  // The banding was 10x4 whatever the threshold: copies of true Jaccard about 0.5 were looked at
  // about half the time, so threshold 0.4 caught under half of them.
  const items = nearPairs(200);
  const result = await runStage(dedupeStage, items, { near: { threshold: 0.4 } });
  const caught = result.dropped.filter((d) => d.label === "near-duplicate").length;
  assert.ok(caught >= 190, `${caught} of 200 copies caught`);
  assert.ok(
    result.dropped.every((d) => String(d.item.payload.title).startsWith("b")),
    "no original is taken for a copy",
  );
});
