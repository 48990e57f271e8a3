/**
 * The demo flow and its durable twin are the same flow on two runtimes: they
 * must publish the same items and dead-letter the same ones for the same
 * reasons. Both run from their real files; the durable one against a
 * private redis-server, both writing to temporary directories.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readJsonl } from "../engine/redis/_harness.ts";
import { redisTest, withRedis } from "../_redis_server.ts";
import { runTestFlow, type TestFlowResult } from "../../testing.ts";

const FLOWS = new URL("../../flows/", import.meta.url);

async function runDemo(file: string, redis?: string) {
  const outDir = await Deno.makeTempDir();
  try {
    const yaml = await Deno.readTextFile(new URL(file, FLOWS));
    const result = await runTestFlow(yaml, { outDir, redis });
    const lines = await readJsonl(join(outDir, "items.jsonl"));
    return { result, ids: lines.map((l) => String(l.id)).sort() };
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
}

function refusals(result: TestFlowResult): string[] {
  return result.deadLetters.map((d) => `${d.item.id} ${d.stage} ${d.reason}`).sort();
}

redisTest(
  "the demo publishes and dead-letters the same items in memory and over Redis",
  async () => {
    const memory = await runDemo("demo.yaml");
    const durable = await withRedis((server) => runDemo("demo-durable.yaml", server.url));

    assert.equal(memory.result.report.published, 4200, "the demo's own count");
    assert.equal(memory.ids.length, 4200, "one line per published item");
    assert.equal(new Set(memory.ids).size, memory.ids.length, "no id twice");
    assert.deepEqual(durable.ids, memory.ids);
    assert.equal(refusals(memory.result).length, 200);
    assert.deepEqual(refusals(durable.result), refusals(memory.result));
  },
);
