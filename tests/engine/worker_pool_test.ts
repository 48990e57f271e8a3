import assert from "node:assert/strict";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { Redis } from "ioredis";
import { builtinRegistry } from "../../builtins.ts";
import { parseFlow } from "../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../engine/dead_letters.ts";
import type { Flow } from "../../engine/flow.ts";
import { memoryLogger } from "../../engine/log.ts";
import type { Registry } from "../../engine/registry.ts";
import { flowKeys } from "../../engine/redis/keys.ts";
import { type FlowReport, runFlow } from "../../engine/run_flow.ts";
import { redisTest, withRedis } from "../_redis_server.ts";
import { poisonRegistry } from "./_poison_stage.ts";

const DEMO_STAGES = (workers: number) => `
  - validate:
      workers: ${workers}
      require: [title, url]
      title: { min: 5, max: 500 }
      spam: [casino]
  - dedupe:
      key: [url]
      ttl: 24h
      near: { threshold: 0.8 }
  - enrich:
      workers: ${workers}
      steps: [canonical-url, domain, word-count, language, keywords]
  - embed:
      workers: ${workers}
      provider: local
      dimensions: 64
      batch: { size: 64, maxWait: 50ms }
  - publish:
      - jsonl: { path: items.jsonl }
`;

const demoYaml = (workers: number, out: string) => `
name: demo-workers
output: ${out}
sources:
  gen: { kind: generator, count: 1500, seed: 7 }
pipeline:${DEMO_STAGES(workers)}`;

const poisonYaml = (workers: number, out: string) => `
name: poison-workers
output: ${out}
sources:
  items: { kind: numbered, count: 600, poison: [137, 402], bad: [55] }
pipeline:
  - validate: { workers: ${workers}, require: [title, url] }
  - poison: { workers: ${workers}, retries: 1 }
  - publish:
      - jsonl: { path: items.jsonl }
`;

interface Outcome {
  items: unknown[];
  letters: { stage: string; reason: string; attempts: number; id: string }[];
  stages: unknown[];
}

/**
 * Equal outcomes, compared part by part: a failing deepEqual over a
 * thousand vectors would spend minutes printing its diff.
 */
function assertSame(got: Outcome, want: Outcome, sorted = false): void {
  assert.deepEqual(got.stages, want.stages);
  const byId = <T>(list: T[]) =>
    sorted ? list.toSorted((a, b) => idOf(a) < idOf(b) ? -1 : idOf(a) > idOf(b) ? 1 : 0) : list;
  assert.deepEqual(byId(got.letters), byId(want.letters));
  // A merge update follows the batch it came in, and where a window is cut
  // by maxWait varies from run to run: updates are compared as a set.
  const isUpdate = (x: unknown) => (x as { update?: true }).update === true;
  const updates = (o: Outcome) => o.items.filter(isUpdate).map((x) => JSON.stringify(x)).sort();
  assert.deepEqual(updates(got), updates(want));
  [got, want] = [got, want].map((o) => ({
    ...o,
    items: byId(o.items.filter((x) => !isUpdate(x))),
  }));
  const ids = (o: Outcome) => o.items.map(idOf);
  assert.deepEqual(ids(got), ids(want));
  for (let i = 0; i < got.items.length; i++) {
    if (!isDeepStrictEqual(got.items[i], want.items[i])) {
      assert.deepEqual(got.items[i], want.items[i], `item ${i} differs`);
    }
  }
}

const idOf = (x: unknown) => (x as { id: string }).id;

/** What a run left, without what differs from run to run (events, times, busy ms). */
async function outcome(
  out: string,
  report: FlowReport,
  letters: { stage: string; reason: string; attempts: number; item: { id: string } }[],
): Promise<Outcome> {
  const text = await Deno.readTextFile(join(out, "items.jsonl"));
  // Times (when an item, or a sighting of its story, was seen) differ from run to run.
  const untimed = (key: string, value: unknown) =>
    key === "seenAt" || key === "lastSeenAt" ? undefined : value;
  const items = text.trim().split("\n").map((l) => {
    const { event: _e, ...rest } = JSON.parse(l, untimed);
    return rest;
  });
  return {
    items,
    letters: letters.map((l) => ({
      stage: l.stage,
      reason: l.reason,
      attempts: l.attempts,
      id: l.item.id,
    })),
    // Batches a window cut by time (maxWait) vary from run to run.
    stages: report.stages.map(({ busyMs: _b, batches: _n, ...rest }) => rest),
  };
}

function flowOf(yaml: string, registry: Registry, redis?: string): Flow {
  const flow = parseFlow(yaml, "flow.yaml", registry, {});
  return redis ? { ...flow, durability: "redis", redis } : flow;
}

async function runMemory(yaml: (w: number, out: string) => string, workers: number, r: Registry) {
  const out = await Deno.makeTempDir({ prefix: "millrace-workers-" });
  try {
    const deadLetters = new MemoryDeadLetters();
    const report = await runFlow(flowOf(yaml(workers, out), r), {
      registry: r,
      log: memoryLogger(),
      deadLetters,
      backoffBase: 1,
    });
    return await outcome(out, report, deadLetters.entries);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

/** Runs the flow durable over `url`, its keys under a prefix of its own. */
async function runDurable(
  url: string,
  yaml: (w: number, out: string) => string,
  workers: number,
  r: Registry,
) {
  const out = await Deno.makeTempDir({ prefix: "millrace-workers-" });
  const redis = new Redis(url);
  try {
    const parsed = flowOf(yaml(workers, out), r, url);
    const flow = { ...parsed, durable: { ...parsed.durable, prefix: `w${workers}` } };
    const report = await runFlow(flow, {
      registry: r,
      log: memoryLogger(),
      deadLetters: new MemoryDeadLetters(),
      backoffBase: 1,
    });
    const keys = flowKeys(flow.name, flow.durable.prefix);
    const letters = (await redis.xrange(keys.dlq, "-", "+")).map(([, f]) => {
      const get = (k: string) => f[f.indexOf(k) + 1];
      return {
        stage: get("stage"),
        reason: get("reason"),
        attempts: Number(get("attempts")),
        item: JSON.parse(get("item")),
      };
    });
    return await outcome(out, report, letters);
  } finally {
    redis.disconnect();
    await Deno.remove(out, { recursive: true });
  }
}

/** The flow durable with workers 0 and 2, over one redis-server of the test's own. */
function bothDurable(yaml: (w: number, out: string) => string, registry: () => Registry) {
  return withRedis(async (server) => {
    const url = `redis://127.0.0.1:${server.port}`;
    const main = await runDurable(url, yaml, 0, registry());
    const workers = await runDurable(url, yaml, 2, registry());
    return { main, workers };
  });
}

Deno.test("the demo stages on 2 workers publish, drop and dead-letter what they do on the main thread", async () => {
  const main = await runMemory(demoYaml, 0, builtinRegistry());
  const workers = await runMemory(demoYaml, 2, builtinRegistry());
  assert.ok(main.items.length > 1000, `published ${main.items.length}`);
  assert.ok(main.letters.length > 0, "the generator makes invalid items");
  assertSame(workers, main);
});

Deno.test("a poisoned item that throws inside a worker is split down to and dead-lettered alone", async () => {
  const main = await runMemory(poisonYaml, 0, poisonRegistry());
  const workers = await runMemory(poisonYaml, 2, poisonRegistry());
  assert.deepEqual(workers.letters.map((l) => l.stage).sort(), ["poison", "poison", "validate"]);
  assert.equal(workers.letters.filter((l) => l.reason === "failed: poisoned batch").length, 2);
  // 600 items, one without a url, two poisoned, every tenth dropped (60).
  assert.equal(workers.items.length, 600 - 1 - 2 - 60);
  assertSame(workers, main);
});

redisTest("durable: the demo stages on 2 workers do what they do on the main thread", async () => {
  const { main, workers } = await bothDurable(demoYaml, builtinRegistry);
  assert.ok(main.items.length > 1000, `published ${main.items.length}`);
  // A window's rest goes back to its stream: durable output order varies from run to run.
  assertSame(workers, main, true);
});

redisTest(
  "durable: a poisoned item inside a worker is split down to and dead-lettered alone",
  async () => {
    const { main, workers } = await bothDurable(poisonYaml, poisonRegistry);
    assert.equal(workers.letters.filter((l) => l.stage === "poison").length, 2);
    assert.equal(workers.items.length, 600 - 1 - 2 - 60);
    assertSame(workers, main, true);
  },
);

/** `run`'s result, or a failure naming `what` if it has not settled in `ms`: a guard against a hang, not a measure of speed. */
async function unlessHung<T>(run: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end in ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([run, hung]);
  } finally {
    clearTimeout(timer);
  }
}

const numberedYaml = (source: string, stage: string) => (workers: number, out: string) => `
name: poison-workers
output: ${out}
sources:
  items: { kind: numbered, ${source} }
pipeline:
  - validate: { workers: ${workers}, require: [title, url] }
  - poison: { workers: ${workers}, ${stage} }
  - publish:
      - jsonl: { path: items.jsonl }
`;

Deno.test("a batch no worker can be sent (an item holding a function) runs on the main thread, as without workers", async () => {
  const yaml = numberedYaml("count: 300, callable: [5, 120, 121]", "retries: 1");
  const main = await runMemory(yaml, 0, poisonRegistry());
  const workers = await runMemory(yaml, 2, poisonRegistry());
  assert.deepEqual(main.letters, []);
  assert.equal(main.items.length, 300 - 30);
  assertSame(workers, main);
});

Deno.test("a batch with an item nested 3,000 levels deep runs on the main thread, as without workers", async () => {
  // Deno took it, then dropped it unread in the worker: the flow waited for the batch for ever.
  const yaml = numberedYaml("count: 120, deep: [7]", "retries: 1");
  const main = await runMemory(yaml, 0, poisonRegistry());
  const workers = await unlessHung(runMemory(yaml, 1, poisonRegistry()), 60_000, "the flow");
  assert.equal(main.items.length, 120 - 12);
  // Compared by id: deepEqual itself runs out of stack on the deep item.
  assert.deepEqual(workers.stages, main.stages);
  assert.deepEqual(workers.letters, main.letters);
  assert.deepEqual(workers.items.map(idOf), main.items.map(idOf));
  const deep = workers.items.find((x) => (x as { payload: { n: number } }).payload.n === 7);
  assert.ok(deep, "the deep item is published");
});

Deno.test("a worker that dies of an error thrown later fails only the batch it was running", async () => {
  // One item a batch, no retries: a batch charged with the death is a dead letter.
  const yaml = numberedYaml(
    "count: 60, per: 1, titles: { 7: ASYNCTHROW, 21: ASYNCTHROW, 33: ASYNCTHROW }",
    "retries: 0",
  );
  const run = await unlessHung(runMemory(yaml, 1, poisonRegistry()), 120_000, "the flow");
  assert.equal(run.letters.length, 3, JSON.stringify(run.letters));
  for (const letter of run.letters) {
    assert.equal(letter.stage, "poison");
    assert.match(letter.reason, /stage worker died: .*thrown from a timer/);
  }
  // 60 items, 6 of them tenths (dropped), 3 dead-lettered.
  assert.equal(run.items.length, 60 - 6 - 3);
});

Deno.test("a worker that calls Deno.exit or self.close fails the batch it was running, and the flow goes on", async () => {
  const yaml = numberedYaml("count: 300, titles: { 7: EXIT, 151: CLOSE }", "retries: 1");
  const run = await unlessHung(runMemory(yaml, 2, poisonRegistry()), 120_000, "the flow");
  assert.deepEqual(run.letters.map((l) => l.reason).sort(), [
    "failed: poison-workers/poison: stage worker exited: Deno.exit(3)",
    "failed: poison-workers/poison: stage worker exited: self.close()",
  ]);
  assert.equal(run.items.length, 300 - 30 - 2);
});

Deno.test("a batch holding an id twice comes back from a worker as each copy, fields in their order", async () => {
  const out = await Deno.makeTempDir({ prefix: "millrace-workers-" });
  try {
    await Deno.writeTextFile(
      join(out, "dup.json"),
      JSON.stringify([
        {
          title: "first copy title",
          url: "https://example.com/dup",
          text: "alpha beta",
          by: "ann",
        },
        { by: "bob", text: "delta epsilon", url: "https://example.com/dup", title: "second copy" },
      ]),
    );
    const yaml = (workers: number) => `
name: dup-ids
output: ${out}
sources:
  file: { kind: json, path: ${join(out, "dup.json")} }
pipeline:
  - validate: { workers: ${workers}, require: [title, url] }
  - enrich: { workers: ${workers}, steps: [domain, word-count] }
  - embed: { workers: ${workers}, provider: local, dimensions: 4 }
  - publish:
      - jsonl: { path: items-${workers}.jsonl, vectors: false }
`;
    const lines = async (workers: number) => {
      const r = builtinRegistry();
      await runFlow(flowOf(yaml(workers), r), {
        registry: r,
        log: memoryLogger(),
        deadLetters: new MemoryDeadLetters(),
      });
      const text = await Deno.readTextFile(join(out, `items-${workers}.jsonl`));
      // The line as written, key order and all, without what differs from run to run.
      return text.trim().split("\n").map((l) =>
        JSON.stringify(JSON.parse(l, (k, v) => k === "seenAt" || k === "event" ? undefined : v))
      );
    };
    const main = await lines(0);
    assert.equal(main.length, 1);
    assert.match(main[0], /"payload":\{"title":"first copy title","url"/);
    assert.deepEqual(await lines(2), main);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a stage whose workers cannot open fails the run and leaves no worker running", async () => {
  const script = new URL("./_open_fails.ts", import.meta.url);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script.pathname],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // A worker left running keeps the process alive: it would never exit.
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const { success, stdout, stderr } = await child.output();
  clearTimeout(killer);
  const said = new TextDecoder().decode(stdout);
  assert.ok(success, `exit: ${new TextDecoder().decode(stderr)}`);
  assert.match(said, /rejected: .*poison: this worker cannot open/);
});

Deno.test("workers on a stage that cannot have them is an error naming the file, line and field", () => {
  const yaml = (stage: string) =>
    `name: w
sources:
  gen: { kind: generator, count: 10 }
pipeline:
${stage}
  - publish:
      - jsonl: { path: items.jsonl }
`;
  const cases: [string, RegExp][] = [
    [
      "  - dedupe:\n      workers: 2\n      key: [url]",
      /flow\.yaml:6:\d+: .*workers: .*keeps state/,
    ],
    ["  - validate:\n      workers: -1", /flow\.yaml:6:\d+: .*workers/],
    ["  - validate:\n      workers: many", /flow\.yaml:6:\d+: .*workers/],
    [
      "  - embed:\n      workers: 1\n      provider: openai\n      model: m\n      apiKey: k",
      /flow\.yaml:6:\d+: .*workers: provider openai waits on the network/,
    ],
  ];
  for (const [stage, message] of cases) {
    assert.throws(() => parseFlow(yaml(stage), "flow.yaml", builtinRegistry(), {}), message);
  }
  // A stage registered in code is not in the worker's registry.
  const custom = builtinRegistry().stage({
    ...builtinRegistry().stages.get("validate")!,
    kind: "mine",
  });
  assert.throws(
    () => parseFlow(yaml("  - mine:\n      workers: 2"), "flow.yaml", custom, {}),
    /flow\.yaml:6:\d+: .*workers: stage mine was registered in code/,
  );
  // auto is a number of workers; on one core none.
  const flow = parseFlow(
    yaml("  - validate:\n      workers: auto"),
    "flow.yaml",
    builtinRegistry(),
    {},
  );
  assert.equal(
    flow.pipeline[0].workers ?? 0,
    Math.max(0, (navigator.hardwareConcurrency ?? 1) - 1),
  );
});
