import assert from "node:assert/strict";
import type { Delivery } from "../../engine/edge.ts";
import type { Envelope } from "../../engine/item.ts";
import { type Batch, chunks, Window } from "../../engine/window.ts";

const item = (n: number, text = "x"): Envelope => ({
  id: String(n),
  event: "e" + n,
  source: "test",
  seenAt: 0,
  attempts: 0,
  payload: { title: String(n), text },
});
const delivery = (...ns: number[]): Delivery => ({ items: ns.map((n) => item(n)) });
const ids = (batches: Batch[]) => batches.map((b) => b.items.map((i) => Number(i.id)));

Deno.test("window flushes at size, carrying the rest of a delivery to the next batch", () => {
  const w = new Window({ size: 3 });
  const full = w.add(delivery(1, 2, 3, 4, 5, 6, 7), 0);
  assert.deepEqual(ids(full), [[1, 2, 3], [4, 5, 6]]);
  assert.equal(w.pending, 1);
  assert.deepEqual(ids([w.flush()!]), [[7]]);
});

Deno.test("a batch that ends mid-delivery says how far into it the batches got", () => {
  const w = new Window({ size: 5 });
  const first = delivery(1, 2, 3);
  const second = delivery(4, 5, 6, 7, 8, 9, 10, 11, 12);
  assert.deepEqual(w.add(first, 0), []);
  const [a, b, ...more] = w.add(second, 0);
  assert.deepEqual(more, []);
  assert.deepEqual(a.items.map((i) => Number(i.id)), [1, 2, 3, 4, 5]);
  assert.deepEqual(a.deliveries, [first], "only the whole delivery is acknowledged");
  assert.equal(a.partial?.delivery, second);
  assert.equal(a.partial?.upTo, 2, "two of its items");
  assert.deepEqual(b.items.map((i) => Number(i.id)), [6, 7, 8, 9, 10]);
  assert.deepEqual(b.deliveries, []);
  assert.equal(b.partial?.upTo, 7, "counted from the delivery's first item");
  const last = w.flush()!;
  assert.deepEqual(last.items.map((i) => Number(i.id)), [11, 12], "the rest, in order");
  assert.deepEqual(last.deliveries, [second]);
  assert.equal(last.partial, undefined);
});

Deno.test("a batch that ends at a delivery's last item acknowledges it, with no partial", () => {
  const w = new Window({ size: 4 });
  const d = delivery(1, 2, 3, 4);
  const [batch] = w.add(d, 0);
  assert.deepEqual(batch.deliveries, [d]);
  assert.equal(batch.partial, undefined);
});

Deno.test("window flushes before an item would push the weight over maxWeight", () => {
  const w = new Window({
    size: 100,
    maxWeight: 10,
    weigh: (i) => String(i.payload.text).length,
  });
  const d = { items: [item(1, "aaaa"), item(2, "bbbb"), item(3, "cccc"), item(4, "dddddddddd")] };
  const full = w.add(d, 0);
  assert.deepEqual(ids(full), [[1, 2], [3], [4]], "4+4 fits, +4 would not; a 10 alone is full");
  assert.equal(w.pending, 0);
});

Deno.test("an item heavier than maxWeight alone still goes out, alone", () => {
  const w = new Window({ size: 100, maxWeight: 5, weigh: () => 50 });
  assert.deepEqual(ids(w.add(delivery(1, 2), 0)), [[1], [2]]);
});

Deno.test("a delivery whose first item would overflow the weight starts the next batch", () => {
  const w = new Window({ size: 100, maxWeight: 10, weigh: () => 4 });
  const a = delivery(1, 2);
  const b = delivery(3, 4);
  assert.deepEqual(w.add(a, 0), []);
  const [batch] = w.add(b, 0);
  assert.deepEqual(batch.items.map((i) => Number(i.id)), [1, 2]);
  assert.deepEqual(batch.deliveries, [a]);
  assert.equal(batch.partial, undefined, "none of b is in it");
  assert.equal(w.pending, 2, "the second delivery waits whole");
});

Deno.test("window deadline is maxWait after the first pending item", () => {
  const w = new Window({ size: 10, maxWait: 200 });
  assert.equal(w.deadline, undefined);
  w.add(delivery(1), 1_000);
  w.add(delivery(2), 1_150);
  assert.equal(w.deadline, 1_200, "counted from the first item, not the last");
  w.flush();
  assert.equal(w.deadline, undefined);
});

Deno.test("chunks cut a delivery handled at once within the window's size and weight", () => {
  const items = [1, 2, 3, 4, 5, 6, 7].map((n) => item(n));
  assert.deepEqual(chunks(items, { size: 3 }).map((c) => c.length), [3, 3, 1]);
  assert.deepEqual(chunks(items, undefined).map((c) => c.length), [7]);
  assert.deepEqual(
    chunks(items, { size: 100, maxWeight: 8, weigh: () => 3 }).map((c) => c.length),
    [2, 2, 2, 1],
  );
});

Deno.test("a window neither loses nor doubles nor reorders items, nor exceeds its limits, over random deliveries", () => {
  let seed = 7;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const limits = { size: 7, maxWeight: 40, weigh: (i: Envelope<unknown>) => Number(i.id) % 9 };
  const w = new Window(limits);
  const total = 3_000;
  let n = 0;
  const seen: number[] = [];
  /** Items of each delivery acknowledged or recorded as done so far. */
  const done = new Map<Delivery, number>();
  const take = (b: Batch) => {
    assert.ok(b.items.length >= 1 && b.items.length <= 7);
    const weight = b.items.reduce((s, i) => s + limits.weigh(i), 0);
    assert.ok(weight <= 40 || b.items.length === 1, `weight ${weight}`);
    seen.push(...b.items.map((i) => Number(i.id)));
    for (const d of b.deliveries) done.set(d, d.items.length);
    if (b.partial) {
      const { delivery: d, upTo } = b.partial;
      assert.ok(upTo > (done.get(d) ?? 0) && upTo < d.items.length, "progress only grows");
      assert.equal(Number(d.items[upTo - 1].id), seen[seen.length - 1], "up to the batch's end");
      done.set(d, upTo);
    }
  };
  while (n < total) {
    const k = Math.min(total - n, 1 + Math.floor(random() * 20));
    const items = Array.from({ length: k }, () => item(n++));
    for (const b of w.add({ items }, 0)) take(b);
    if (random() < 0.05) {
      const b = w.flush();
      if (b) take(b);
    }
  }
  const last = w.flush();
  if (last) take(last);
  assert.deepEqual(seen, Array.from({ length: total }, (_, i) => i));
  for (const [d, upTo] of done) assert.equal(upTo, d.items.length, "every delivery acknowledged");
});

Deno.test("window size must be a positive integer", () => {
  assert.throws(() => new Window({ size: 0 }), /positive integer/);
});
