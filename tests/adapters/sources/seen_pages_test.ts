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

Deno.test("polls that list more pages than the limit fetch only the pages past it again, not the whole site", () => {
  // What a poll of a sitemap does: each listed page not seen is fetched and added.
  const seen = new SeenPages(3);
  const fetched: number[] = [];
  for (let poll = 0; poll < 3; poll++) {
    seen.beginPoll();
    for (let i = 1; i <= 5; i++) {
      if (seen.seen(url(i))) continue;
      fetched.push(i);
      seen.add(url(i));
    }
    assert.equal(seen.overLimit, 2, "two pages of the poll could not be remembered");
  }
  // Before: each page pushed out the oldest, met further down as new: 15 fetches.
  assert.deepEqual(fetched, [1, 2, 3, 4, 5, 4, 5, 4, 5]);
});

Deno.test("a page a poll still lists is kept; the pages forgotten are those no longer listed", () => {
  const seen = new SeenPages(3);
  seen.beginPoll();
  for (const i of [1, 2, 3]) seen.add(url(i));
  seen.beginPoll();
  assert.equal(seen.seen(url(1)), true); // 1 is still listed; 2 and 3 are not
  seen.add(url(4));
  seen.add(url(5));
  assert.deepEqual([1, 2, 3, 4, 5].map((i) => seen.has(url(i))), [true, false, false, true, true]);
});
