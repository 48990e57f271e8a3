/**
 * A durable process stopped with SIGTERM (Ctrl-C) finishes the batches it
 * holds, not the flow: what waits on the Redis edges stays there for the
 * next run. Its summary said only "stopped: N published", which read like
 * the whole of the work; it now says the rest waits in Redis, and the next
 * run publishes it, each item once, the same items as the flow in memory.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Waiting } from "../../cli/waiting_in_redis.ts";
import { writeSlowStep } from "../_slow_step.ts";
import {
  countLines,
  FlowWorker,
  readJsonl,
  redisTest,
  repeats,
  withRedis,
  writeFlow,
} from "../engine/redis/_harness.ts";

const WAITS =
  /stopped: about (\d+) items? \((\d+) entr(?:y|ies)\) waits? in Redis, not lost; the next run goes on with them \(deno task run status \S+ shows where\)/;

/** The line of a JSON log (stderr) whose message matches `pattern`, parsed. */
function logLine(stderr: string, pattern: RegExp): Record<string, unknown> | undefined {
  return stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
    .find((l) => pattern.test(l.msg));
}

/** 20,000 generated items (some invalid, some repeated), enriched, to items.jsonl in `out`. */
function flowYaml(durability: string, out: string): string {
  return `
name: stopme
${durability}
output: ${out}
sources:
  news: { kind: generator, count: 20000, seed: 5 }
pipeline:
  - validate: { require: [title, url] }
  - enrich: { steps: [domain, word-count, language, keywords] }
  - publish:
      - jsonl: { path: items.jsonl }
`;
}

/** The ids of the items (not merge updates) a JSONL file holds. */
async function idsIn(path: string): Promise<string[]> {
  return (await readJsonl(path)).map((line) => String(line.id));
}

redisTest(
  "a durable run stopped by SIGTERM says what waits in Redis; the next run finishes it",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-durable-stop-" });
      try {
        const path = await writeFlow(dir, flowYaml(`durability: redis\nredis: ${server.url}`, dir));
        const items = join(dir, "items.jsonl");
        const first = new FlowWorker(path, { main: true });
        let stopped;
        try {
          while ((await countLines(items)) === 0) await new Promise((r) => setTimeout(r, 20));
          first.kill("SIGTERM");
          stopped = await first.finished(60_000);
        } finally {
          first.kill();
          await first.result;
        }
        assert.equal(stopped.code, 0, stopped.stderr);
        assert.equal(stopped.report?.stopped, true);
        assert.match(stopped.stderr, WAITS);
        // What waits is counted: something, and no more than the flow's 20,000 items.
        const { waiting } = logLine(stopped.stderr, WAITS) as { waiting: Waiting };
        assert.ok(waiting.entries > 0 && waiting.items >= waiting.entries, JSON.stringify(waiting));
        assert.ok(waiting.items < 20000, JSON.stringify(waiting));
        // A second Ctrl-C ends the process by SIGINT's default action, with no word after it:
        // the first signal's line says already what a second would leave.
        assert.match(
          stopped.stderr,
          /stopping: draining what was accepted \(signal again to exit now; what is in flight then stays pending in Redis for the next run\)/,
        );
        const early = (await idsIn(items)).length;

        const second = new FlowWorker(path, { main: true });
        const done = await second.finished(120_000);
        assert.equal(done.code, 0, done.stderr);
        assert.equal(done.report?.stopped, false);
        assert.doesNotMatch(done.stderr, WAITS, "a run that finished says nothing of the kind");
        const ids = await idsIn(items);
        assert.deepEqual([...repeats(ids)], [], "no item twice");

        // The same flow in memory, run whole, writes the same items.
        const memoryDir = join(dir, "memory");
        await Deno.mkdir(memoryDir);
        const twin = new FlowWorker(
          await writeFlow(memoryDir, flowYaml("durability: memory", memoryDir)),
          { main: true },
        );
        assert.equal((await twin.finished(120_000)).code, 0);
        const whole = await idsIn(join(memoryDir, "items.jsonl"));
        assert.ok(early < whole.length / 2, `stopped early (${early} of ${whole.length})`);
        assert.deepEqual(ids.sort(), whole.sort());
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "a durable run stopped once everything was published says nothing waits in Redis",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-durable-idle-" });
      try {
        // A polled source: after its first poll the flow idles, everything published, until stopped.
        const yaml = (durability: string, out: string, every: string) =>
          `name: idle\n${durability}\noutput: ${out}\n` +
          `sources: { news: { kind: generator, count: 300, seed: 5${every} } }\n` +
          "pipeline:\n  - publish: [ { jsonl: { path: items.jsonl } } ]\n";
        // How many lines that is (the sink writes a repeated item once): the flow run once in memory.
        const memoryDir = join(dir, "memory");
        await Deno.mkdir(memoryDir);
        const twin = new FlowWorker(
          await writeFlow(memoryDir, yaml("durability: memory", memoryDir, "")),
          { main: true },
        );
        assert.equal((await twin.finished(60_000)).code, 0);
        const lines = await countLines(join(memoryDir, "items.jsonl"));
        const path = await writeFlow(
          dir,
          yaml(`durability: redis\nredis: ${server.url}`, dir, ", every: 1h"),
        );
        const items = join(dir, "items.jsonl");
        const run = new FlowWorker(path, { main: true });
        let stopped;
        try {
          while ((await countLines(items)) < lines) await new Promise((r) => setTimeout(r, 20));
          run.kill("SIGTERM");
          stopped = await run.finished(60_000);
        } finally {
          run.kill();
          await run.result;
        }
        assert.equal(stopped.code, 0, stopped.stderr);
        assert.doesNotMatch(stopped.stderr, WAITS);
        const line = logLine(stopped.stderr, /nothing the sources emitted waits in Redis/);
        assert.deepEqual(line?.waiting, { entries: 0, items: 0, atMost: false }, stopped.stderr);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "a durable run ended by a second signal says that what was in flight stays pending in Redis",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-durable-twice-" });
      try {
        // A step whose batches after the first take 5 s: the drain of the batch it holds when the
        // first signal comes (a durable drain finishes what it holds) outlasts the 600 ms gap.
        await writeSlowStep(dir, { first: 0, rest: 5000 });
        const path = await writeFlow(
          dir,
          `name: twice\ndurability: redis\nredis: ${server.url}\noutput: ${dir}\n` +
            "sources: { news: { kind: generator, count: 20000, seed: 5 } }\n" +
            "pipeline:\n  - step: { module: ./slow.ts }\n  - publish: [ { jsonl: { path: items.jsonl } } ]\n",
        );
        const items = join(dir, "items.jsonl");
        const run = new FlowWorker(path, { main: true });
        try {
          while ((await countLines(items)) === 0) await new Promise((r) => setTimeout(r, 20));
          run.kill("SIGTERM");
          await new Promise((r) => setTimeout(r, 600));
          run.kill("SIGTERM");
          const ended = await run.finished(60_000);
          assert.equal(ended.code, 130, ended.stderr);
          const last = JSON.parse(ended.stderr.trim().split("\n").at(-1)!);
          assert.equal(
            last.msg,
            "twice: second signal, exiting now (what was in flight stays pending in Redis: " +
              "the next run takes it up)",
          );
        } finally {
          run.kill();
          await run.result;
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
