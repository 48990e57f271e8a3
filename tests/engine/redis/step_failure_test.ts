/**
 * A durable step that fails (an error no retry can mend) ends the flow with
 * that error. Its loop closes its edge before the runner stops the flow, so
 * the edge must not wait for that stop to end its claim and trim loops.
 * Here the error is a commit whose dead letter cannot be encoded: built
 * inside the commit's retry, it read as Redis being away and hung the step.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineFlow } from "../../../config/define_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { sleep } from "../../../engine/backoff.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { startFlow } from "../../../engine/run_flow.ts";
import { conformanceRegistry, keyOf, Probe } from "../_conformance_registry.ts";
import { client, flowKeys, redisTest, withRedis } from "./_harness.ts";

/** Long enough for a failing flow to end many times over; past it the flow hangs. */
const HANG_MS = 10_000;

/** Runs a one-shot flow of `count` items through `bigint` (config `stage`); how it ended. */
async function runFailing(count: number, stage: Record<string, unknown>): Promise<string> {
  return await withRedis(async (server) => {
    const registry = conformanceRegistry(new Probe()).stage({
      kind: "bigint",
      // A payload JSON cannot encode is dead-lettered with the commit; an
      // envelope field it cannot encode leaves not even a letter to write.
      summary: "emits an envelope JSON cannot encode for the keys in `bad`",
      schema: z.strictObject({
        bad: z.array(z.string()).default([]),
        delayMs: z.int().min(0).default(0).describe("Sleep of a batch holding a bad key."),
      }),
      create: (config: { bad: string[]; delayMs: number }) => ({
        async handle(batch, out) {
          if (batch.some((item) => config.bad.includes(keyOf(item)))) await sleep(config.delayMs);
          for (const item of batch) {
            const bad = config.bad.includes(keyOf(item));
            out.emit(bad ? { ...item, ...{ extra: 1n } } : item);
          }
        },
      }),
    });
    const out = await Deno.makeTempDir({ prefix: "millrace-step-failure-" });
    try {
      const flow = defineFlow({
        name: "fails",
        output: out,
        durability: "redis",
        redis: server.url,
        sources: { n: { kind: "feed", count, batch: 1 } },
        pipeline: [{ bigint: stage }, { record: {} }],
      }, registry);
      const running = await startFlow(flow, {
        registry,
        deadLetters: new MemoryDeadLetters(),
        log: memoryLogger(),
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ended = await Promise.race([
        running.done.then(() => "finished", (e: Error) => `failed: ${e.message}`),
        new Promise<string>((r) => timer = setTimeout(() => r("hung"), HANG_MS)),
      ]);
      clearTimeout(timer);
      if (ended === "hung") {
        running.kill();
        await running.done.catch(() => {});
      }
      return ended;
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });
}

redisTest("a step whose commit throws ends the flow with the error", async () => {
  assert.match(await runFailing(10, { bad: ["n3"] }), /failed: .*BigInt/);
});

redisTest(
  "with concurrency, a batch that fails while the step waits to read ends the flow",
  async () => {
    // n0 is committed and the loop waits for more entries; none come, and
    // the failed n1 stays pending, so the flow never drains by itself either.
    const ended = await runFailing(2, { bad: ["n1"], delayMs: 300, concurrency: 2 });
    assert.match(ended, /failed: .*BigInt/);
  },
);

redisTest(
  "an entry of no items on a windowed step is acknowledged, so the flow drains",
  async () => {
    await withRedis(async (server) => {
      const registry = conformanceRegistry(new Probe());
      const out = await Deno.makeTempDir({ prefix: "millrace-empty-entry-" });
      const redis = client(server);
      try {
        const flow = defineFlow({
          name: "empty",
          output: out,
          durability: "redis",
          redis: server.url,
          sources: { n: { kind: "feed", count: 0 } },
          pipeline: [{
            publish: { sinks: [{ recording: {} }], batch: { size: 100, maxWait: 50 } },
          }],
        }, registry);
        // Written by hand (the engine never writes one): a window holds it with no deadline.
        const input = flowKeys("empty").input("publish", "normal");
        await redis.xgroup("CREATE", input, "publish", "0", "MKSTREAM");
        await redis.xadd(input, "*", "b", "[]", "n", "0");
        const running = await startFlow(flow, {
          registry,
          deadLetters: new MemoryDeadLetters(),
          log: memoryLogger(),
        });
        let timer: ReturnType<typeof setTimeout> | undefined;
        const ended = await Promise.race([
          running.done.then(() => "drained"),
          new Promise<string>((r) => timer = setTimeout(() => r("hung"), HANG_MS)),
        ]);
        clearTimeout(timer);
        if (ended === "hung") {
          running.kill();
          await running.done.catch(() => {});
        }
        assert.equal(ended, "drained");
      } finally {
        redis.disconnect();
        await Deno.remove(out, { recursive: true });
      }
    });
  },
);
