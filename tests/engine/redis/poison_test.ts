import assert from "node:assert/strict";
import { join } from "node:path";
import { loadFlow } from "../../../config/load_flow.ts";
import { dlqCommand } from "../../../cli/admin.ts";
import { itemId } from "../../../engine/item.ts";
import {
  client,
  deadLetters,
  edges,
  flowKeys,
  FlowWorker,
  readJsonl,
  redisTest,
  repeats,
  tail,
  withRedis,
  writeFlow,
} from "./_harness.ts";
import { numberedItem, workerRegistry } from "./_worker.ts";

const COUNT = 1000;
const POISON = 137;

function poisonFlow(
  url: string,
  dir: string,
  poison: number[],
  entryItems = 100,
  fuse = false,
): string {
  return `
name: poison
durability: redis
redis: ${url}
output: ${dir}
sources:
  items: { kind: numbered, count: ${COUNT}, batch: 100, poison: [${poison.join(", ")}] }
pipeline:
  - validate: { require: [title, url] }
  - poison: { retries: 0 }
  - publish:
      sinks: [ { jsonl: { path: items.jsonl } } ]
      batch: { size: 200, maxWait: 50ms }
durable: { claimAfter: 1s, entryItems: ${entryItems}, fuse: ${fuse} }
deadLetters: { maxDeliveries: 3 }
`;
}

/** An item's id comes from its url, so a POISON title does not change it. */
const idOf = (i: number) => itemId(numberedItem(i));
const expectedIds = (skip: number[]) =>
  Array.from({ length: COUNT }, (_, i) => i).filter((i) => !skip.includes(i)).map(idOf);

async function runToEnd(flow: string, env: Record<string, string> = {}) {
  const worker = new FlowWorker(flow, { env });
  const result = await worker.finished(60_000);
  assert.equal(result.code, 0, tail(result.stderr));
  assert.ok(result.report, `no report:\n${tail(result.stderr)}`);
  return result.report;
}

redisTest(
  "a poison item goes to dead letters with its stage and reason, and every other item is published",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-poison-" });
      const redis = client(server);
      try {
        const keys = flowKeys("poison");
        const flow = await writeFlow(dir, poisonFlow(server.url, dir, [POISON]));
        const report = await runToEnd(flow);

        const lines = await readJsonl(join(dir, "items.jsonl"));
        const ids = lines.map((l) => l.id as string);
        assert.deepEqual(repeats(ids), new Map(), "no item written twice");
        assert.deepEqual(new Set(ids), new Set(expectedIds([POISON])));
        assert.equal(report.published, COUNT - 1);

        const letters = await deadLetters(redis, keys);
        assert.equal(letters.length, 1, JSON.stringify(letters));
        const [letter] = letters;
        const poisonId = idOf(POISON);
        assert.equal(letter.stage, "poison");
        assert.equal(letter.item.id, poisonId);
        assert.match(letter.reason, /poison item/);
        assert.match(String((letter.item.payload as { title: string }).title), /POISON/);
        for (const e of await edges(redis, keys)) assert.equal(e.pending + e.lag, 0, e.key);

        // Fix the cause, replay the dead letter, run again: the item is published, once.
        await replayDeadLetters(flow);
        const again = await runToEnd(flow, { MILLRACE_TEST_POISON_FIXED: "1" });
        const after = (await readJsonl(join(dir, "items.jsonl"))).map((l) => l.id as string);
        assert.deepEqual(repeats(after), new Map(), "no item written twice");
        assert.equal(after.length, COUNT);
        assert.equal(after[after.length - 1], poisonId, "the replayed item comes last");
        const poisonStage = again.stages.find((s) => s.id === "poison")!;
        assert.equal(poisonStage.received, 1, "only the replayed item went round again");
        assert.equal(again.published, 1);
        assert.deepEqual(await deadLetters(redis, keys), [], "the replayed letter left the dlq");
      } finally {
        await redis.quit();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "an entry that is not JSON goes to dead letters with the reason and the rest flows",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-unreadable-" });
      const redis = client(server);
      try {
        const keys = flowKeys("poison");
        // Written by hand before any worker runs: the group starts from the
        // beginning of the stream, so the worker reads these first.
        const garbage = await redis.xadd(keys.input("poison"), "*", "b", "{not json", "n", "1");
        const noBody = await redis.xadd(keys.input("publish"), "*", "n", "1");
        const notItems = await redis.xadd(keys.input("poison"), "*", "b", '[{"x":1}]', "n", "1");
        const flow = await writeFlow(dir, poisonFlow(server.url, dir, []));
        const report = await runToEnd(flow);

        const ids = (await readJsonl(join(dir, "items.jsonl"))).map((l) => l.id as string);
        assert.deepEqual(repeats(ids), new Map());
        assert.deepEqual(new Set(ids), new Set(expectedIds([])));
        assert.equal(report.published, COUNT);

        const letters = await deadLetters(redis, keys);
        assert.equal(letters.length, 3, JSON.stringify(letters));
        // Entry ids are per stream, so a letter is known by its stage and its entry id.
        const letterOf = (stage: string, entry: string) => {
          const found = letters.find((l) =>
            l.stage === stage && l.reason.includes(`entry ${entry}:`)
          );
          assert.ok(
            found,
            `no dead letter for ${stage} entry ${entry}: ${JSON.stringify(letters)}`,
          );
          return found;
        };
        assert.match(letterOf("poison", garbage!).reason, /does not parse/);
        assert.equal(
          letterOf("poison", garbage!).item.payload,
          "{not json",
          "the raw body is kept",
        );
        assert.match(letterOf("publish", noBody!).reason, /no `b` field/);
        assert.match(letterOf("poison", notItems!).reason, /not a list of item envelopes/);
        for (const e of await edges(redis, keys)) assert.equal(e.pending + e.lag, 0, e.key);
      } finally {
        await redis.quit();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

/**
 * What `main.ts dlq replay FLOW` runs. Called directly because main.ts loads
 * flows with the built-in registry, which lacks this test's stages.
 */
async function replayDeadLetters(flowPath: string): Promise<void> {
  const flow = await loadFlow(flowPath, workerRegistry());
  const result = await dlqCommand(flow, "replay");
  assert.equal(result.code, 0, result.text);
  assert.match(result.text, /replayed 1 dead letter: poison 1/);
}

// Fused, validate and poison are one step: the crash is narrowed down to the
// item the same way, and its dead letter names the step (its first stage).
for (const fuse of [false, true]) {
  redisTest(
    `an item that kills every process that takes it goes to dead letters alone, its entry-mates go on${
      fuse ? " (fused step)" : ""
    }`,
    async () => {
      await withRedis(async (server) => {
        const dir = await Deno.makeTempDir({ prefix: "millrace-crashloop-" });
        const redis = client(server);
        const started: FlowWorker[] = [];
        try {
          const keys = flowKeys("poison");
          // Entries of 10 items: the poison one would take its 9 entry-mates with it.
          const flow = await writeFlow(dir, poisonFlow(server.url, dir, [POISON], 10, fuse));
          const env = { MILLRACE_TEST_POISON_EXIT: "1" };
          // One crash on the first delivery, one on a run alone, one per halving
          // (10 -> 5 -> 3 -> 2 -> 1), then maxDeliveries - 1 runs of the item alone.
          const bound = 2 + Math.ceil(Math.log2(10)) + 3;
          let crashes = 0;
          let last: Awaited<ReturnType<FlowWorker["finished"]>>;
          for (;;) {
            const worker = new FlowWorker(flow, { env });
            started.push(worker);
            const r = last = await worker.finished(60_000);
            if (r.code === 0) break;
            assert.equal(r.code, 3, tail(r.stderr));
            crashes++;
            assert.ok(
              crashes <= bound,
              `more than ${bound} crashes: the item is not being isolated`,
            );
          }

          // Only the poison item went to dead letters, with a reason that says
          // what happened; its entry-mates were split off and published.
          const letters = await deadLetters(redis, keys);
          assert.deepEqual(letters.map((l) => l.item.id), [idOf(POISON)], JSON.stringify(letters));
          assert.equal(letters[0].stage, fuse ? "validate" : "poison");
          assert.match(letters[0].reason, /delivered 3 times and never acknowledged/);
          assert.match(
            letters[0].reason,
            fuse
              ? /stopped before finishing it, .* in fused step validate \+ poison /
              : /stopped before finishing it, .* in stage poison /,
          );
          assert.equal(await redis.hlen(keys.tries), 0, "no try count outlives its entry");
          // The run that dead-lettered it counts it in as well as dead: its summary row read
          // `0 in, 1 dead`.
          const lettering = last.report!.stages.find((s) => s.id === letters[0].stage)!;
          assert.equal(lettering.failed, 1);
          assert.ok(lettering.received >= 1, JSON.stringify(lettering));
          const lettered = letters.map((l) => l.item.id);
          const ids = (await readJsonl(join(dir, "items.jsonl"))).map((l) => l.id as string);
          assert.deepEqual(repeats(ids), new Map(), "no item written twice");
          assert.deepEqual(
            repeats([...ids, ...lettered]),
            new Map(),
            "published or dead, not both",
          );
          assert.deepEqual(new Set([...ids, ...lettered]), new Set(expectedIds([])), "none lost");
          for (const e of await edges(redis, keys)) assert.equal(e.pending + e.lag, 0, e.key);

          // Once fixed and replayed, the item is published too.
          const loaded = await loadFlow(flow, workerRegistry());
          assert.equal((await dlqCommand(loaded, "replay")).code, 0);
          await runToEnd(flow, { MILLRACE_TEST_POISON_FIXED: "1" });
          const after = (await readJsonl(join(dir, "items.jsonl"))).map((l) => l.id as string);
          assert.deepEqual(repeats(after), new Map());
          assert.deepEqual(new Set(after), new Set(expectedIds([])));
        } finally {
          for (const w of started) w.kill("SIGKILL");
          await Promise.allSettled(started.map((w) => w.result));
          await redis.quit();
          await Deno.remove(dir, { recursive: true });
        }
      });
    },
  );
}

redisTest(
  "dlq replay of a batched stage re-drives every member of its batches, each published once",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-replay-batch-" });
      const redis = client(server);
      try {
        const keys = flowKeys("replay");
        const flow = await writeFlow(
          dir,
          `
name: replay
durability: redis
redis: ${server.url}
output: ${dir}
sources:
  items: { kind: numbered, count: 300, batch: 100 }
pipeline:
  - validate: { require: [title, url] }
  - publish:
      sinks: [ { flaky: {} }, { jsonl: { path: items.jsonl } } ]
      batch: { size: 64, maxWait: 20ms }
      retries: 0
durable: { claimAfter: 1s }
`,
        );
        // The sink is down: every batch fails, is split down to its items, and
        // every item goes to dead letters on its own.
        await runToEnd(flow, { MILLRACE_TEST_SINK_DOWN: "1" });
        const letters = await deadLetters(redis, keys);
        assert.equal(letters.length, 300);
        assert.ok(letters.every((l) => l.stage === "publish" && /sink is down/.test(l.reason)));

        const loaded = await loadFlow(flow, workerRegistry());
        assert.equal((await dlqCommand(loaded, "replay")).code, 0);
        assert.deepEqual(await deadLetters(redis, keys), []);
        const report = await runToEnd(flow);
        const publish = report.stages.find((s) => s.id === "publish")!;
        assert.equal(publish.received, 300, "every member went round again, once");
        assert.equal(report.published, 300);
        const ids = (await readJsonl(join(dir, "items.jsonl"))).map((l) => l.id as string);
        assert.deepEqual(repeats(ids), new Map());
        assert.deepEqual(new Set(ids), new Set(Array.from({ length: 300 }, (_, i) => idOf(i))));
        assert.deepEqual(await deadLetters(redis, keys), []);
        for (const e of await edges(redis, keys)) assert.equal(e.pending + e.lag, 0, e.key);
      } finally {
        await redis.quit();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
