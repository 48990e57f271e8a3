import assert from "node:assert/strict";
import { Aimd } from "../../../adapters/http/aimd.ts";
import { FRESH, intervalOf, pauseUntil, reserve } from "../../../adapters/http/gcra.ts";
import { MemoryHostBuckets } from "../../../adapters/http/host_buckets.ts";
import { HostSlots } from "../../../adapters/http/host_slots.ts";
import { fakeClock, mostInWindow } from "./_fake_clock.ts";

/** Start times of requests asked for at `asks` (ms), through one bucket. */
function starts(asks: number[], interval: number, burst: number): number[] {
  let tat = FRESH;
  return asks.map((now) => {
    const slot = reserve(tat, now, interval, burst);
    tat = slot.tat;
    return slot.start;
  });
}

Deno.test("a fresh bucket lets `burst` requests go at once, then one per interval", () => {
  assert.deepEqual(starts([0, 0, 0, 0, 0, 0], 200, 3), [0, 0, 0, 200, 400, 600]);
});

Deno.test("burst 1 spaces every request by the interval, whenever it is asked", () => {
  assert.deepEqual(starts([0, 50, 100, 1000, 1001], 200, 1), [0, 200, 400, 1000, 1200]);
});

Deno.test("a quiet spell refills the bucket, up to its depth only", () => {
  // 5 s idle at 5 rps would be 25 tokens; the bucket holds 2.
  assert.deepEqual(starts([0, 0, 5000, 5000, 5000, 5000], 200, 2), [0, 0, 5000, 5000, 5200, 5400]);
});

Deno.test("no 1 s window holds more than burst - 1 + rps requests, however they are asked", () => {
  // A seeded walk of asks: bursts and lulls.
  let seed = 7;
  const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (const [rps, burst] of [[5, 1], [5, 3], [1, 5], [0.5, 2]]) {
    let now = 0;
    const asks = Array.from({ length: 300 }, () => (now += rand() < 0.3 ? rand() * 3000 : 0));
    const got = starts(asks, intervalOf(rps), burst);
    const most = mostInWindow(got, 1000);
    const bound = burst - 1 + Math.ceil(1000 / intervalOf(rps));
    assert.ok(most <= bound, `rps ${rps} burst ${burst}: ${most} in 1 s, bound ${bound}`);
    got.forEach((s, i) => assert.ok(s >= asks[i], "never before it was asked"));
  }
});

Deno.test("a pause holds the next request until it ends, and lets no burst through then", () => {
  const interval = 200;
  let tat = reserve(FRESH, 0, interval, 3).tat;
  tat = pauseUntil(tat, 7000, interval, 3);
  const a = reserve(tat, 100, interval, 3);
  const b = reserve(a.tat, 100, interval, 3);
  assert.deepEqual([a.start, b.start], [7000, 7200]);
});

Deno.test("in-memory buckets: each host its own, waits counted from now", async () => {
  const clock = fakeClock();
  const buckets = new MemoryHostBuckets(clock);
  assert.equal(await buckets.take("a.test", 1000, 1), 0);
  assert.equal(await buckets.take("a.test", 1000, 1), 1000);
  assert.equal(await buckets.take("b.test", 1000, 1), 0, "another host does not wait");
  clock.advance(1500);
  assert.equal(await buckets.take("a.test", 1000, 1), 500);
  await buckets.pause("b.test", 9000, 1000, 1);
  assert.equal(await buckets.take("b.test", 1000, 1), 9000);
});

Deno.test("AIMD: a cut halves the rate, a wave of 429s is one cut, successes creep back to 1", () => {
  const aimd = new Aimd(1000, 0.05);
  aimd.slowDown("h", 0);
  aimd.slowDown("h", 10);
  aimd.slowDown("h", 999);
  assert.equal(aimd.factor("h"), 0.5);
  aimd.slowDown("h", 1000);
  assert.equal(aimd.factor("h"), 0.25);
  assert.equal(aimd.factor("other"), 1);
  const seen: number[] = [];
  for (let i = 0; i < 20; i++) {
    aimd.succeeded("h");
    seen.push(aimd.factor("h"));
  }
  assert.ok(seen.every((f, i) => i === 0 || f >= seen[i - 1]), "only goes up");
  assert.equal(Math.max(...seen), 1, "never above the configured rate");
  assert.equal(seen.indexOf(1), 14, "the 15th success: 0.25 + 15 x 0.05 = 1");
});

Deno.test("AIMD never cuts below its floor", () => {
  const aimd = new Aimd(0, 0.05, 1 / 64);
  for (let i = 0; i < 20; i++) aimd.slowDown("h", i);
  assert.equal(aimd.factor("h"), 1 / 64);
});

Deno.test("host slots: at most `limit` held per host; a release lets the next in, in order", async () => {
  const slots = new HostSlots();
  const a = await slots.acquire("h", 2);
  const b = await slots.acquire("h", 2);
  const order: string[] = [];
  const c = slots.acquire("h", 2).then((r) => (order.push("c"), r));
  const d = slots.acquire("h", 2).then((r) => (order.push("d"), r));
  const other = await slots.acquire("elsewhere", 2);
  await Promise.resolve();
  assert.equal(slots.active("h"), 2);
  assert.deepEqual(order, []);
  a();
  a(); // a second release of the same slot frees nothing more
  (await c)();
  b();
  (await d)();
  other();
  assert.deepEqual(order, ["c", "d"]);
  assert.equal(slots.active("h"), 0);
});

Deno.test("host slots: an abort while waiting rejects with its reason and leaves the queue", async () => {
  const slots = new HostSlots();
  const held = await slots.acquire("h", 1);
  const stop = new AbortController();
  const waiting = slots.acquire("h", 1, stop.signal);
  stop.abort(new Error("shutting down"));
  await assert.rejects(waiting, /shutting down/);
  held();
  const again = await slots.acquire("h", 1);
  assert.equal(slots.active("h"), 1);
  again();
});

Deno.test("host slots: two releases in one turn hand one slot to the waiter, and the limit holds", async () => {
  const slots = new HostSlots();
  const a = await slots.acquire("h", 2);
  const b = await slots.acquire("h", 2);
  const woken = slots.acquire("h", 2);
  await Promise.resolve();
  a();
  b(); // both finish before the woken waiter runs
  await woken;
  assert.equal(slots.active("h"), 1);
  await slots.acquire("h", 2);
  assert.equal(slots.active("h"), 2);
  let third = false;
  const late = slots.acquire("h", 2).then((release) => (third = true, release));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(third, false, "a third request waits under a limit of 2");
  assert.equal(slots.active("h"), 2);
  (await Promise.race([late, Promise.resolve(undefined)]))?.();
});

Deno.test("a memory bucket says how long a host's pause has left, the longest pause holding", async () => {
  const clock = fakeClock();
  const buckets = new MemoryHostBuckets(clock);
  assert.equal(await buckets.pausedFor("a"), 0);
  await buckets.pause("a", 5_000, 500, 1);
  await buckets.pause("a", 1_000, 500, 1);
  clock.advance(2_000);
  assert.equal(await buckets.pausedFor("a"), 3_000);
  assert.equal(await buckets.pausedFor("b"), 0);
  clock.advance(3_000);
  assert.equal(await buckets.pausedFor("a"), 0);
});
