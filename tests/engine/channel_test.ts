import assert from "node:assert/strict";
import { Channel, ChannelClosedError } from "../../engine/channel.ts";

Deno.test("channel delivers batches in FIFO order", async () => {
  const ch = new Channel<number>(100);
  await ch.send([1, 2]);
  await ch.send([3]);
  await ch.send([4, 5, 6]);
  ch.close();
  const seen: number[] = [];
  for await (const batch of ch) seen.push(...batch);
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6]);
});

Deno.test("trySend refuses a batch that does not fit, and accepts once there is room", () => {
  const ch = new Channel<number>(4);
  assert.equal(ch.trySend([1, 2, 3]), true);
  assert.equal(ch.trySend([4, 5]), false);
  assert.equal(ch.size, 3);
  assert.deepEqual(ch.tryReceive(), [1, 2, 3]);
  assert.equal(ch.trySend([4, 5]), true);
  assert.equal(ch.size, 2);
});

Deno.test("send waits while the channel is full and resumes when a receiver makes room", async () => {
  const ch = new Channel<number>(2);
  await ch.send([1, 2]);
  let sent = false;
  const pending = ch.send([3]).then(() => (sent = true));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(sent, false, "send must wait while full");
  assert.deepEqual(ch.tryReceive(), [1, 2]);
  await pending;
  assert.equal(sent, true);
  assert.deepEqual(ch.tryReceive(), [3]);
});

Deno.test("a producer 100x faster than its consumer never has more than capacity items buffered", async () => {
  const capacity = 64;
  const ch = new Channel<number>(capacity);
  let maxBuffered = 0;
  const total = 5_000;
  const producer = (async () => {
    for (let i = 0; i < total; i += 10) {
      await ch.send(Array.from({ length: 10 }, (_, k) => i + k));
      maxBuffered = Math.max(maxBuffered, ch.size);
    }
    ch.close();
  })();
  let received = 0;
  let expected = 0;
  for await (const batch of ch) {
    for (const n of batch) assert.equal(n, expected++, "items arrive in order, none lost");
    received += batch.length;
    if (received % 100 === 0) await new Promise((r) => setTimeout(r, 1)); // the slow consumer
    maxBuffered = Math.max(maxBuffered, ch.size);
  }
  await producer;
  assert.equal(received, total);
  assert.ok(maxBuffered <= capacity, `buffered ${maxBuffered} > capacity ${capacity}`);
  assert.ok(maxBuffered >= capacity - 10, "the fast producer should have filled the channel");
});

Deno.test("a batch larger than the capacity is split, never held whole", async () => {
  const ch = new Channel<number>(3);
  const sending = ch.send([1, 2, 3, 4, 5, 6, 7]);
  const sizes: number[] = [];
  const seen: number[] = [];
  while (seen.length < 7) {
    const b = await ch.receive();
    assert.ok(b);
    sizes.push(ch.size);
    seen.push(...b);
  }
  await sending;
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7]);
  assert.ok(sizes.every((s) => s <= 3));
});

Deno.test("close lets receivers drain what is buffered, then ends them", async () => {
  const ch = new Channel<string>(10);
  await ch.send(["a"]);
  const waiting = new Channel<string>(10);
  const ended = waiting.receive();
  ch.close();
  waiting.close();
  assert.deepEqual(await ch.receive(), ["a"]);
  assert.equal(await ch.receive(), undefined);
  assert.equal(await ended, undefined, "a receiver waiting at close gets undefined");
  assert.throws(() => ch.trySend(["b"]), ChannelClosedError);
});

Deno.test("close admits senders that were waiting, so their items are not lost", async () => {
  const ch = new Channel<number>(1);
  await ch.send([1]);
  const late = ch.send([2]);
  ch.close();
  await late;
  const seen: number[] = [];
  for await (const b of ch) seen.push(...b);
  assert.deepEqual(seen, [1, 2]);
});

Deno.test("an aborted signal cancels a waiting send and a waiting receive", async () => {
  const ch = new Channel<number>(1);
  await ch.send([1]);
  const ctl = new AbortController();
  const send = ch.send([2], ctl.signal);
  const empty = new Channel<number>(1);
  const recv = empty.receive(ctl.signal);
  ctl.abort(new Error("stop"));
  await assert.rejects(send, /stop/);
  await assert.rejects(recv, /stop/);
  assert.equal(ch.size, 1, "the cancelled batch was not enqueued");
  assert.deepEqual(ch.tryReceive(), [1]);
  assert.equal(ch.tryReceive(), undefined);
});

Deno.test("receive with a timeout says so when nothing arrives", async () => {
  const ch = new Channel<number>(1);
  assert.equal(await ch.receive(undefined, 5), "timeout");
  setTimeout(() => ch.trySend([9]), 5);
  assert.deepEqual(await ch.receive(undefined, 1000), [9]);
});

Deno.test("capacity must be a positive integer", () => {
  assert.throws(() => new Channel(0), /positive integer/);
  assert.throws(() => new Channel(-5), /positive integer/);
});

Deno.test("on a full channel an urgent batch waits ahead of the normal ones, and is received first", async () => {
  const ch = new Channel<number>(1);
  await ch.send([1]);
  const order: string[] = [];
  const normal = ch.send([3]).then(() => order.push("normal in"));
  const urgent = ch.send([9], undefined, true).then(() => order.push("urgent in"));
  // Before: the normal batch, waiting first, took the room the first receive made, and the
  // urgent one waited behind it for the next.
  assert.deepEqual(await ch.receive(), [1]);
  assert.deepEqual(await ch.receive(), [9]);
  assert.deepEqual(await ch.receive(), [3]);
  await Promise.all([normal, urgent]);
  assert.deepEqual(order, ["urgent in", "normal in"]);
});

Deno.test("a batch larger than the channel goes in by parts, each said as it goes in", async () => {
  const ch = new Channel<number>(2);
  await ch.send([0, 0]);
  const parts: number[] = [];
  const sending = ch.send([1, 2, 3, 4, 5], undefined, false, (n) => parts.push(n));
  assert.deepEqual(parts, [], "the channel is full: nothing went in");
  assert.deepEqual(await ch.receive(), [0, 0]);
  // The first part waited for room and went in as [0, 0] left: said then, not at the end.
  assert.deepEqual(parts, [2]);
  assert.deepEqual(await ch.receive(), [1, 2]);
  assert.deepEqual(await ch.receive(), [3, 4]);
  assert.deepEqual(await ch.receive(), [5]);
  await sending;
  assert.deepEqual(parts, [2, 2, 1]);
});
