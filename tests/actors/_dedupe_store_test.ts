import assert from "node:assert/strict";
import { MemoryDedupeStore, type MergeRequest } from "../../actors/_dedupe_store.ts";
import { hash128 } from "../../engine/hash.ts";

const keys = (from: number, to: number) => {
  const out: string[] = [];
  for (let i = from; i < to; i++) out.push(hash128(`item ${i}`));
  return out;
};

const mergeRequest = (key: string, at: number): MergeRequest => ({
  story: key,
  own: key,
  mode: "first",
  source: "test",
  url: `https://example.com/${key}`,
  seenAt: at,
  engagement: {},
});

Deno.test("in-memory store: at most maxItems keys and stories whatever the ttl; the oldest leave first, a recent duplicate is still caught", () => {
  const store = new MemoryDedupeStore({ maxItems: 1_000 });
  const added = keys(0, 10_000);
  const day = 86_400_000;
  for (const [i, key] of added.entries()) {
    assert.deepEqual(store.claimMany([{ key, event: `e${i}` }], i, day), ["new"]);
    store.mergeMany([mergeRequest(key, i)], i, day);
  }
  assert.equal(store.size, 1_000, "keys held");
  assert.equal(store.stories, 1_000, "stories held");
  const now = 10_000;
  // The newest 1,000 are held: another event's copy is a duplicate and joins its story.
  for (const key of added.slice(9_000)) {
    assert.deepEqual(store.claimMany([{ key, event: "copy" }], now, day), ["duplicate"]);
  }
  const [joined] = store.mergeMany(
    [{ ...mergeRequest(added[9_999], now), mode: "duplicate", source: "other" }],
    now,
    day,
  );
  assert.equal(joined?.r, 2, "the duplicate joined the story its key kept");
  // The oldest left before their ttl: a copy of one is taken as new (documented).
  assert.deepEqual(store.claimMany([{ key: added[0], event: "late" }], now, day), ["new"]);
  assert.equal(store.size, 1_000);
});

Deno.test("in-memory store: released and re-claimed keys keep the count and the order exact", () => {
  const store = new MemoryDedupeStore({ maxItems: 100 });
  const added = keys(0, 1_000);
  for (const [i, key] of added.entries()) {
    store.claim(key, `e${i}`, 0, 1_000);
    // Every third key is released, as a near duplicate's is.
    if (i % 3 === 1) store.release([{ key, event: `e${i}` }]);
  }
  assert.equal(store.size, 100);
  // Held: the newest 100 keys that were not released.
  const kept = added.filter((_, i) => i % 3 !== 1);
  for (const key of kept.slice(-100)) assert.equal(store.claim(key, "copy", 0, 1_000), "duplicate");
  // The newest key that left for the count: a copy of it is new.
  assert.equal(store.claim(kept[kept.length - 101], "copy", 0, 1_000), "new");
});

// Stories are kept as JSON, read into objects for a batch and stored once it
// is folded: these answers are the ones the store gave when it kept the
// objects themselves (a throwaway run of both on the same copies).
Deno.test("in-memory store: stories a batch evicts while it folds them stay gone in later batches", () => {
  const store = new MemoryDedupeStore({ maxItems: 2 });
  const [a, b, c] = keys(0, 3);
  const day = 86_400_000;
  const copy = (key: string, at: number, source: string, mode: MergeRequest["mode"]) => ({
    ...mergeRequest(key, at),
    source,
    mode,
    engagement: { points: at },
  });
  // Three first copies in one batch: c's story pushes out a's, made by the same batch.
  const first = store.mergeMany(
    [mergeRequest(a, 1), mergeRequest(b, 2), mergeRequest(c, 3)],
    3,
    day,
  );
  assert.deepEqual(first.map((s) => s?.r), [1, 1, 1]);
  assert.equal(store.stories, 2);
  const url = `https://example.com/${b}`;
  const second = store.mergeMany(
    [
      copy(b, 10, "other", "duplicate"),
      copy(b, 5, "other", "duplicate"), // the same sighting, seen earlier
      // a's story is gone: its copy starts a pending one, which pushes out b's...
      copy(a, 11, "other", "duplicate"),
      // ...so c, near-equal to b, finds b gone: pending, and an alias at c.
      { ...copy(c, 12, "third", "near"), story: b },
    ],
    12,
    day,
  );
  assert.deepEqual(second.map((s) => s?.r), [2, 3, undefined, undefined]);
  assert.deepEqual(second[0]?.s, [["test", url, 2], ["other", url, 10]], "as it was then");
  assert.deepEqual(second[1]?.s, [["test", url, 2], ["other", url, 5]]);
  assert.deepEqual(second[1]?.g, { points: 10 });
  assert.equal(store.stories, 3, "two stories, and the alias at c, capped apart");
  // Later batches read what the second one stored: b pending, c an alias to it.
  assert.deepEqual(store.mergeMany([copy(c, 20, "fourth", "duplicate")], 20, day), [undefined]);
  assert.deepEqual(store.mergeMany([copy(b, 21, "fifth", "duplicate")], 21, day), [undefined]);
  // The first copy of b's new story comes: it takes the pending sightings in, c's among them.
  const [taken] = store.mergeMany([copy(b, 30, "test", "first")], 30, day);
  assert.equal(taken?.id, b);
  assert.deepEqual(taken?.s.map((x) => x[0]).sort(), ["fifth", "fourth", "test", "third"]);
});
