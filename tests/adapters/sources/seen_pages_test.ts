import assert from "node:assert/strict";
import { SEEN_PAGES_LIMIT, SeenPages } from "../../../adapters/sources/_seen_pages.ts";

const url = (i: number) => `https://example.com/story/${i}`;

Deno.test("the seen set keeps the newest 10,000 pages and forgets the oldest", () => {
  const seen = new SeenPages();
  assert.equal(seen.limit, SEEN_PAGES_LIMIT);
  assert.equal(SEEN_PAGES_LIMIT, 10_000);
  for (let i = 0; i < 10_005; i++) seen.add(url(i));
  assert.equal(seen.size, 10_000);
  assert.equal(seen.keys().length, 10_000);
  for (let i = 0; i < 5; i++) assert.equal(seen.has(url(i)), false, url(i));
  for (const i of [5, 5_000, 10_004]) assert.equal(seen.has(url(i)), true, url(i));
});

Deno.test("seeing a page again makes it the newest, so it is forgotten last", () => {
  const seen = new SeenPages(3);
  for (const i of [1, 2, 3]) seen.add(url(i));
  seen.add(url(1));
  seen.add(url(4));
  assert.deepEqual([1, 2, 3, 4].map((i) => seen.has(url(i))), [true, false, true, true]);
});

Deno.test("pages are one by canonical URL, and keys restore into a smaller limit newest first", () => {
  const seen = new SeenPages();
  seen.add("HTTPS://Example.com/story/1/?utm_source=rss#top");
  assert.equal(seen.has(url(1)), true);
  for (const i of [2, 3]) seen.add(url(i));
  const keys = seen.keys();
  assert.ok(keys.every((k) => /^[0-9a-f]{16}$/.test(k)));
  const small = new SeenPages(2);
  small.restore(keys);
  assert.deepEqual([1, 2, 3].map((i) => small.has(url(i))), [false, true, true]);
  assert.throws(() => small.restore("nope"), /expected an array of 16-hex-digit page keys/);
});
