import assert from "node:assert/strict";
import { IdSet } from "../../../adapters/sinks/_id_set.ts";
import { hash128 } from "../../../engine/hash.ts";

/** A small seeded generator, so a failure repeats. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("an IdSet answers as a Set of strings does through adds, deletes and growth", () => {
  const rand = random(7);
  const ids = new IdSet(), set = new Set<string>();
  // Hashes (the usual ids), keys that are not 32 hex digits, and the all-zero id.
  const pool = [
    ...Array.from({ length: 3000 }, (_, i) => hash128(`https://example.com/${i}`)),
    ...Array.from({ length: 200 }, (_, i) => `${hash128(String(i))}:r${i % 4}`),
    "0".repeat(32),
    "f".repeat(32),
    "ABCDEF" + "0".repeat(26), // upper case: not a hex id here, kept as a string
    "story-17",
  ];
  for (let step = 0; step < 40_000; step++) {
    const id = pool[Math.floor(rand() * pool.length)];
    const op = rand();
    if (op < 0.6) {
      ids.add(id);
      set.add(id);
    } else if (op < 0.8) assert.equal(ids.delete(id), set.delete(id), `delete ${id}`);
    else assert.equal(ids.has(id), set.has(id), `has ${id} at step ${step}`);
    if (step % 997 === 0) assert.equal(ids.size, set.size);
  }
  for (const id of pool) assert.equal(ids.has(id), set.has(id), id);
  assert.equal(ids.size, set.size);
  ids.clear();
  assert.equal(ids.size, 0);
  assert.ok(pool.every((id) => !ids.has(id)));
});
