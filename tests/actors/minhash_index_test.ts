import assert from "node:assert/strict";
import { bandingFor, MinHashIndex, positionsNeeded } from "../../actors/_minhash_index.ts";

/** A pseudo-random signature per number (xorshift32): unrelated numbers share no band. */
function signature(n: number): Uint32Array {
  const s = new Uint32Array(64);
  let x = (Math.imul(n + 1, 0x9e3779b1) ^ 0x5bd1e995) >>> 0 || 1;
  for (let i = 0; i < 64; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    s[i] = x >>> 0;
  }
  return s;
}

const id = (n: number) => n.toString(16).padStart(32, "0");
const NEED = positionsNeeded(0.8);

Deno.test("at 200,000 items each costs at most 300 stored bytes, at every size on the way", () => {
  const index = new MinHashIndex();
  let worst = 0;
  for (let n = 0; n < 200_000; n++) {
    index.add(id(n), `e${n}`, signature(n), Infinity);
    if (index.size >= 10_000) worst = Math.max(worst, index.storedBytes / index.size);
  }
  assert.equal(index.size, 200_000);
  assert.ok(worst <= 300, `${worst.toFixed(1)} bytes per item`);
  // Still finds what it holds, by a copy with 6 of 64 positions changed.
  for (const n of [0, 77_777, 199_999]) {
    const copy = signature(n);
    for (let i = 0; i < 64; i += 11) copy[i] ^= 0xff;
    assert.equal(index.find(copy, NEED, 0, "other"), id(n));
  }
});

Deno.test("past maxItems the oldest items are forgotten first", () => {
  const index = new MinHashIndex({ maxItems: 100 });
  for (let n = 0; n < 150; n++) index.add(id(n), `e${n}`, signature(n), Infinity);
  assert.equal(index.size, 100);
  for (let n = 0; n < 150; n++) {
    assert.equal(index.find(signature(n), NEED, 0, "other"), n < 50 ? undefined : id(n), `${n}`);
  }
});

Deno.test("items expire with their ttl; an event it holds matches nothing (a redelivery)", () => {
  const index = new MinHashIndex();
  index.add(id(1), "a", signature(1), 1_000);
  index.add(id(2), "b", signature(2), 2_000);
  assert.equal(index.find(signature(1), NEED, 500, "a"), null, "its own event");
  assert.equal(index.find(signature(1), NEED, 500, "c"), id(1));
  assert.equal(index.evict(1_000), 1);
  assert.equal(index.find(signature(1), NEED, 1_000, "c"), undefined);
  assert.equal(index.find(signature(2), NEED, 1_000, "c"), id(2));
  assert.equal(index.size, 1);
});

Deno.test("the earliest of several matches is reported, and ids of any form come back whole", () => {
  const index = new MinHashIndex();
  index.add("first-story", "a", signature(5), Infinity);
  index.add(id(6), "b", signature(5), Infinity);
  assert.equal(index.find(signature(5), NEED, 0, "c"), "first-story");
});

Deno.test("a band shared by 5,000 items still finds a match among them", () => {
  // 5,000 texts that share band 0 and nothing else: the walk stops at 32, the match is newest.
  const index = new MinHashIndex();
  for (let n = 0; n < 5_000; n++) {
    const s = signature(n);
    s[0] = s[1] = s[2] = 7;
    index.add(id(n), `e${n}`, s, Infinity);
  }
  const late = signature(4_999);
  late[0] = late[1] = late[2] = 7;
  assert.equal(index.find(late, NEED, 0, "other"), id(4_999));
});

Deno.test("a lower threshold bands finer: a copy just above it is found, as at 0.8", () => {
  // With 10 bands of 4 at every threshold, a copy agreeing on 28 of 64 positions (threshold
  // 0.4 needs 26) shared a whole band about a third of the time, and was missed the rest.
  for (const threshold of [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]) {
    const need = positionsNeeded(threshold);
    const index = new MinHashIndex({ banding: bandingFor(threshold) });
    for (let n = 0; n < 200; n++) index.add(id(n), `e${n}`, signature(n), Infinity);
    let found = 0;
    for (let n = 0; n < 200; n++) {
      // need + 2 positions kept, the others changed, which ones drawn from n.
      const copy = signature(n), other = signature(n + 1_000_000);
      const order = Array.from({ length: 64 }, (_, i) => i)
        .sort((a, b) => other[a] % 997 - other[b] % 997 || a - b);
      for (const i of order.slice(need + 2)) copy[i] = (copy[i] & ~0xff) | ((copy[i] + 1) & 0xff);
      if (index.find(copy, need, 0, "other") === id(n)) found++;
    }
    assert.ok(found >= 190, `threshold ${threshold}: ${found} of 200 copies found`);
  }
  assert.deepEqual(bandingFor(0.8), { bands: 10, rows: 4 }, "the default stays as it was");
  // The steps README names (a durable flow's Redis keys name the banding).
  assert.deepEqual(
    [0.74, 0.739, 0.54, 0.539].map((t) => bandingFor(t).bands),
    [10, 21, 21, 32],
  );
  for (const t of [0.3, 0.539, 0.54, 0.739, 0.74]) {
    const { bands, rows } = bandingFor(t);
    assert.ok(1 - (1 - t ** rows) ** bands >= 0.95, `${t}: a copy at it is looked at`);
  }
});
