/**
 * A read whose reply the network lost: Redis handed entries to this
 * consumer (they are pending to it) but the process never saw them. They
 * are read back from its own pending list at once, not left idle until
 * the claim loop takes them for a silent consumer's, `claimAfter` later.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadFlow } from "../../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { createLogger, type Logger, memoryLogger } from "../../../engine/log.ts";
import { runFlow } from "../../../engine/run_flow.ts";
import { RedisProxy } from "../../_redis_proxy.ts";
import { client, readJsonl, redisTest, withRedis, writeFlow } from "./_harness.ts";
import { workerRegistry } from "./_worker.ts";

const COUNT = 3000;

/** Writes `yaml` as a flow in `dir` and runs it on the test stages, logging to `log`. */
async function runYaml(dir: string, yaml: string, log: Logger) {
  const registry = workerRegistry();
  const flow = await loadFlow(await writeFlow(dir, yaml), registry);
  return await runFlow(flow, { registry, deadLetters: new MemoryDeadLetters(), log });
}

redisTest(
  "entries a lost read reply delivered are read back from the consumer's own pending list, not claimed as a silent consumer's",
  async () => {
    await withRedis(async (server) => {
      const proxy = new RedisProxy(server.port);
      // Reads of publish's input that deliver: the source has written for a while when they come.
      let reads = 0;
      proxy.loseReply(
        (chunk) => /xreadgroup/i.test(chunk) && /:in:publish\r\n/.test(chunk) && ++reads > 3,
        3,
      );
      const dir = await Deno.makeTempDir({ prefix: "millrace-lost-read-" });
      try {
        const yaml = `
name: reads
durability: redis
redis: ${proxy.url}
output: ${dir}
sources:
  items: { kind: numbered, count: ${COUNT}, batch: 100 }
pipeline:
  - validate: { require: [title, url] }
  - publish:
      sinks: [ { jsonl: { path: items.jsonl } } ]
      batch: { size: 100, maxWait: 20ms }
durable: { claimAfter: 1s, entryItems: 50 }
`;
        const lines: Record<string, string>[] = [];
        const log = createLogger("json", { out: (_, line) => void lines.push(JSON.parse(line)) });
        const report = await runYaml(dir, yaml, log);
        assert.ok(proxy.repliesLost > 0, "a read's reply was lost");
        const claims = lines.filter((l) => l.msg.includes("left by a silent consumer"));
        assert.deepEqual(claims, [], "nothing was left for the claim loop");
        // The step's own lines (its read failed) name the stage for a log store, not only in text.
        const stepLines = lines.filter((l) => l.msg.startsWith("reads/publish:"));
        assert.ok(stepLines.length > 0, "the lost read was said");
        assert.deepEqual(stepLines.filter((l) => l.stage !== "publish"), []);
        const ids = (await readJsonl(join(dir, "items.jsonl"))).map((l) => l.id as string);
        assert.equal(new Set(ids).size, COUNT, "every item was published");
        assert.equal(ids.length, COUNT, "once");
        assert.equal(report.published, COUNT);
        // No entry ran twice: one the process had just committed is not read back as an orphan.
        const [validate, publish] = report.stages;
        assert.equal(validate.received, COUNT);
        assert.equal(publish.received, validate.emitted, "publish took each item once");
      } finally {
        await proxy.close();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "connections killed again and again mid-run: no stage runs an entry twice, and every item is published once",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-kills-" });
      const admin = client(server);
      try {
        const yaml = `
name: kills
durability: redis
redis: ${server.url}
output: ${dir}
sources:
  items: { kind: numbered, count: ${COUNT * 4}, batch: 100 }
pipeline:
  - validate: { require: [title, url] }
  - enrich: { steps: [domain, word-count] }
  - embed: { provider: local, dimensions: 64, batch: { size: 100, maxWait: 20ms } }
  - publish:
      sinks: [ { jsonl: { path: items.jsonl } } ]
      batch: { size: 100, maxWait: 20ms }
durable: { claimAfter: 1s, entryItems: 50 }
`;
        const running = runYaml(dir, yaml, memoryLogger());
        // Every client connection of the run dropped, twelve times while items flow.
        for (let k = 0; k < 12; k++) {
          await new Promise((r) => setTimeout(r, 60));
          await admin.client("KILL", "TYPE", "normal", "SKIPME", "yes");
        }
        const report = await running;
        for (let i = 1; i < report.stages.length; i++) {
          const [before, stage] = [report.stages[i - 1], report.stages[i]];
          assert.equal(stage.received, before.emitted, `${stage.id} took each item once`);
        }
        const ids = (await readJsonl(join(dir, "items.jsonl"))).map((l) => l.id as string);
        assert.equal(ids.length, COUNT * 4);
        assert.equal(new Set(ids).size, COUNT * 4);
      } finally {
        admin.disconnect();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "a durable source's own lines (an emit whose reply was lost) carry its name as a field",
  async () => {
    await withRedis(async (server) => {
      const proxy = new RedisProxy(server.port);
      proxy.loseReply((chunk) => /evalsha|eval/i.test(chunk) && /:emitted:/.test(chunk), 1);
      const dir = await Deno.makeTempDir({ prefix: "millrace-source-log-" });
      try {
        const yaml = `name: srclog\ndurability: redis\nredis: ${proxy.url}\noutput: ${dir}\n` +
          `sources:\n  items: { kind: numbered, count: 500, batch: 100 }\n` +
          "pipeline:\n  - validate: { require: [title, url] }\n" +
          "  - publish: [ { jsonl: { path: items.jsonl } } ]\n";
        const lines: Record<string, string>[] = [];
        const log = createLogger("json", { out: (_, line) => void lines.push(JSON.parse(line)) });
        await runYaml(dir, yaml, log);
        assert.equal(proxy.repliesLost, 1);
        const said = lines.filter((l) => l.msg.startsWith("srclog: source items"));
        assert.ok(said.length > 0, lines.map((l) => l.msg).join("\n"));
        assert.deepEqual(said.filter((l) => l.source !== "items"), []);
      } finally {
        await proxy.close();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
