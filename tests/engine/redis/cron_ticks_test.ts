/**
 * A cron source of a durable flow run by three processes is polled once per
 * tick, by whichever process holds its lease, even as the lease moves: the
 * last tick polled is stored beside the source's position, so a process
 * taking over polls neither a tick already polled nor, twice, one missed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  client,
  flowKeys,
  FlowWorker,
  killAll,
  readJsonl,
  redisTest,
  repeats,
  startRedis,
  tail,
  waitFor,
  writeFlow,
} from "./_harness.ts";

const TICK_MS = 2_000;

/**
 * Waits until `ms` before the tick `next()` names (the one after the last
 * polled); if that moment has passed, for the tick after. Times an action
 * in the test, never an assertion.
 */
async function justBefore(next: () => Promise<number>, ms: number): Promise<void> {
  for (;;) {
    const at = (await next()) - ms;
    if (Date.now() < at) return await new Promise((r) => setTimeout(r, at - Date.now()));
    await new Promise((r) => setTimeout(r, 100));
  }
}

redisTest("three processes poll a cron source once per tick while its lease moves", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-cron-" });
  const server = await startRedis();
  const redis = client(server);
  const keys = flowKeys("ticks");
  const flowPath = await writeFlow(
    dir,
    `
name: ticks
durability: redis
redis: ${server.url}
output: ${dir}
sources:
  t:
    kind: tick-log
    cron: "*/2 * * * * *"
    redis: ${server.url}
    tickKey: "${keys.tick("t")}"
    list: test:polls
pipeline:
  - publish:
      sinks: [ { jsonl: { path: items.jsonl } } ]
      batch: { size: 1, maxWait: 10ms }
durable: { claimAfter: 1s }
`,
  );
  const workers = [0, 1, 2].map(() => new FlowWorker(flowPath));
  const polls = async () => await redis.llen("test:polls");
  /** The worker holding the source's lease now (its consumer name carries the pid). */
  const holder = async () => {
    const lease = await redis.get(keys.lease("t"));
    return workers.find((w) => lease?.split(":")[1] === String(w.pid));
  };
  try {
    await waitFor("3 polls", async () => await polls() >= 3, 60_000);
    // Dies mid-lease 300 ms before a tick: its lease (1 s) runs out after
    // that tick, which no process polls when it is due; the next holder
    // polls it on taking over.
    await justBefore(async () => Number(await redis.get(keys.tick("t"))) + TICK_MS, 300);
    const first = await holder();
    assert.ok(first, "a worker holds the lease");
    first.kill("SIGKILL");
    await waitFor("6 polls", async () => await polls() >= 6, 60_000);
    const second = await holder();
    assert.ok(second && second !== first, "another worker took the lease over");
    second.kill("SIGTERM"); // stops gracefully: gives the lease back at once
    await waitFor("9 polls", async () => await polls() >= 9, 60_000);
    for (const w of workers) w.kill("SIGTERM");
    const results = await Promise.all(workers.map((w) => w.result));
    const caughtUp = results.some((r) => r.stderr.includes("polling the missed tick"));

    const lines = await redis.lrange("test:polls", 0, -1);
    const ticks = lines.map((l) => Number(l.split(" ")[0]));
    const pids = new Set(lines.map((l) => l.split(" ")[1]));
    const why = `polls:\n${lines.join("\n")}\nlast worker:\n${tail(results[2].stderr, 10)}`;
    assert.equal(repeats(ticks.map(String)).size, 0, `no tick was polled twice; ${why}`);
    assert.ok(ticks.every((t) => t % TICK_MS === 0), `each poll is for a tick; ${why}`);
    // One poll per tick, none skipped: a tick missed during a takeover is polled on takeover.
    const span = (ticks.at(-1)! - ticks[0]) / TICK_MS + 1;
    assert.equal(ticks.length, span, `as many polls as ticks; ${why}`);
    assert.deepEqual(ticks, [...ticks].sort((a, b) => a - b), why);
    assert.ok(caughtUp, `the tick missed during the takeover was polled late; ${why}`);
    assert.ok(pids.size >= 3, `the source moved between all three processes; ${why}`);
    assert.equal(Number(await redis.get(keys.tick("t"))), ticks.at(-1));
    const items = await readJsonl(join(dir, "items.jsonl"));
    assert.ok(items.length >= ticks.length - 1, "the polls' items reached the sink");
  } finally {
    await killAll(workers);
    redis.disconnect();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

redisTest(
  "a tick whose poll a SIGTERM cuts short is given back: the next run takes it for one missed",
  async () => {
    // The first poll of a fresh flow, then a later one.
    for (const hangFrom of [1, 2]) {
      const dir = await Deno.makeTempDir({ prefix: "millrace-cron-" });
      const server = await startRedis();
      const redis = client(server);
      const keys = flowKeys("ticks");
      const flowPath = await writeFlow(
        dir,
        `
name: ticks
durability: redis
redis: ${server.url}
output: ${dir}
sources:
  t:
    kind: tick-log
    cron: "* * * * * *"
    redis: ${server.url}
    tickKey: "${keys.tick("t")}"
    list: test:polls
    hangFrom: ${hangFrom}
pipeline:
  - publish: [ { jsonl: { path: items.jsonl } } ]
`,
      );
      const worker = new FlowWorker(flowPath);
      try {
        // That poll hangs (a slow server): a deploy stops the flow in the middle of it.
        await waitFor("the poll", async () => await redis.llen("test:polls") >= hangFrom, 60_000);
        const ticks = (await redis.lrange("test:polls", 0, -1)).map((p) => p.split(" ")[0]);
        const cut = ticks[hangFrom - 1];
        assert.equal(await redis.get(keys.tick("t")), cut, "claimed before the poll");
        worker.kill("SIGTERM");
        const result = await worker.finished(60_000);
        assert.equal(result.code, 0, tail(result.stderr));
        // Given back: the tick before it is stored again (for a first tick, the schedule's
        // tick before it: none stored would read as a first start, which waits for the next).
        const before = hangFrom === 1 ? String(Number(cut) - 1000) : ticks[0];
        assert.equal(await redis.get(keys.tick("t")), before, `hangFrom ${hangFrom}`);
      } finally {
        await killAll([worker]);
        await redis.quit();
        await server.stop();
        await Deno.remove(dir, { recursive: true });
      }
    }
  },
);
