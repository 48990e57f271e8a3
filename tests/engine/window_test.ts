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

Deno.test("a window that returns cuts ends the batch mid-delivery and hands back the rest", () => {
  const w = new Window({ size: 5 }, "return");
  const first = delivery(1, 2, 3);
  const second = delivery(4, 5, 6, 7);
  assert.deepEqual(w.add(first, 0), []);
  const [batch, ...more] = w.add(second, 0);
  assert.deepEqual(more, []);
  assert.deepEqual(batch.items.map((i) => Number(i.id)), [1, 2, 3, 4, 5]);
  assert.deepEqual(batch.deliveries, [first, second], "both are acknowledged with the batch");
  assert.deepEqual(batch.rest?.map((i) => Number(i.id)), [6, 7], "the rest goes back");
  assert.equal(w.pending, 0);
});

Deno.test("a batch that ends at a delivery's last item has no rest", () => {
  const w = new Window({ size: 4 }, "return");
  const d = delivery(1, 2, 3, 4);
  const [batch] = w.add(d, 0);
  assert.deepEqual(batch.deliveries, [d]);
  assert.equal(batch.rest, undefined);
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

Deno.test("a whole delivery heavier than what is pending goes to the next batch, uncut", () => {
  const w = new Window({ size: 100, maxWeight: 10, weigh: () => 4 }, "return");
  const a = delivery(1, 2);
  const b = delivery(3, 4);
  assert.deepEqual(w.add(a, 0), []);
  const [batch] = w.add(b, 0);
  assert.deepEqual(batch.items.map((i) => Number(i.id)), [1, 2]);
  assert.deepEqual(batch.deliveries, [a]);
  assert.equal(batch.rest, undefined);
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

for (const cut of ["carry", "return"] as const) {
  Deno.test(`[${cut}] a window neither loses nor doubles items, nor exceeds its limits, over random deliveries`, () => {
    let seed = 7;
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const limits = { size: 7, maxWeight: 40, weigh: (i: Envelope<unknown>) => Number(i.id) % 9 };
    const w = new Window(limits, cut);
    const total = 3_000;
    const queue: Envelope[][] = [];
    let n = 0;
    const seen: number[] = [];
    const take = (b: Batch) => {
      assert.ok(b.items.length >= 1 && b.items.length <= 7);
      const weight = b.items.reduce((s, i) => s + limits.weigh(i), 0);
      assert.ok(weight <= 40 || b.items.length === 1, `weight ${weight}`);
      seen.push(...b.items.map((i) => Number(i.id)));
      if (b.rest) queue.unshift(b.rest as Envelope[]);
    };
    while (n < total || queue.length > 0) {
      let items = queue.shift();
      if (!items) {
        const k = Math.min(total - n, 1 + Math.floor(random() * 20));
        items = Array.from({ length: k }, () => item(n++));
      }
      for (const b of w.add({ items }, 0)) take(b);
      if (random() < 0.05) {
        const b = w.flush();
        if (b) take(b);
      }
    }
    const last = w.flush();
    if (last) take(last);
    assert.deepEqual(seen, Array.from({ length: total }, (_, i) => i));
  });
}

Deno.test("window size must be a positive integer", () => {
  assert.throws(() => new Window({ size: 0 }), /positive integer/);
});
