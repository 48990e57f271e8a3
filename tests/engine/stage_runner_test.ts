import assert from "node:assert/strict";
import type { Actor } from "../../engine/actor.ts";
import { accounted } from "../../engine/accounted.ts";
import { Channel } from "../../engine/channel.ts";
import { MemoryDeadLetters } from "../../engine/dead_letters.ts";
import type { Envelope } from "../../engine/item.ts";
import { memoryLogger } from "../../engine/log.ts";
import { MemoryEdge } from "../../engine/memory_edge.ts";
import { RedisConnectionLostError } from "../../engine/redis/connection.ts";
import { runStageLoop } from "../../engine/stage_loop.ts";
import { MAX_REASONS, OTHER_REASONS, StageStats } from "../../engine/stats.ts";

/** The `n` of a dead letter's item. */
const nOf = (d: { item: Envelope<unknown> }) => (d.item as Envelope).payload.n;

const item = (n: number): Envelope => ({
  id: "id" + n,
  event: "e" + n,
  source: "t",
  seenAt: 0,
  attempts: 0,
  payload: { title: "t" + n, n },
});

async function run(
  actor: Actor,
  items: Envelope[],
  opts: {
    concurrency?: number;
    retries?: number;
    batch?: number;
    awayMaxMs?: number;
    batchTimeout?: number;
    onBatch?: (items: number, ms: number) => void;
  } = {},
) {
  const input = new Channel<Envelope<unknown>>(1000);
  const output = new Channel<Envelope<unknown>>(100_000);
  const stats = new StageStats("s", "test");
  stats.onBatch = opts.onBatch;
  const deadLetters = new MemoryDeadLetters();
  const ctl = new AbortController();
  const log = memoryLogger();
  const running = runStageLoop({
    stages: [{
      actor: actor as Actor<unknown, unknown>,
      ctx: { flow: "f", stage: "s", signal: ctl.signal, log },
      stats,
      retries: opts.retries ?? 2,
      backoffBase: 1,
      awayMaxMs: opts.awayMaxMs,
      batchTimeout: opts.batchTimeout,
    }],
    edge: new MemoryEdge(input, output, deadLetters, ctl.signal),
    concurrency: opts.concurrency ?? 1,
  });
  const size = opts.batch ?? 10;
  for (let i = 0; i < items.length; i += size) await input.send(items.slice(i, i + size));
  input.close();
  await running;
  const out: Envelope[] = [];
  for await (const b of output) out.push(...(b as Envelope[]));
  return { out, stats, deadLetters, closed: output.closed, log };
}

Deno.test("a stage passes what it emits, counts drops and rejects by reason, and dead-letters rejects", async () => {
  const actor: Actor = {
    handle(batch, out) {
      for (const it of batch) {
        const n = it.payload.n as number;
        if (n % 10 === 0) out.drop(it, "duplicate", `of ${n - 1}`);
        else if (n % 7 === 0) out.reject(it, "too lucky", `too lucky: n=${n}`);
        else out.emit(it);
      }
    },
  };
  const items = Array.from({ length: 100 }, (_, i) => item(i + 1));
  const { out, stats, deadLetters, closed } = await run(actor, items);
  assert.equal(stats.received, 100);
  assert.equal(stats.dropped.get("duplicate"), 10);
  assert.equal(stats.rejected.get("too lucky"), 13);
  assert.equal(out.length, 77);
  assert.equal(stats.emitted, 77);
  assert.equal(deadLetters.entries.length, 13);
  assert.equal(deadLetters.entries[0].reason, "too lucky: n=7");
  assert.equal(deadLetters.entries[0].stage, "s");
  assert.ok(closed, "the output is closed when the input is drained");
});

Deno.test("a batch that fails now and then is retried and nothing is lost or doubled", async () => {
  let calls = 0;
  const actor: Actor = {
    handle(batch, out) {
      if (++calls % 3 === 1) throw new Error("flaky");
      for (const it of batch) out.emit(it);
    },
  };
  const items = Array.from({ length: 50 }, (_, i) => item(i));
  const { out, stats, deadLetters } = await run(actor, items);
  assert.deepEqual(out.map((i) => i.id), items.map((i) => i.id));
  assert.equal(stats.retries, 3, "calls 1, 4 and 7 failed");
  assert.equal(deadLetters.entries.length, 0);
});

Deno.test("one poison item goes to dead letters alone; its batch-mates go on", async () => {
  const actor: Actor = {
    handle(batch, out) {
      if (batch.some((it) => it.payload.n === 13)) throw new Error("cannot digest 13");
      for (const it of batch) out.emit(it);
    },
  };
  const items = Array.from({ length: 40 }, (_, i) => item(i));
  const { out, stats, deadLetters } = await run(actor, items, { batch: 16 });
  assert.equal(out.length, 39);
  assert.ok(!out.some((i) => i.payload.n === 13));
  assert.equal(stats.failed, 1);
  assert.equal(deadLetters.entries.length, 1);
  assert.equal(deadLetters.entries[0].item.id, "id13");
  assert.match(deadLetters.entries[0].reason, /failed: cannot digest 13/);
  assert.ok(deadLetters.entries[0].attempts >= 3, "attempts are counted on the item");
});

Deno.test("whatever a stage throws, its item is dead-lettered with a reason and the run goes on", async () => {
  // Each of these made errorMessage throw (String() of it), and the run ended with a stack trace.
  const nullProto = Object.assign(Object.create(null), { code: "E42" });
  const badToString = {
    toString() {
      throw new Error("no");
    },
    valueOf: 1,
  };
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const thrown: Record<number, unknown> = {
    3: nullProto,
    7: badToString,
    11: cyclic,
    15: { code: 42 },
  };
  const actor: Actor = {
    handle(batch, out) {
      for (const it of batch) {
        if (it.payload.n as number in thrown) throw thrown[it.payload.n as number];
      }
      for (const it of batch) out.emit(it);
    },
  };
  const { out, deadLetters } = await run(actor, Array.from({ length: 20 }, (_, i) => item(i)));
  assert.equal(out.length, 16);
  const reasons = Object.fromEntries(deadLetters.entries.map((d) => [nOf(d), d.reason]));
  assert.deepEqual(reasons, {
    3: 'failed: {"code":"E42"}',
    7: 'failed: {"valueOf":1}',
    11: "failed: [object Object]",
    15: 'failed: {"code":42}',
  });
});

const NOT_ENVELOPE =
  "not an item's envelope ({id, event, payload, …}): emit { ...item, payload } " +
  "for an input's item, or envelope(payload, source) for a new one";

/** A payload class of a user's own: JSON keeps its fields. */
class Story {
  constructor(readonly title: string) {}
}

Deno.test("a stage that emits what is no envelope fails that item's try: the split dead-letters it alone", async () => {
  // Held to account as a step module is: a payload JSON would mangle is refused there.
  const actor: Actor = accounted({
    handle(batch, out) {
      for (const it of batch) {
        const n = it.payload.n as number;
        if (n === 4) out.emit(null as unknown as Envelope);
        else if (n === 9) out.emit({ id: "x" } as unknown as Envelope);
        else if (n === 10) out.emit({ id: it.id, payload: it.payload } as unknown as Envelope);
        else if (n === 12) out.emit("text" as unknown as Envelope);
        else if (n === 15) out.emit({ ...it, payload: "oops" } as unknown as Envelope);
        // Before: published as {"0":1,"1":2}.
        else if (n === 17) out.emit({ ...it, payload: [1, 2] } as unknown as Envelope);
        // Before: published as {}, "https://e.test/", [1].
        else if (n === 18) out.emit({ ...it, payload: new Map([["a", 1]]) } as unknown as Envelope);
        else if (n === 19) {
          out.emit({ ...it, payload: new URL("https://e.test/") } as unknown as Envelope);
        } else if (n === 16) {
          out.emit({ ...it, payload: { toJSON: () => [1] } } as unknown as Envelope);
        } // A class of one's own keeps its fields, and passes; so does a field named constructor.
        else if (n === 14) out.emit({ ...it, payload: new Story("kept") } as unknown as Envelope);
        else if (n === 13) out.emit({ ...it, payload: { constructor: "x", title: "t" } });
        else out.emit(it);
      }
    },
  });
  const { out, deadLetters, stats } = await run(
    actor,
    Array.from({ length: 20 }, (_, i) => item(i)),
  );
  assert.equal(out.length, 11);
  assert.equal(stats.retries, 0, "the same code fails the same way: split at once, no retries");
  assert.deepEqual(
    deadLetters.entries.map((d) => [nOf(d), d.reason]),
    [
      [4, `failed: emitted null, ${NOT_ENVELOPE}`],
      [9, `failed: emitted an object with no payload, ${NOT_ENVELOPE}`],
      // Without its input's event a durable edge could not read it back, and the Deduper
      // could not claim it: emitted as { ...item, payload }, it keeps its input's.
      [10, `failed: emitted an object with no string event, ${NOT_ENVELOPE}`],
      [12, `failed: emitted text, ${NOT_ENVELOPE}`],
      [
        15,
        `failed: emitted an object whose payload is a string (a payload is an object), ${NOT_ENVELOPE}`,
      ],
      [
        16,
        "failed: emitted an object whose payload is an object whose toJSON gives an array, which " +
        `JSON does not write as an object of its fields (a payload is an object), ${NOT_ENVELOPE}`,
      ],
      [
        17,
        `failed: emitted an object whose payload is an array (a payload is an object), ${NOT_ENVELOPE}`,
      ],
      [
        18,
        "failed: emitted an object whose payload is a Map, which JSON does not write as an " +
        `object of its fields (a payload is an object), ${NOT_ENVELOPE}`,
      ],
      [
        19,
        "failed: emitted an object whose payload is a URL, which JSON does not write as an " +
        `object of its fields (a payload is an object), ${NOT_ENVELOPE}`,
      ],
    ],
  );
});

Deno.test("a stage's error quoting a URL with a password is masked in the log and the dead letter", async () => {
  const actor: Actor = {
    handle(batch) {
      if (batch.some((it) => it.payload.n === 5)) {
        throw new Error("cannot reach postgres://u:s3cret@db/test?password=hunter2");
      }
    },
  };
  const { deadLetters, log } = await run(actor, Array.from({ length: 10 }, (_, i) => item(i)));
  assert.equal(deadLetters.entries.length, 1);
  assert.equal(
    deadLetters.entries[0].reason,
    "failed: cannot reach postgres://u:***@db/test?password=***",
  );
  assert.ok(log.lines.some((l) => l.includes("failed, retrying")));
  assert.ok(
    !log.lines.some((l) => l.includes("s3cret") || l.includes("hunter2")),
    log.lines.join("\n"),
  );
});

Deno.test("the reasons a stage gives are counted and lettered as masked strings, whatever it passes", async () => {
  // A step module is not type-checked: an Error or object as reason keyed the counts by
  // identity (20 rejected, 1 counted), a missing one left the letter without a reason, and a
  // URL's password went into dead letters and the summary as it was written.
  const reasons: unknown[] = [
    "bad: postgres://u:pgsecret@db.internal/news",
    new Error("boom"),
    { code: 7 },
    {},
    undefined,
    "",
  ];
  const actor: Actor = {
    handle(batch, out) {
      for (const it of batch) {
        const n = it.payload.n as number;
        const reason = reasons[n % reasons.length] as string;
        if (n < 12) out.reject(it, reason);
        else out.drop(it, reason);
      }
    },
  };
  const { out, stats, deadLetters, log } = await run(
    actor,
    Array.from({ length: 24 }, (_, i) => item(i)),
  );
  assert.equal(out.length, 0);
  const expected = [
    ["bad: postgres://u:***@db.internal/news", 2],
    ["boom", 2],
    ['{"code":7}', 2],
    ["no reason given", 6],
  ];
  assert.deepEqual([...stats.rejected].sort(), [...expected].sort());
  assert.deepEqual([...stats.dropped].sort(), [...expected].sort());
  assert.equal(deadLetters.entries.length, 12);
  assert.ok(
    deadLetters.entries.every((d) =>
      typeof d.reason === "string" && !d.reason.includes("pgsecret")
    ),
  );
  const said = log.lines.filter((l) => l.includes("take a reason"));
  assert.equal(said.length, 1, "said once");
  assert.match(said[0], /got object \(counted as "boom"\)/);
});

Deno.test("a stage that empties its batch before throwing takes no item from the retry and the split", async () => {
  const actor: Actor = {
    handle(batch, out) {
      const mine = batch as Envelope[];
      const bad = mine.some((it) => it.payload.n === 6);
      const all = mine.splice(0, mine.length);
      if (bad) throw new Error("6 is bad");
      for (const it of all) out.emit(it);
    },
  };
  const { out, deadLetters } = await run(actor, Array.from({ length: 10 }, (_, i) => item(i)));
  assert.equal(out.length, 9);
  assert.deepEqual(deadLetters.entries.map((d) => nOf(d)), [6]);
});

Deno.test("a stage in plain JavaScript whose handle returns a value that is no promise is done, not failed", async () => {
  const actor = {
    handle(batch: readonly Envelope[], out: { emit(e: Envelope): void }) {
      for (const it of batch) out.emit(it);
      return 42;
    },
  } as unknown as Actor;
  const { out, deadLetters } = await run(actor, Array.from({ length: 10 }, (_, i) => item(i)));
  assert.equal(out.length, 10);
  assert.equal(deadLetters.entries.length, 0);
});

Deno.test("outputs of an attempt that threw are discarded, so a retry does not double them", async () => {
  let first = true;
  const actor: Actor = {
    handle(batch, out) {
      for (const it of batch) out.emit(it);
      if (first) {
        first = false;
        throw new Error("after emitting");
      }
    },
  };
  const { out } = await run(actor, [item(1), item(2)]);
  assert.deepEqual(out.map((i) => i.id), ["id1", "id2"]);
});

Deno.test("concurrency keeps several batches in handle at once, and never more", async () => {
  let inHandle = 0;
  let most = 0;
  const actor: Actor = {
    async handle(batch, out) {
      most = Math.max(most, ++inHandle);
      await new Promise((r) => setTimeout(r, 5));
      inHandle--;
      for (const it of batch) out.emit(it);
    },
  };
  const items = Array.from({ length: 200 }, (_, i) => item(i));
  const { out } = await run(actor, items, { concurrency: 4, batch: 10 });
  assert.equal(out.length, 200);
  assert.equal(new Set(out.map((i) => i.id)).size, 200);
  assert.equal(most, 4);
});

Deno.test("an error that says retryable: false is not retried but split at once to find the bad item", async () => {
  const seen: number[] = [];
  const actor: Actor = {
    handle(batch, out) {
      seen.push(batch.length);
      if (batch.some((it) => it.payload.n === 5)) {
        throw Object.assign(new Error("400 input 5 is not valid"), { retryable: false });
      }
      for (const it of batch) out.emit(it);
    },
  };
  const items = Array.from({ length: 16 }, (_, i) => item(i));
  const { out, stats, deadLetters } = await run(actor, items, { batch: 16, retries: 3 });
  assert.equal(stats.retries, 0, "no retry of a batch that would fail the same way");
  // 16 fails; 0-7 fails; 0-3 passes; 4-7 fails; 4-5 fails; 4 passes; 5 fails alone; 6-7, 8-15 pass.
  assert.deepEqual(seen, [16, 8, 4, 4, 2, 1, 1, 2, 8], "halves down to the bad item");
  assert.equal(out.length, 15);
  assert.equal(deadLetters.entries.length, 1);
  assert.equal(deadLetters.entries[0].item.id, "id5");
  assert.equal(deadLetters.entries[0].attempts, 5, "one attempt per level, none repeated");

  // The same failure without the flag costs the retries first.
  seen.length = 0;
  const plain: Actor = {
    handle(batch, out) {
      seen.push(batch.length);
      if (batch.some((it) => it.payload.n === 5)) throw new Error("flaky?");
      for (const it of batch) out.emit(it);
    },
  };
  const again = await run(plain, Array.from({ length: 16 }, (_, i) => item(i)), {
    batch: 16,
    retries: 3,
  });
  assert.equal(again.stats.retries, 3);
  assert.deepEqual(seen.slice(0, 4), [16, 16, 16, 16]);
});

Deno.test("a dropped connection is tried again without spending the batch's retries", async () => {
  // Five outages in a row against a budget of one retry: before, the batch
  // was split and its good items went to dead letters "connection lost".
  let drops = 5;
  const actor: Actor = {
    handle(batch, out) {
      if (drops-- > 0) throw new RedisConnectionLostError("EVALSHA");
      for (const it of batch) out.emit(it);
    },
  };
  const { out, stats, deadLetters, log } = await run(actor, [item(1), item(2)], { retries: 1 });
  assert.deepEqual(out.map((it) => it.id), ["id1", "id2"]);
  assert.equal(deadLetters.entries.length, 0);
  assert.equal(stats.retries, 5);
  assert.equal(out[0].attempts, 0, "an outage is no attempt of the item's");
  assert.equal(log.lines.filter((l) => l.includes("met an outage")).length, 1, "said once");
  // And its end is said, once.
  assert.equal(
    log.lines.filter((l) => /batch of 2 went through after waiting \d+ s for the outage/.test(l))
      .length,
    1,
    log.lines.join("\n"),
  );
});

Deno.test("a service that is away (away: true) is waited out too; an error without it is not", async () => {
  // An adapter's error after its own retries: a 503, a refused connection.
  let away = 8;
  const actor: Actor = {
    handle(batch, out) {
      if (away-- > 0) throw Object.assign(new Error("503 Service Unavailable"), { away: true });
      for (const it of batch) out.emit(it);
    },
  };
  const waited = await run(actor, [item(1), item(2), item(3)], { retries: 0 });
  assert.deepEqual(waited.out.map((it) => it.id), ["id1", "id2", "id3"]);
  assert.equal(waited.deadLetters.entries.length, 0);

  // The same failures without the mark: retries spent, the batch split, every item a letter.
  away = 8;
  const plain: Actor = {
    handle(batch, out) {
      if (away-- > 0) throw new Error("503 Service Unavailable");
      for (const it of batch) out.emit(it);
    },
  };
  const split = await run(plain, [item(1), item(2), item(3)], { retries: 0 });
  assert.equal(split.deadLetters.entries.length, 3);
});

Deno.test("a service away past awayMaxMs fails as any failure: a one-shot flow does not wait for ever", async () => {
  // A wrong URL, a service that never comes back: before the cap, this never ended.
  const calls: number[] = [];
  const actor: Actor = {
    handle(batch) {
      calls.push(batch.length);
      throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { away: true });
    },
  };
  const { deadLetters, log } = await run(actor, [item(1), item(2)], { retries: 1, awayMaxMs: 30 });
  assert.deepEqual(
    deadLetters.entries.map((l) => l.reason),
    Array(2).fill("failed: connect ECONNREFUSED 127.0.0.1:9"),
  );
  assert.equal(log.lines.filter((l) => l.includes("gave up waiting")).length, 1);
  // After the cap: one retry of the batch, then its halves once each, without waiting again.
  assert.deepEqual(calls.slice(-4), [2, 2, 1, 1]);
});

Deno.test("stages fused into one step: the step's window makes the batches, a later stage gets them cut to its own window", async () => {
  const input = new Channel<Envelope<unknown>>(1000);
  const output = new Channel<Envelope<unknown>>(100_000);
  const deadLetters = new MemoryDeadLetters();
  const ctl = new AbortController();
  const sizes = { first: [] as number[], second: [] as number[] };
  const stage = (name: "first" | "second", window?: { size: number; maxWeight?: number }) => ({
    actor: ({
      handle(batch, out) {
        sizes[name].push(batch.length);
        for (const it of batch) {
          if (name === "second" && it.payload.n === 13) out.reject(it, "thirteen");
          else out.emit(it);
        }
      },
    } satisfies Actor) as Actor<unknown, unknown>,
    ctx: { flow: "f", stage: name, signal: ctl.signal, log: memoryLogger() },
    stats: new StageStats(name, "test"),
    retries: 0,
    window,
  });
  const first = stage("first", { size: 10 });
  const running = runStageLoop({
    stages: [first, stage("second", { size: 4 })],
    edge: new MemoryEdge(input, output, deadLetters, ctl.signal),
    window: first.window,
    concurrency: 1,
  });
  const items = Array.from({ length: 25 }, (_, i) => item(i));
  for (let i = 0; i < items.length; i += 5) await input.send(items.slice(i, i + 5));
  input.close();
  await running;
  const out: Envelope[] = [];
  for await (const b of output) out.push(...(b as Envelope[]));
  assert.deepEqual(sizes.first, [10, 10, 5]);
  assert.deepEqual(sizes.second, [4, 4, 2, 4, 4, 2, 4, 1]);
  assert.deepEqual(out.map((it) => it.payload.n), items.map((_, n) => n).filter((n) => n !== 13));
  assert.deepEqual(deadLetters.entries.map((l) => [l.item.id, l.stage, l.reason]), [
    ["id13", "second", "thirteen"],
  ]);
});

Deno.test("a stage that takes merge updates counts, and reports per batch, only the items", async () => {
  const batches: number[] = [];
  const actor: Actor = {
    updates: true,
    handle(batch, out) {
      for (const it of batch) out.emit(it);
    },
  };
  const items = Array.from(
    { length: 20 },
    (_, i) => i % 4 === 0 ? { ...item(i), update: true as const } : item(i),
  );
  const input = new Channel<Envelope<unknown>>(1000);
  const output = new Channel<Envelope<unknown>>(1000);
  const stats = new StageStats("s", "test");
  stats.onBatch = (n) => batches.push(n);
  const ctl = new AbortController();
  const running = runStageLoop({
    stages: [{
      actor: actor as Actor<unknown, unknown>,
      ctx: { flow: "f", stage: "s", signal: ctl.signal, log: memoryLogger() },
      stats,
      retries: 0,
      backoffBase: 1,
    }],
    edge: new MemoryEdge(input, output, new MemoryDeadLetters(), ctl.signal),
    concurrency: 1,
  });
  await input.send(items.slice(0, 10));
  await input.send(items.slice(10));
  input.close();
  await running;
  assert.equal(stats.received, 15);
  assert.equal(stats.emitted, 15);
  // Before: 10 and 10, the updates counted in the batch-size metric but not in `received`.
  assert.deepEqual(batches, [7, 8]);
});

Deno.test("a service that fails whatever it is given is not asked once per piece of the split", async () => {
  let calls = 0;
  const down: Actor = {
    handle() {
      calls++;
      // As the API clients say it: the service's failure, not the input's (RetryHint.service).
      throw Object.assign(new Error("no reply within 30000 ms"), { service: true });
    },
  };
  const items = Array.from({ length: 64 }, (_, i) => item(i));
  const { deadLetters, stats, log } = await run(down, items, { batch: 64, retries: 2 });
  // Before: 3 tries, then every piece of the split, 2 * 64 - 1 in all: 129 calls.
  assert.equal(calls, 12);
  assert.equal(deadLetters.entries.length, 64, "every item still goes to dead letters");
  assert.equal(stats.failed, 64);
  const untried = deadLetters.entries.filter((d) => /not tried alone/.test(d.reason));
  assert.equal(untried.length, 61);
  assert.match(untried[0].reason, /^failed: no reply within 30000 ms \(not tried alone: 3 items/);
  assert.ok(log.lines.some((l) => /3 items failed alone and none of their batch passed/.test(l)));
});

Deno.test("three bad items at the head of a batch go to dead letters alone; the other 13 pass", async () => {
  let calls = 0;
  const actor: Actor = {
    handle(batch, out) {
      calls++;
      // A stage's own code refusing bad input: a plain Error, which says nothing of a service.
      if (batch.some((it) => (it.payload.n as number) < 3)) throw new Error("bad input");
      for (const it of batch) out.emit(it);
    },
  };
  const items = Array.from({ length: 16 }, (_, i) => item(i));
  const { out, deadLetters, stats } = await run(actor, items, { batch: 16, retries: 2 });
  // Before: items 0, 1 and 2 failed alone before any piece passed, and the split gave up on
  // the service, sending the 13 good items to dead letters untried ("not tried alone").
  assert.deepEqual(out.map((it) => it.payload.n), items.map((_, n) => n).slice(3));
  assert.deepEqual(deadLetters.entries.map((d) => [d.item.id, d.reason]), [
    ["id0", "failed: bad input"],
    ["id1", "failed: bad input"],
    ["id2", "failed: bad input"],
  ]);
  assert.equal(stats.failed, 3);
  // 3 tries of the 16, then the split: [0-7] [0-3] [0-1] [0] [1] [2-3] [2] [3] [4-7] [8-15].
  assert.equal(calls, 13);
});

Deno.test("two bad items side by side are split out alone; their batch-mates pass", async () => {
  const actor: Actor = {
    handle(batch, out) {
      if (batch.some((it) => (it.payload.n as number) < 2)) throw new Error("bad input");
      for (const it of batch) out.emit(it);
    },
  };
  const { out, deadLetters } = await run(actor, Array.from({ length: 16 }, (_, i) => item(i)), {
    batch: 16,
  });
  assert.equal(out.length, 14);
  assert.deepEqual(deadLetters.entries.map(nOf), [0, 1]);
});

Deno.test("a mistake in a stage's code is dead-lettered with the file and line it happened at", async () => {
  const actor: Actor = {
    handle(batch, out) {
      for (const it of batch) {
        const n = it.payload.n as number;
        // A step that trusts a field some items lack: a TypeError, thrown here.
        if (n === 3) (it.payload as unknown as { tags: string[] }).tags.length;
        if (n === 5) throw new Error("refused on purpose");
        // Thrown by a built-in for the line that called it (before: no file:line).
        if (n === 6) ([] as number[]).reduce((a, b) => a + b);
        if (n === 7) new URL(String(it.payload.link));
        out.emit(it);
      }
    },
  };
  const { deadLetters } = await run(actor, Array.from({ length: 8 }, (_, i) => item(i)));
  const reasons = Object.fromEntries(deadLetters.entries.map((d) => [nOf(d), d.reason]));
  const here = String.raw` \(at tests/engine/stage_runner_test\.ts:\d+:\d+\)$`;
  assert.match(
    reasons[3],
    new RegExp(
      String.raw`^failed: Cannot read properties of undefined \(reading 'length'\)` + here,
    ),
  );
  assert.match(
    reasons[6],
    new RegExp("^failed: Reduce of empty array with no initial value" + here),
  );
  assert.match(reasons[7], new RegExp("^failed: Invalid URL: 'undefined'" + here));
  // An error thrown on purpose says what it says.
  assert.equal(reasons[5], "failed: refused on purpose");
});

Deno.test("a TypeError that comes back through an await from Deno's own code names no line", async () => {
  // A fetch's network failure is a TypeError thrown in Deno's fetch: the step's line made no mistake.
  const actor: Actor = {
    async handle(batch, out) {
      for (const it of batch) {
        await fetch("http://127.0.0.1:1/");
        out.emit(it);
      }
    },
  };
  const { deadLetters } = await run(actor, [item(0)], { retries: 0 });
  assert.equal(deadLetters.entries.length, 1);
  assert.match(deadLetters.entries[0].reason, /^failed: .*fetch failed|^failed: .*blocked/i);
  assert.doesNotMatch(deadLetters.entries[0].reason, /\(at /);
});

Deno.test("a stage that loses items without a word, or returns them, is told so once", async () => {
  // A step that forgot to emit what it filtered out, and one that returns its output.
  const forgets: Actor = {
    handle(batch, out) {
      for (const it of batch) if ((it.payload.n as number) % 2 === 0) out.emit(it);
    },
  };
  const lost = await run(forgets, Array.from({ length: 20 }, (_, i) => item(i)));
  assert.equal(lost.out.length, 10);
  // Counted, so the summary adds up: dropped, with the engine's reason.
  assert.deepEqual(lost.stats.toJSON().dropped, { "not passed on": 10 });
  const said = lost.log.lines.filter((l) => l.includes("neither emitted"));
  assert.equal(said.length, 1, lost.log.lines.join("\n"));
  assert.match(
    said[0],
    /f\/s: 5 of a batch's 10 items were neither emitted, dropped nor rejected \(counted as dropped, "not passed on"\): .*out\.drop.* \(said once\)/,
  );

  const returns = {
    handle(batch: Envelope[]) {
      return batch;
    },
  } as unknown as Actor;
  const returned = await run(returns, Array.from({ length: 20 }, (_, i) => item(i)));
  assert.equal(returned.out.length, 0);
  const lines = returned.log.lines.filter((l) => l.includes("(said once)"));
  assert.equal(lines.length, 2, returned.log.lines.join("\n"));
  assert.match(lines[0], /handle returned an array, which is not read: .*out\.emit\(item\)/);

  // A stage that accounts for each item says nothing.
  const good: Actor = {
    handle(batch, out) {
      for (const it of batch) {
        if ((it.payload.n as number) % 2 === 0) out.emit(it);
        else out.drop(it, "odd");
      }
    },
  };
  assert.deepEqual((await run(good, [item(1), item(2)])).log.lines, []);
});

Deno.test("a stage giving each item its own reason is counted by 20 of them, the rest as other reasons, and told once", async () => {
  // Before: a counter per item ("price missing for <url>"), kept for the life of a polled
  // flow, and a summary row of 318,260 characters over 3,000 items.
  const actor: Actor = {
    handle(batch, out) {
      for (const it of batch) {
        const n = it.payload.n as number;
        if (n % 2 === 0) out.reject(it, `price missing for https://example.com/${n}`);
        else if (n < 90) out.drop(it, `odd ${n}`);
        // The last odd ones let go unsaid: the engine's own reason is counted apart.
      }
    },
  };
  const { stats, deadLetters, log } = await run(
    actor,
    Array.from({ length: 100 }, (_, i) => item(i)),
  );
  const { dropped, rejected } = stats.toJSON();
  assert.equal(Object.keys(rejected).length, MAX_REASONS + 1);
  assert.equal(rejected[OTHER_REASONS], 50 - MAX_REASONS);
  assert.equal(rejected["price missing for https://example.com/0"], 1);
  assert.equal(Object.keys(dropped).length, MAX_REASONS + 2);
  assert.equal(dropped[OTHER_REASONS], 45 - MAX_REASONS);
  assert.equal(dropped["not passed on"], 5);
  // So for a stage held to account as a step module is, which says the items it let go
  // through out.drop (before: folded into other reasons there).
  const held = await run(accounted(actor), Array.from({ length: 100 }, (_, i) => item(i)));
  assert.equal(held.stats.toJSON().dropped["not passed on"], 5);
  // Every dead letter keeps its own words.
  assert.equal(deadLetters.entries.length, 50);
  assert.equal(deadLetters.entries.at(-1)!.reason, "price missing for https://example.com/98");
  const said = log.lines.filter((l: string) => l.includes("different reasons"));
  assert.equal(said.length, 1, log.lines.join("\n"));
  assert.match(
    said[0],
    /f\/s: more than 20 different reasons .* counted as "other reasons".*detail/,
  );
});

Deno.test("merge updates a failing stage dead-letters are counted as such among the failed", async () => {
  const actor: Actor = {
    updates: true,
    handle() {
      throw new Error("search is down");
    },
  };
  const items = Array.from(
    { length: 8 },
    (_, i) => i % 2 === 0 ? { ...item(i), update: true as const } : item(i),
  );
  const { stats, deadLetters } = await run(actor, items, { retries: 0, batch: 8 });
  assert.equal(deadLetters.entries.length, 8);
  assert.deepEqual([stats.received, stats.failed, stats.failedUpdates], [4, 8, 4]);
  assert.equal(stats.toJSON().failedUpdates, 4);
});

Deno.test("a batch of merge updates alone is not a batch of items: batches and the batch-size hook leave it out", async () => {
  // Before: counted as a batch of 0 items, so the dashboard said a publishing stage's batch
  // size was 0.0 and millrace_batch_items' mean fell with each batch of updates alone.
  const actor: Actor = {
    updates: true,
    handle(batch, out) {
      for (const it of batch) out.emit(it);
    },
  };
  const updates = [0, 1, 2, 3].map((i) => ({ ...item(i), update: true as const }));
  const seen: number[] = [];
  const input = [
    ...updates,
    item(4),
    item(5),
    ...updates.map((u) => ({ ...u, event: u.event + "b" })),
  ];
  const { stats } = await run(actor, input, { batch: 4, onBatch: (n) => seen.push(n) });
  assert.deepEqual(seen, [2], "one batch held items: two of them");
  assert.equal(stats.batches, 1);
  assert.equal(stats.received, 2);
});

Deno.test("a failure's Retry-After (retryAfterMs) holds the batch's next try and its halves; its message is cut short", async () => {
  const at: number[] = [];
  const actor: Actor = {
    handle(batch, out) {
      at.push(performance.now());
      if (batch.some((it) => it.payload.n === 3)) {
        // A server's answer after its client's own retries: wait 200 ms, says its Retry-After.
        throw Object.assign(new Error("429 " + "<p>busy</p>".repeat(10_000)), {
          retryAfterMs: 200,
        });
      }
      for (const it of batch) out.emit(it);
    },
  };
  const { out, deadLetters } = await run(actor, [1, 2, 3, 4].map(item), { retries: 1, batch: 4 });
  assert.deepEqual(out.map((it) => it.payload.n), [1, 2, 4]);
  const letters = deadLetters.entries;
  assert.deepEqual(letters.map(nOf), [3]);
  // The try, its retry, then halves [1, 2] and [3, 4], then [3] and [4]: each after what was asked,
  // where the stage's own backoff (1 ms here) sent them at once.
  assert.equal(at.length, 6);
  const gaps = at.slice(1).map((t, i) => t - at[i]);
  for (const i of [0, 1, 3]) assert.ok(gaps[i] >= 190, `tries ${Math.round(gaps[i])} ms apart`);
  assert.match(letters[0].reason, /^failed: 429 (<p>busy<\/p>)+[^…]*… \(\d+ more characters\)/);
  assert.ok(letters[0].reason.length < 2_200, `${letters[0].reason.length} characters`);
});

Deno.test("a try past batchTimeout has its signal aborted and is said; the batch is split down to the item that hangs", async () => {
  // Given up on without a word, a slow try ran on, and its halves ran its items a second time.
  const ended: number[][] = [];
  const actor: Actor = {
    async handle(batch, out, ctx) {
      const ns = batch.map((it) => it.payload.n as number);
      if (ns.includes(3)) {
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
        ended.push(ns);
        return;
      }
      for (const it of batch) out.emit(it);
    },
  };
  const { out, deadLetters, log, stats } = await run(actor, [0, 1, 2, 3, 4, 5, 6, 7].map(item), {
    batch: 8,
    batchTimeout: 50,
  });
  assert.deepEqual(out.map((it) => it.payload.n).sort(), [0, 1, 2, 4, 5, 6, 7]);
  assert.deepEqual(deadLetters.entries.map(nOf), [3]);
  assert.match(deadLetters.entries[0].reason, /^failed: handle did not return within 50 ms/);
  // Each try that held item 3 saw its signal aborted: 8, then 4, 2 and 1 items.
  assert.deepEqual(ended.map((ns) => ns.length), [8, 4, 2, 1]);
  // Said once, not once per try: a stage that hangs on every item had a line per try.
  const said = log.lines.filter((l) => l.includes("did not return within its batchTimeout"));
  assert.equal(said.length, 1, log.lines.join("\n"));
  assert.equal(stats.retries, 0);
});
