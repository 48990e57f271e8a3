/**
 * Stream entry bodies: envelopes packed into entries of at most `maxItems`
 * items and `maxBytes` bytes of UTF-8 JSON, read back as they went in.
 */
import assert from "node:assert/strict";
import { decodeEntry, encodeEntries } from "../../../engine/redis/codec.ts";
import { deadLetterFields } from "../../../engine/redis/redis_dead_letters.ts";
import { type Envelope, envelope } from "../../../engine/item.ts";

const item = (i: number, text = `text ${i}`): Envelope<unknown> =>
  envelope({ title: `item ${i}`, url: `https://example.com/${i}`, text }, "test");

const read = (entries: { body: Uint8Array }[]) =>
  entries.flatMap((e, i) =>
    decodeEntry(`${i}-0`, ["b", new TextDecoder().decode(e.body)]).items ?? []
  );

Deno.test("entries hold at most maxItems items and read back equal, in order", () => {
  const items = Array.from({ length: 250 }, (_, i) => item(i));
  const entries = encodeEntries(items, 100, 1 << 20);
  assert.deepEqual(entries.map((e) => e.n), [100, 100, 50]);
  assert.deepEqual(read(entries), items);
});

Deno.test("text outside ASCII travels whole, and maxBytes counts its UTF-8 bytes", () => {
  // 300 characters of 3 bytes each: about 1 KB of UTF-8 an item, 300 UTF-16 units.
  const items = Array.from({ length: 6 }, (_, i) => item(i, "語".repeat(300) + " naïve 😀"));
  const one = JSON.stringify(items[0]);
  const bytes = new TextEncoder().encode(one).length;
  assert.ok(bytes > 2 * one.length);
  // Room for two items' bytes (and the brackets and comma), not three.
  const entries = encodeEntries(items, 100, 2 * bytes + 3);
  assert.deepEqual(entries.map((e) => e.n), [2, 2, 2]);
  for (const e of entries) assert.ok(e.body.length <= 2 * bytes + 3);
  assert.deepEqual(read(entries), items);
});

Deno.test("an item larger than maxBytes travels alone, and small ones around it stay packed", () => {
  const big = item(1, "x".repeat(200_000) + "é");
  const items = [item(0), big, item(2), item(3)];
  const entries = encodeEntries(items, 100, 1000);
  assert.deepEqual(entries.map((e) => e.n), [1, 1, 2]);
  assert.deepEqual(read(entries), items);
  // The buffer the big item grew is not in the way of the next call.
  const next = item(4);
  assert.deepEqual(read(encodeEntries([next], 100, 1000)), [next]);
});

Deno.test("no items make no entries", () => {
  assert.deepEqual(encodeEntries([], 100, 1 << 20), []);
});

Deno.test("a dead letter whose item JSON cannot hold keeps the item's id and says why in its payload", () => {
  const item = envelope({ title: "counts", views: 10n ** 30n }, "custom", 1);
  const fields = deadLetterFields({ stage: "validate", reason: "missing url", attempts: 1, item });
  const written = JSON.parse(fields[fields.indexOf("item") + 1]);
  assert.equal(written.id, item.id);
  assert.match(written.payload.unencodable, /BigInt/);
});
