/**
 * The stage loop with concurrency > 1: a batch that fails while the loop
 * waits to read (its source quiet, its input empty) ends the flow with its
 * error, as it does with concurrency 1, instead of waiting for items that
 * may never come.
 */
import assert from "node:assert/strict";
import { defineFlow } from "../../config/define_flow.ts";
import { memoryLogger } from "../../engine/log.ts";
import { startFlow } from "../../engine/run_flow.ts";
import { conformanceRegistry, Probe } from "./_conformance_registry.ts";

/** Long enough for a failing flow to end many times over; past it the flow hangs. */
const HANG_MS = 10_000;

Deno.test("with concurrency, a batch that fails while the loop waits to read ends the flow", async () => {
  const registry = conformanceRegistry(new Probe());
  const out = await Deno.makeTempDir({ prefix: "millrace-stage-loop-" });
  try {
    const flow = defineFlow({
      name: "fails",
      output: out,
      // The source stays open after its two items: no item comes to wake the loop.
      sources: { n: { kind: "feed", count: 2, batch: 1, hold: true } },
      pipeline: [
        { record: { delayMs: 20 } },
        { explode: { bad: ["n1"], retries: 0, concurrency: 2 } },
      ],
    }, registry);
    const running = await startFlow(flow, {
      registry,
      log: memoryLogger(),
      backoffBase: 1,
      deadLetters: { write: () => Promise.reject(new Error("dead letters: disk full")) },
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
    assert.equal(ended, "failed: dead letters: disk full");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
