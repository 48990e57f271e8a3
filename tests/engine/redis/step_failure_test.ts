/**
 * A durable step that fails (an error no retry can mend) ends the flow with
 * that error. Its loop closes its edge before the runner stops the flow, so
 * the edge must not wait for that stop to end its claim and trim loops.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineFlow } from "../../../config/define_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { startFlow } from "../../../engine/run_flow.ts";
import { conformanceRegistry, keyOf, Probe } from "../_conformance_registry.ts";
import { redisTest, withRedis } from "./_harness.ts";

/** Long enough for a failing flow to end many times over; past it the flow hangs. */
const HANG_MS = 10_000;

redisTest("a step whose commit throws ends the flow with the error", async () => {
  await withRedis(async (server) => {
    const registry = conformanceRegistry(new Probe()).stage({
      kind: "bigint",
      summary: "emits a payload JSON cannot encode for the keys in `bad`",
      schema: z.strictObject({ bad: z.array(z.string()).default([]) }),
      create: (config: { bad: string[] }) => ({
        handle(batch, out) {
          for (const item of batch) {
            const bad = config.bad.includes(keyOf(item));
            out.emit(bad ? { ...item, payload: { n: 1n } } : item);
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
        sources: { n: { kind: "feed", count: 10 } },
        pipeline: [{ bigint: { bad: ["n3"] } }, { record: {} }],
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
      assert.match(ended, /failed: .*BigInt/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });
});
