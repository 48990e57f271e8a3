import assert from "node:assert/strict";
import { loadFlow } from "../../../config/load_flow.ts";
import { builtinRegistry } from "../../../builtins.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { type FlowReport, startFlow } from "../../../engine/run_flow.ts";
import { FlowWorker, redisTest, startRedis, waitFor, writeFlow } from "./_harness.ts";

/**
 * A hard stop ends the run even when Redis is gone: what the process held
 * is abandoned (Redis delivers it again once it is back), nothing waits on
 * a connection that will never answer. Before, `kill()` while Redis was
 * down left `done` unsettled for ever, and `run` never exited after its
 * grace period (SIGTERM from a supervisor with Redis down).
 */
/** The flow both tests run: a million items, so it is mid-way when Redis goes. */
function bigFlow(port: number, dir: string): string {
  return `
name: killdown
durability: redis
redis: redis://127.0.0.1:${port}
output: ${dir}
sources:
  news: { kind: generator, count: 1000000, seed: 3 }
pipeline:
  - validate: { require: [title, url] }
  - dedupe: { key: [url], near: { threshold: 0.8 } }
  - enrich: { steps: [domain, word-count] }
  - embed: { provider: local, dimensions: 16, batch: { size: 256, maxWait: 200ms } }
  - publish:
      - jsonl: { path: items.jsonl }
`;
}

/**
 * Runs the big flow until items reach publish, takes its Redis away with
 * `away`, stops it, kills it, and returns the report `done` settles with;
 * fails (rather than hangs) if it does not settle within 20 s.
 */
async function killWithoutRedis(
  away: (server: Awaited<ReturnType<typeof startRedis>>) => unknown,
): Promise<FlowReport> {
  const server = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "millrace-kill-down-" });
  try {
    const path = await writeFlow(dir, bigFlow(server.port, dir));
    const registry = builtinRegistry();
    const flow = await loadFlow(path, registry);
    const running = await startFlow(flow, {
      registry,
      deadLetters: new MemoryDeadLetters(),
      log: memoryLogger(),
    });
    await waitFor("items to reach publish", () => running.stages.at(-1)!.received > 0);
    await away(server);
    // Every step is now waiting on Redis: stopping gracefully cannot finish.
    running.stop();
    await new Promise((r) => setTimeout(r, 300));
    running.kill();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const hung = new Promise<"hung">((r) => timer = setTimeout(() => r("hung"), 20_000));
    const report = await Promise.race([running.done, hung]);
    clearTimeout(timer);
    assert.notEqual(report, "hung", "done settles after kill");
    return report as FlowReport;
  } finally {
    server.signal("SIGCONT"); // thawed, if frozen, so it can be stopped
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

redisTest("kill ends a durable run whose Redis is down, with a killed report", async () => {
  const report = await killWithoutRedis((server) => server.stop());
  assert.equal(report.killed, true);
  assert.equal(report.stopped, true);
});

redisTest(
  "kill ends a durable run whose Redis froze, reporting the items it held in flight",
  async () => {
    // A frozen Redis (SIGSTOP) keeps its connections open and answers nothing:
    // each call waits out its reply timeout (30 s), and the report used to say
    // 0 in flight though entries it had read stayed pending.
    const report = await killWithoutRedis((server) => server.pause());
    assert.equal(report.killed, true);
    // It held items: the report said 0 before, counting only what its stages had not
    // emitted, though the commits of what they had emitted never reached Redis.
    assert.ok(report.inFlight > 0, "items were held when the kill came");
  },
);

redisTest(
  "run, signalled while Redis is down, exits 1 after its grace period and says what it left",
  async () => {
    const server = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "millrace-kill-down-cli-" });
    const worker = new FlowWorker(await writeFlow(dir, bigFlow(server.port, dir)), {
      main: true,
      args: ["--grace", "1s"],
    });
    try {
      await waitFor("items to be published", async () => {
        try {
          return (await Deno.stat(`${dir}/items.jsonl`)).size > 0;
        } catch {
          return false;
        }
      });
      await server.stop();
      worker.kill("SIGTERM");
      const r = await worker.finished(30_000);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /grace period of 1s ran out: stopped with \d+ items? still in flight/);
      assert.match(r.stderr, /delivered again on the next run, not lost/);
    } finally {
      worker.kill();
      await worker.result;
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

redisTest(
  "run, signalled while Redis is frozen and no item is in flight, says so and exits 0 after its grace",
  async () => {
    // It said "0 items still in flight; they stay pending in Redis" and exited 1, the code
    // for items abandoned, when none were: only the goodbye to Redis went unanswered.
    const server = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "millrace-kill-idle-cli-" });
    const flow = bigFlow(server.port, dir).replace(
      "{ kind: generator, count: 1000000, seed: 3 }",
      "{ kind: generator, count: 300, seed: 3, every: 1h }",
    );
    const worker = new FlowWorker(await writeFlow(dir, flow), {
      main: true,
      args: ["--grace", "1s"],
    });
    try {
      await waitFor("the items to be published", async () => {
        try {
          return (await Deno.readTextFile(`${dir}/items.jsonl`)).split("\n").length > 200;
        } catch {
          return false;
        }
      });
      await new Promise((r) => setTimeout(r, 500)); // the last batches committed
      server.pause();
      worker.kill("SIGTERM");
      const r = await worker.finished(30_000);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        /killdown: grace period of 1s ran out with no item in flight: what was left undone was the goodbye to Redis or a sink, which did not answer in time/,
      );
    } finally {
      server.signal("SIGCONT");
      worker.kill();
      await worker.result;
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
