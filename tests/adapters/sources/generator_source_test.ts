import assert from "node:assert/strict";
import {
  type GeneratedItems,
  generateItems,
  generatorConfig,
  generatorSource,
} from "../../../adapters/sources/generator_source.ts";
import { dedupeConfigSchema, Deduper } from "../../../actors/deduper.ts";
import { createValidator, validateConfigSchema } from "../../../actors/validator.ts";
import type { Actor, Outcome, StageContext } from "../../../engine/actor.ts";
import { type Envelope, envelope, type RawItem, type ValidItem } from "../../../engine/item.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { Registry } from "../../../engine/registry.ts";
import type { Source } from "../../../engine/source.ts";

const DEFAULT = generateItems();

async function source(config: Record<string, unknown>): Promise<Source> {
  const env = {
    flow: "test",
    baseDir: ".",
    outDir: ".",
    log: memoryLogger(),
    registry: new Registry(),
  };
  return await generatorSource.create(generatorConfig.parse(config), env);
}

async function readAll(src: Source, signal = new AbortController().signal): Promise<RawItem[][]> {
  const batches: RawItem[][] = [];
  for await (const batch of src.read(signal)) batches.push(batch);
  return batches;
}

/** Word 3-shingles of lower-cased words, as sorted 32-bit hashes (fast to intersect). */
function shingles(text: string): Int32Array {
  const words = text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  const out = new Set<number>();
  for (let i = 0; i + 2 < words.length; i++) {
    out.add(fnv1a(`${words[i]} ${words[i + 1]} ${words[i + 2]}`));
  }
  return Int32Array.from(out).sort();
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h | 0;
}

function jaccard(a: Int32Array, b: Int32Array): number {
  let i = 0, j = 0, shared = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) shared++, i++, j++;
    else if (a[i] < b[j]) i++;
    else j++;
  }
  return shared / (a.length + b.length - shared);
}

/** The demo flow's validate rules: require [title, url], title min 5, spam [casino]. */
function brokenRules(item: RawItem): string[] {
  const broken: string[] = [];
  if (!item.title) broken.push("no title");
  if (!item.url) broken.push("no url");
  if (item.url && !/^https?:\/\/[^/]+\.[a-z]+\//.test(item.url)) broken.push("bad url");
  if (item.title && item.title.length < 5) broken.push("short title");
  if (/casino/i.test(`${item.title ?? ""} ${item.text ?? ""}`)) broken.push("spam");
  return broken;
}

const indexesOf = (g: GeneratedItems, label: string) =>
  g.labels.flatMap((l, i) => (l === label ? [i] : []));

Deno.test("default config: 5000 items with exact counts of each kind", () => {
  const { items, stats, labels } = DEFAULT;
  assert.equal(items.length, 5000);
  assert.deepEqual(stats, {
    total: 5000,
    duplicates: 400,
    nearDuplicates: 200,
    invalid: 200,
    unique: 4200,
  });
  const counts = Object.fromEntries(["unique", "duplicate", "near", "invalid"].map((l) => [
    l,
    labels.filter((x) => x === l).length,
  ]));
  assert.deepEqual(counts, { unique: 4200, duplicate: 400, near: 200, invalid: 200 });
  assert.equal(labels[0], "unique");
  const odd = generateItems({ count: 333, duplicates: 0.1, nearDuplicates: 0.05, invalid: 0.07 });
  assert.deepEqual(odd.stats, {
    total: 333,
    duplicates: 33,
    nearDuplicates: 17,
    invalid: 23,
    unique: 260,
  });
});

Deno.test("the same seed gives the same items, another seed other items", () => {
  const again = generateItems({ seed: 42 });
  assert.deepEqual(again.items, DEFAULT.items);
  assert.deepEqual(again.labels, DEFAULT.labels);
  const other = generateItems({ seed: 7 });
  assert.notDeepEqual(other.items[0], DEFAULT.items[0]);
  assert.equal(new Set([...other.items, ...DEFAULT.items].map((i) => i.url)).size > 9000, true);
});

Deno.test("items look like tech news: title, url, 80-200 words, author, date, site, tags, engagement", () => {
  const uniques = indexesOf(DEFAULT, "unique").map((i) => DEFAULT.items[i]);
  for (const item of uniques) {
    assert.ok(typeof item.title === "string" && item.title.length >= 15, item.title);
    assert.match(item.url ?? "", /^https:\/\/[a-z.]+\/20\d\d\/[a-z0-9-]+-\d+$/);
    const words = (item.text as string).split(" ").length;
    assert.ok(words >= 80 && words <= 200, `${words} words`);
    assert.match(item.author ?? "", /^\S+ .+$/);
    assert.equal(new Date(item.publishedAt!).toISOString(), item.publishedAt);
    assert.equal(item.url!.split("/")[3], item.publishedAt!.slice(0, 4));
    assert.equal(typeof item.site, "string");
    assert.equal(item.tags?.length, 2);
    assert.ok(item.engagement!.score! >= 1 && item.engagement!.comments! >= 0);
  }
  assert.equal(new Set(uniques.map((i) => new URL(i.url!).hostname)).size, 12);
  assert.equal(new Set(uniques.map((i) => i.title)).size, uniques.length);
  assert.equal(new Set(uniques.map((i) => i.url)).size, uniques.length);
  assert.ok(new Set(uniques.map((i) => i.author)).size > 1000);
});

Deno.test("exact duplicates copy an earlier unique item; half carry utm tracking parameters", () => {
  const dups = indexesOf(DEFAULT, "duplicate");
  let tracked = 0;
  for (const i of dups) {
    const o = DEFAULT.origin[i];
    assert.ok(o >= 0 && o < i && DEFAULT.labels[o] === "unique");
    const dup = DEFAULT.items[i], orig = DEFAULT.items[o];
    const url = new URL(dup.url!);
    if (url.search) {
      tracked++;
      assert.deepEqual([...url.searchParams.keys()], ["utm_source", "utm_medium"]);
    }
    url.search = "";
    assert.equal(url.href, orig.url);
    assert.deepEqual({ ...dup, url: orig.url }, orig);
    assert.notEqual(dup, orig);
  }
  assert.equal(tracked, 200);
});

Deno.test("near duplicates: another site and url, a retouched title, text Jaccard >= 0.9", () => {
  const nears = indexesOf(DEFAULT, "near");
  const titleChanges = { suffix: 0, lower: 0, punctuation: 0 };
  for (const i of nears) {
    const o = DEFAULT.origin[i];
    assert.ok(o >= 0 && o < i && DEFAULT.labels[o] === "unique");
    const near = DEFAULT.items[i], orig = DEFAULT.items[o];
    assert.notEqual(new URL(near.url!).hostname, new URL(orig.url!).hostname);
    assert.notEqual(near.site, orig.site);
    assert.notEqual(near.title, orig.title);
    if (near.title === `${orig.title} | ${near.site}`) titleChanges.suffix++;
    else if (near.title === orig.title!.toLowerCase()) titleChanges.lower++;
    else titleChanges.punctuation++;
    assert.notEqual(near.text, orig.text);
    const j = jaccard(shingles(near.text as string), shingles(orig.text as string));
    assert.ok(j >= 0.9, `near duplicate ${i} of ${o}: Jaccard ${j}`);
  }
  assert.ok(Object.values(titleChanges).every((n) => n >= 60), JSON.stringify(titleChanges));
  // A near duplicate's url is its own: no other item has it, even without the query.
  const urlCount = new Map<string, number>();
  for (const item of DEFAULT.items) {
    const url = item.url?.split("?")[0] ?? "";
    urlCount.set(url, (urlCount.get(url) ?? 0) + 1);
  }
  assert.ok(nears.every((i) => urlCount.get(DEFAULT.items[i].url!) === 1));
});

Deno.test("invalid items break exactly one demo validate rule, each kind equally often", () => {
  const kinds = new Map<string, number>();
  for (const [i, item] of DEFAULT.items.entries()) {
    const broken = brokenRules(item);
    if (DEFAULT.labels[i] === "invalid") {
      assert.equal(broken.length, 1, `item ${i} breaks ${broken.join(", ")}`);
      kinds.set(broken[0], (kinds.get(broken[0]) ?? 0) + 1);
    } else {
      assert.deepEqual(broken, [], `valid item ${i}`);
    }
  }
  assert.deepEqual(Object.fromEntries(kinds), {
    "no title": 40,
    "no url": 40,
    "bad url": 40,
    "short title": 40,
    "spam": 40,
  });
});

Deno.test("distinct items are far apart: text Jaccard < 0.3 within every site and across", () => {
  const distinct = DEFAULT.items.flatMap((item, i) =>
    DEFAULT.labels[i] === "unique" || DEFAULT.labels[i] === "invalid"
      ? [{ site: item.site, sh: shingles(item.text as string) }]
      : []
  );
  let worst = 0, pairs = 0;
  for (let a = 0; a < distinct.length; a++) {
    for (let b = a + 1; b < distinct.length; b++) {
      if (distinct[a].site !== distinct[b].site) continue;
      worst = Math.max(worst, jaccard(distinct[a].sh, distinct[b].sh));
      pairs++;
    }
  }
  let state = 1;
  const next = () => (state = (Math.imul(state, 48271) >>> 0) % 2147483647) % distinct.length;
  for (let k = 0; k < 20_000; k++) {
    const a = next(), b = next();
    if (a !== b) worst = Math.max(worst, jaccard(distinct[a].sh, distinct[b].sh)), pairs++;
  }
  assert.ok(pairs > 700_000, `${pairs} pairs`);
  assert.ok(worst < 0.3, `worst Jaccard ${worst}`);
});

Deno.test("the demo flow's validate and dedupe stages keep exactly stats.unique items", async () => {
  const validator = createValidator(
    validateConfigSchema.parse({ require: ["title", "url"], title: { min: 5 }, spam: ["casino"] }),
  );
  const deduper: Actor<ValidItem, ValidItem> = new Deduper(
    dedupeConfigSchema.parse({ key: ["url"], near: { threshold: 0.8 } }),
  );
  const ctx: StageContext = {
    flow: "demo",
    stage: "test",
    signal: new AbortController().signal,
    log: memoryLogger(),
  };
  const tally = () => {
    const t = { emitted: [] as Envelope[], reasons: new Map<string, number>() };
    const count = (_: unknown, reason: string) =>
      void t.reasons.set(reason, (t.reasons.get(reason) ?? 0) + 1);
    // A merge update is news about an item kept earlier, not an item.
    const emit = (e: Envelope) => void (e.update || t.emitted.push(e));
    const out: Outcome = { emit, drop: count, reject: count };
    return { t, out };
  };
  const checked = tally(), unique = tally();
  const envelopes = DEFAULT.items.map((item) => envelope(item, "demo"));
  await validator.handle(envelopes, checked.out, ctx);
  for (let i = 0; i < checked.t.emitted.length; i += 500) {
    const batch = checked.t.emitted.slice(i, i + 500) as Envelope<ValidItem>[];
    await deduper.handle(batch, unique.out as Outcome<ValidItem>, ctx);
  }
  assert.equal(checked.t.emitted.length, 5000 - DEFAULT.stats.invalid);
  assert.deepEqual([...checked.t.reasons.values()], [40, 40, 40, 40, 40]);
  assert.deepEqual(Object.fromEntries(unique.t.reasons), {
    "duplicate": 400,
    "near-duplicate": 200,
  });
  assert.equal(unique.t.emitted.length, DEFAULT.stats.unique);
});

Deno.test("the source yields all items in batches of `batch`, the same on every read", async () => {
  const src = await source({ count: 1234, batch: 500, seed: 3 });
  const batches = await readAll(src);
  assert.deepEqual(batches.map((b) => b.length), [500, 500, 234]);
  assert.deepEqual(batches.flat(), generateItems({ count: 1234, seed: 3 }).items);
  assert.deepEqual((await readAll(src)).flat().map((i) => i.url), batches.flat().map((i) => i.url));
  assert.deepEqual(await readAll(await source({ count: 0 })), []);
});

Deno.test("the source stops when its signal aborts", async () => {
  const src = await source({ count: 100_000, batch: 100 });
  const ctrl = new AbortController();
  let seen = 0;
  await assert.rejects(async () => {
    for await (const batch of src.read(ctrl.signal)) {
      seen += batch.length;
      if (seen === 300) ctrl.abort(new Error("stop"));
    }
  }, /stop/);
  assert.equal(seen, 300);
});

Deno.test("a generator resumed from its checkpoint emits the rest: every item once, in order", async () => {
  const config = { count: 20_000, batch: 500, seed: 7 };
  const first = await source(config);
  const before: RawItem[] = [];
  let position: unknown;
  for await (const batch of first.read(new AbortController().signal)) {
    before.push(...batch);
    position = JSON.parse(JSON.stringify(first.checkpoint!())); // as a durable flow stores it
    if (before.length === 3_500) break; // the process dies here
  }
  assert.deepEqual(position, { emitted: 3_500 });

  const second = await source(config);
  second.resume!(position);
  const after = (await readAll(second)).flat();
  assert.equal(after.length, 16_500);
  // The union is exactly the 20,000 items of an uninterrupted run, once each, in order.
  assert.deepEqual([...before, ...after], generateItems(config).items);
  assert.deepEqual(second.checkpoint!(), { emitted: 20_000 });
});

Deno.test("a generator resumed after a complete pass yields nothing, then polls start over", async () => {
  const src = await source({ count: 1_000, batch: 300 });
  src.resume!({ emitted: 1_000 });
  assert.deepEqual(await readAll(src), []);
  assert.deepEqual(src.checkpoint!(), { emitted: 1_000 });
  const again = await readAll(src);
  assert.deepEqual(again.map((b) => b.length), [300, 300, 300, 100]);
  src.resume!(undefined); // no stored position: a fresh start
  assert.equal((await readAll(src)).flat().length, 1_000);
  assert.throws(() => src.resume!({ emitted: -1 }), /cannot resume from \{"emitted":-1\}/);
  assert.throws(() => src.resume!("3500"), /expected \{ "emitted": <count> \}/);
});

Deno.test("config: defaults, and shares that leave nothing to copy are refused", () => {
  assert.deepEqual(generatorConfig.parse({}), {
    count: 5000,
    seed: 42,
    duplicates: 0.08,
    nearDuplicates: 0.04,
    invalid: 0.04,
    batch: 500,
  });
  assert.throws(
    () => generatorConfig.parse({ duplicates: 0.6, nearDuplicates: 0.3, invalid: 0.2 }),
    /no unique item/,
  );
  assert.throws(() => generatorConfig.parse({ count: 1, duplicates: 1 }), /no unique item/);
  assert.throws(() => generatorConfig.parse({ duplicates: 1.5 }));
  // A bad count is said alone: "no unique item of -5 to copy" came first and misled.
  const bad = generatorConfig.safeParse({ count: -5 });
  assert.deepEqual(bad.error?.issues.map((i) => i.path.join(".")), ["count"]);
  assert.throws(() => generatorConfig.parse({ cuont: 5 }), /cuont/);
  assert.equal(
    generateItems({ count: 10, duplicates: 0, nearDuplicates: 0, invalid: 1 }).stats.invalid,
    10,
  );
});

Deno.test("100,000 items generate with the configured share of unique ones", () => {
  const { items, stats } = generateItems({ count: 100_000 });
  assert.equal(items.length, 100_000);
  assert.equal(stats.unique, 84_000);
});
