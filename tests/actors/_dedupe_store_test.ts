import assert from "node:assert/strict";
import { BloomFilter } from "../../actors/_dedupe_store.ts";
import { hash128 } from "../../engine/hash.ts";

const keys = (from: number, to: number) => {
  const out: string[] = [];
  for (let i = from; i < to; i++) out.push(hash128(`item ${i}`));
  return out;
};

Deno.test("bloom filter: every key added is found, and at its capacity false positives stay near the rate asked", () => {
  const bloom = new BloomFilter(20_000, 0.001);
  const added = keys(0, 20_000);
  for (const key of added) bloom.add(key);
  assert.equal(added.filter((k) => !bloom.has(k)).length, 0, "no false negatives");
  const others = keys(20_000, 120_000);
  const falsePositives = others.filter((k) => bloom.has(k)).length;
  // 0.001 of 100,000 is 100 (110 measured): allow twice that.
  assert.ok(falsePositives <= 200, `${falsePositives} false positives in 100,000`);
});

Deno.test("bloom filter: keys that are not hex hashes are hashed first, and behave the same", () => {
  const bloom = new BloomFilter(1_000, 0.01);
  const added = Array.from({ length: 1_000 }, (_, i) => `https://example.com/${i}`);
  for (const key of added) bloom.add(key);
  assert.equal(added.filter((k) => !bloom.has(k)).length, 0);
  const others = Array.from({ length: 10_000 }, (_, i) => `https://example.org/${i}`);
  const falsePositives = others.filter((k) => bloom.has(k)).length;
  assert.ok(falsePositives <= 200, `${falsePositives} false positives in 10,000 at rate 0.01`);
});
