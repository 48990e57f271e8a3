/**
 * Run as a process of its own by worker_pool_test.ts: a flow whose stage
 * workers fail to open. It prints how the run failed and then ends, which
 * it can only do if no worker was left running.
 */
import { parseFlow } from "../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../engine/dead_letters.ts";
import { memoryLogger } from "../../engine/log.ts";
import { runFlow } from "../../engine/run_flow.ts";
import { poisonRegistry } from "./_poison_stage.ts";

const registry = poisonRegistry();
const out = await Deno.makeTempDir({ prefix: "millrace-open-fails-" });
const flow = parseFlow(
  `
name: open-fails
output: ${out}
sources:
  items: { kind: numbered, count: 10 }
pipeline:
  - poison: { workers: 2, failOpen: true }
  - publish:
      - jsonl: { path: items.jsonl }
`,
  "flow.yaml",
  registry,
  {},
);
try {
  await runFlow(flow, { registry, log: memoryLogger(), deadLetters: new MemoryDeadLetters() });
  console.log("ran");
} catch (error) {
  console.log(`rejected: ${(error as Error).message}`);
} finally {
  await Deno.remove(out, { recursive: true });
}
