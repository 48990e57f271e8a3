import assert from "node:assert/strict";
import type { SourceEntry } from "../../engine/flow.ts";
import { FlowEndingError } from "../../engine/errors.ts";
import { memoryLogger } from "../../engine/log.ts";
import type { Clock } from "../../engine/schedule.ts";
import { pumpSource, type SourceOutlet } from "../../engine/source_pump.ts";
import type { Source } from "../../engine/source.ts";
import { SourceStats } from "../../engine/stats.ts";

/** A source that yields one item per read, numbered. */
function counting(): Source & { reads: number } {
  const src = {
    reads: 0,
    async *read() {
      src.reads++;
      yield [{ title: `read ${src.reads}`, url: `https://example.com/${src.reads}` }];
    },
  };
  return src;
}

const entry = (fields: Partial<SourceEntry>): SourceEntry => ({
  name: "s",
  kind: "test",
  priority: "normal",
  config: {},
  ...fields,
});

Deno.test("cron ticks drive the loop: each tick is claimed, then read; a refused tick is not read", async () => {
  const source = counting();
  const stop = new AbortController();
  const claims: number[] = [];
  const emitted: string[] = [];
  const outlet: SourceOutlet = {
    emit: (items) => {
      emitted.push(...items.map((i) => String(i.payload.title)));
      return Promise.resolve();
    },
    claim: (tick) => {
      claims.push(tick);
      if (claims.length === 4) stop.abort();
      // The second tick was polled elsewhere.
      return Promise.resolve(claims.length !== 2);
    },
  };
  const done = await pumpSource(
    { entry: entry({ cron: "* * * * * *", tz: "UTC" }), source },
    new SourceStats("s", "test"),
    outlet,
    { signal: stop.signal, log: memoryLogger(), flow: "t" },
  );
  assert.equal(done, false, "a polling source is never done");
  assert.deepEqual(claims.slice(1).map((t, i) => t - claims[i]), [1000, 1000, 1000]);
  assert.ok(claims.every((t) => t % 1000 === 0), "claims are for whole-second ticks");
  assert.equal(source.reads, 2, "ticks 1 and 3 were read; 2 was refused; 4 was stopped");
  assert.deepEqual(emitted, ["read 1", "read 2"]);
});

Deno.test("a tick whose poll a stop cuts short is given back, the tick before it stored again; a whole poll keeps its tick", async () => {
  const stop = new AbortController();
  let reads = 0;
  // The first poll is whole; the second hangs (a slow server) until the stop aborts it.
  const source: Source = {
    async *read(signal) {
      reads++;
      if (reads === 2) {
        setTimeout(() => stop.abort(), 10);
        await new Promise((_, reject) => signal!.addEventListener("abort", reject));
      }
      yield [{ title: `read ${reads}`, url: `https://example.com/${reads}` }];
    },
  };
  const claims: number[] = [];
  const unclaims: [number, number][] = [];
  const outlet: SourceOutlet = {
    emit: () => Promise.resolve(),
    claim: (tick) => (claims.push(tick), Promise.resolve(true)),
    unclaim: (tick, before) => (unclaims.push([tick, before]), Promise.resolve()),
  };
  await pumpSource(
    { entry: entry({ cron: "* * * * * *", tz: "UTC" }), source },
    new SourceStats("s", "test"),
    outlet,
    { signal: stop.signal, log: memoryLogger(), flow: "t", lastTick: undefined },
  );
  assert.equal(reads, 2);
  assert.deepEqual(unclaims, [[claims[1], claims[0]]]);
});

Deno.test("a first tick whose poll a stop cuts short is given back as the schedule's tick before it", async () => {
  const stop = new AbortController();
  const source: Source = {
    async *read(signal) {
      setTimeout(() => stop.abort(), 10);
      await new Promise((_, reject) => signal!.addEventListener("abort", reject));
      yield [];
    },
  };
  const claims: number[] = [];
  const unclaims: [number, number][] = [];
  await pumpSource(
    { entry: entry({ cron: "* * * * * *", tz: "UTC" }), source },
    new SourceStats("s", "test"),
    {
      emit: () => Promise.resolve(),
      claim: (tick) => (claims.push(tick), Promise.resolve(true)),
      unclaim: (tick, before) => (unclaims.push([tick, before]), Promise.resolve()),
    },
    { signal: stop.signal, log: memoryLogger(), flow: "t" },
  );
  assert.deepEqual(unclaims, [[claims[0], claims[0] - 1000]], "the schedule's tick before it");
});

Deno.test("a takeover polls the tick missed since the stored one at once, then waits for the next", async () => {
  const source = counting();
  const stop = new AbortController();
  const claims: number[] = [];
  const now = Date.now();
  const outlet: SourceOutlet = {
    emit: () => Promise.resolve(),
    claim: (tick) => {
      claims.push(tick);
      if (claims.length === 2) stop.abort();
      return Promise.resolve(true);
    },
  };
  const clock: Clock = { now: () => Date.now(), random: () => 0.5 };
  const hourAgo = Math.floor(now / 3_600_000) * 3_600_000 - 3_600_000;
  await pumpSource(
    { entry: entry({ cron: "* * * * * *", tz: "UTC" }), source },
    new SourceStats("s", "test"),
    outlet,
    { signal: stop.signal, log: memoryLogger(), flow: "t", lastTick: hourAgo, clock },
  );
  assert.ok(claims[0] <= Date.now() && claims[0] > hourAgo, "the latest missed tick first");
  assert.equal(claims[1] - claims[0], 1000, "then the next tick, not every tick of the hour");
});

Deno.test("every: 30d reads once and waits, past setTimeout's limit of about 24.8 days", async () => {
  // A single 30-day timer fires at once: the source was read in a tight loop (56 reads in 3 s).
  const source = counting();
  const stop = new AbortController();
  const outlet: SourceOutlet = { emit: () => Promise.resolve() };
  const pumping = pumpSource(
    { entry: entry({ every: 30 * 24 * 3600 * 1000 }), source },
    new SourceStats("s", "test"),
    outlet,
    { signal: stop.signal, log: memoryLogger(), flow: "t" },
  );
  await new Promise((r) => setTimeout(r, 300));
  stop.abort();
  await pumping;
  assert.equal(source.reads, 1);
});

Deno.test("a cron source says when its first poll is, rather than look idle until then", async () => {
  const source = counting();
  const stop = new AbortController();
  const log = memoryLogger();
  // 2026-12-07 (a Monday) 05:00 UTC: the first tick of "0 7 * * 1-5" in Berlin is 06:00 UTC.
  const now = Date.parse("2026-12-07T05:00:00Z");
  const clock: Clock = { now: () => now, random: () => 0 };
  const pumping = pumpSource(
    { entry: entry({ cron: "0 7 * * 1-5", tz: "Europe/Berlin" }), source },
    new SourceStats("s", "test"),
    { emit: () => Promise.resolve() },
    { signal: stop.signal, log, flow: "t", clock },
  );
  await new Promise((r) => setTimeout(r, 50));
  stop.abort();
  await pumping;
  assert.equal(source.reads, 0);
  assert.ok(
    log.lines.some((l) =>
      l.includes(
        "t: source s: first poll at 2026-12-07T06:00:00.000Z (cron 0 7 * * 1-5 in Europe/Berlin)",
      )
    ),
    log.lines.join("\n"),
  );
});

Deno.test("a read that ends without failing sets the source's last success; a failed one leaves it", async () => {
  const outlet: SourceOutlet = { emit: () => Promise.resolve() };
  const opts = { signal: new AbortController().signal, log: memoryLogger(), flow: "t" };
  const good = new SourceStats("s", "test");
  await pumpSource({ entry: entry({}), source: counting() }, good, outlet, opts);
  assert.ok(good.lastOk !== undefined && good.lastOk >= good.lastRead!, "set as the read ended");
  const failing: Source = {
    async *read() {
      yield [{ title: "a", url: "https://example.com/a" }];
      throw new Error("upstream said 500");
    },
  };
  const bad = new SourceStats("s", "test");
  await pumpSource({ entry: entry({}), source: failing }, bad, outlet, opts);
  assert.equal(bad.errors, 1);
  assert.equal(bad.lastOk, undefined);
});

Deno.test("a read that fails with an API's ending hint fails that read; a FlowEndingError thrown ends the pump", async () => {
  const failing = (error: Error): Source => ({
    // deno-lint-ignore require-yield
    async *read() {
      throw error;
    },
  });
  const stop = new AbortController();
  const stats = new SourceStats("s", "test");
  const outlet: SourceOutlet = { emit: () => Promise.resolve() };
  // A 401 from an API a source calls says so (RetryHint.endsRun): a source that fails to read
  // does not end the run.
  const hinted = Object.assign(new Error("401 Unauthorized"), { endsRun: true });
  setTimeout(() => stop.abort(), 50);
  await pumpSource(
    { entry: entry({ every: 10 }), source: failing(hinted) },
    stats,
    outlet,
    { signal: stop.signal, log: memoryLogger(), flow: "t" },
  );
  assert.ok(stats.errors >= 2, `failed reads: ${stats.errors}`);
  // Thrown as such (a right Redis refuses), wrapped or not: no later read would fare better.
  const ending = new Error("html: no page", { cause: new FlowEndingError("Redis refused") });
  await assert.rejects(
    pumpSource(
      { entry: entry({ every: 10 }), source: failing(ending) },
      new SourceStats("s", "test"),
      outlet,
      { signal: new AbortController().signal, log: memoryLogger(), flow: "t" },
    ),
    /html: no page/,
  );
});
