import assert from "node:assert/strict";
import { OldestFirst } from "../../actors/_oldest_first.ts";

Deno.test("oldest first: entries leave in insertion order, past deletions and keys set again", () => {
  const q = new OldestFirst<number, { at: number }>();
  assert.equal(q.oldest(), undefined);
  for (let i = 0; i < 10; i++) q.map.set(i, { at: i });
  assert.equal(q.oldest()?.[0], 0);
  q.map.delete(0); // deleted while the cursor stands on it
  q.map.delete(3);
  q.map.delete(1);
  q.map.set(1, { at: 10 }); // set again: now the newest
  const order: number[] = [];
  while (q.oldest()) {
    order.push(q.oldest()![0]);
    q.dropOldest();
  }
  assert.deepEqual(order, [2, 4, 5, 6, 7, 8, 9, 1]);
  // Empty, then used again: the cursor starts over.
  q.map.set(42, { at: 42 });
  assert.equal(q.oldest()?.[0], 42);
  q.dropOldest();
  assert.equal(q.map.size, 0);
});
