import assert from "node:assert/strict";
import { hash128 } from "../../engine/hash.ts";
import { envelope, itemId } from "../../engine/item.ts";

Deno.test("hash128 is stable across runs and processes (golden values)", () => {
  // Ids are stored in sinks: changing the hash would re-insert every item.
  assert.equal(hash128(""), "f7bed5a15b576a1c5b576a1c5b576a1c");
  assert.equal(hash128("a"), "2511c556a5d9f9a3a5d9f9a3a5d9f9a3");
  assert.equal(hash128("https://example.com/a/1").length, 32);
  assert.match(hash128("https://example.com/a/1"), /^[0-9a-f]{32}$/);
});

Deno.test("hash128 gives distinct values for 200k similar keys", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200_000; i++) seen.add(hash128(`https://example.com/2024/post-${i}`));
  assert.equal(seen.size, 200_000);
});

Deno.test("one changed character flips about half the bits", () => {
  let flipped = 0;
  const n = 500;
  for (let i = 0; i < n; i++) {
    const a = BigInt("0x" + hash128(`key-${i}-abcdefgh`));
    const b = BigInt("0x" + hash128(`key-${i}-abcdefgi`));
    flipped += (a ^ b).toString(2).split("").filter((c) => c === "1").length;
  }
  const mean = flipped / n;
  assert.ok(mean > 58 && mean < 70, `mean bits flipped ${mean}, expected about 64`);
});

Deno.test("an item's id comes from its url, else its guid, else title and text", () => {
  const byUrl = itemId({ url: "https://a.example/x", title: "one" });
  assert.equal(byUrl, itemId({ url: "https://a.example/x", title: "another title" }));
  assert.notEqual(
    itemId({ guid: "https://a.example/x" }),
    byUrl,
    "a guid never collides with a url",
  );
  assert.equal(itemId({ guid: "hn:1" }), itemId({ guid: "hn:1", title: "t" }));
  assert.notEqual(itemId({ title: "a", text: "b" }), itemId({ title: "a", text: "c" }));
});

Deno.test("ids stay what they were: files and Redis written by earlier versions hold them", () => {
  // Computed by the version before ids took their fast path (3d35093).
  const pinned: [Record<string, string>, string][] = [
    [{ url: "https://a.example/x" }, "32ae3085477209f1d26b6640dd36acb0"],
    [{ url: "  https://a.example/x\n" }, "32ae3085477209f1d26b6640dd36acb0"],
    [{ url: "\u00a0https://a.example/x" }, "32ae3085477209f1d26b6640dd36acb0"],
    [{ url: "HTTP://A.example:80/x/?utm_source=y" }, "9cb4f70cf688d3d299fbf8c57cb47e2f"],
    [{ url: "https://axn--b.example/a" }, "b6fca1f3b697753963200a5bdf65ffcb"],
    [{ url: "not a url" }, "319fce7eac842b4069446a2fb9abbb2b"],
    [{ url: "   ", guid: "g1" }, "079bfb86e97b7dbce97b7dbce97b7dbc"],
    [{ url: "", title: "t", text: "b" }, "f700efba44030da1d35583f6d35583f6"],
  ];
  for (const [item, id] of pinned) assert.equal(itemId(item), id, JSON.stringify(item));
});

Deno.test("every envelope gets a fresh event, the same content the same id", () => {
  const a = envelope({ url: "https://a.example/x" }, "s");
  const b = envelope({ url: "https://a.example/x" }, "s");
  assert.equal(a.id, b.id);
  assert.notEqual(a.event, b.event);
  assert.equal(a.attempts, 0);
});
