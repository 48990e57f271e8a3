import assert from "node:assert/strict";
import { Channel } from "../../engine/channel.ts";
import type { Envelope } from "../../engine/item.ts";
import { Window, windowed } from "../../engine/window.ts";

const item = (n: number, text = "x"): Envelope => ({
  id: String(n),
  event: "e" + n,
  source: "test",
  seenAt: 0,
  attempts: 0,
  payload: { title: String(n), text },
});
const ids = (batches: Envelope[][]) => batches.map((b) => b.map((i) => Number(i.id)));

Deno.test("window flushes at size", () => {
  const w = new Window<Envelope>({ size: 3 });
  const full = w.add([1, 2, 3, 4, 5, 6, 7].map((n) => item(n)), 0);
  assert.deepEqual(ids(full), [[1, 2, 3], [4, 5, 6]]);
  assert.equal(w.pending, 1);
  assert.deepEqual(ids([w.flush()!]), [[7]]);
});

Deno.test("window flushes before an item would push the weight over maxWeight", () => {
  const w = new Window<Envelope>({
    size: 100,
    maxWeight: 10,
    weigh: (i) => String(i.payload.text).length,
  });
  const full = w.add([item(1, "aaaa"), item(2, "bbbb"), item(3, "cccc"), item(4, "dddddddddd")], 0);
  assert.deepEqual(ids(full), [[1, 2], [3], [4]], "4+4 fits, +4 would not; a 10 alone is full");
  assert.equal(w.pending, 0);
});

Deno.test("an item heavier than maxWeight alone still goes out, alone", () => {
  const w = new Window<Envelope>({ size: 100, maxWeight: 5, weigh: () => 50 });
  assert.deepEqual(ids(w.add([item(1), item(2)], 0)), [[1], [2]]);
});

Deno.test("window deadline is maxWait after the first pending item", () => {
  const w = new Window<Envelope>({ size: 10, maxWait: 200 });
  assert.equal(w.deadline, undefined);
  w.add([item(1)], 1_000);
  w.add([item(2)], 1_150);
  assert.equal(w.deadline, 1_200, "counted from the first item, not the last");
  w.flush();
  assert.equal(w.deadline, undefined);
});

Deno.test("windowed reader flushes a partial batch after maxWait when no more items come", async () => {
  const ch = new Channel<Envelope>(100);
  const reader = windowed(ch, { size: 100, maxWait: 30 });
  await ch.send([item(1), item(2)]);
  const started = Date.now();
  const first = await reader.next();
  assert.deepEqual(ids([first.value as Envelope[]]), [[1, 2]]);
  assert.ok(Date.now() - started >= 25, "it waited for maxWait before flushing a partial batch");
  ch.close();
  assert.equal((await reader.next()).done, true);
});

Deno.test("windowed reader flushes what is pending when the channel closes", async () => {
  const ch = new Channel<Envelope>(100);
  const reader = windowed(ch, { size: 4 });
  const got: Envelope[][] = [];
  const reading = (async () => {
    for await (const b of reader) got.push(b);
  })();
  await ch.send([1, 2, 3, 4, 5].map((n) => item(n)));
  await ch.send([item(6)]);
  ch.close();
  await reading;
  assert.deepEqual(ids(got), [[1, 2, 3, 4], [5, 6]]);
});

Deno.test("windowed reader neither loses nor doubles items over many random batches", async () => {
  const ch = new Channel<Envelope>(50);
  const reader = windowed(ch, {
    size: 7,
    maxWeight: 40,
    weigh: (i) => Number(i.id) % 9,
    maxWait: 2,
  });
  const total = 3_000;
  const producer = (async () => {
    let n = 0;
    while (n < total) {
      const k = Math.min(total - n, 1 + Math.floor(Math.random() * 20));
      await ch.send(Array.from({ length: k }, () => item(n++)));
      if (Math.random() < 0.05) await new Promise((r) => setTimeout(r, 3));
    }
    ch.close();
  })();
  const seen: number[] = [];
  for await (const b of reader) {
    assert.ok(b.length >= 1 && b.length <= 7);
    seen.push(...b.map((i) => Number(i.id)));
  }
  await producer;
  assert.deepEqual(seen, Array.from({ length: total }, (_, i) => i));
});

Deno.test("window size must be a positive integer", () => {
  assert.throws(() => new Window<Envelope>({ size: 0 }), /positive integer/);
});
