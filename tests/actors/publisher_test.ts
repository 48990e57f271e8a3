import assert from "node:assert/strict";
import { collector as sharedCollector } from "../_outcome.ts";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import {
  createPublisher,
  type PublishConfig,
  publishStage,
  sinkNames,
} from "../../actors/publisher.ts";
import { jsonlSink } from "../../adapters/sinks/jsonl_sink.ts";
import { stdoutSink } from "../../adapters/sinks/stdout_sink.ts";
import { defineFlow } from "../../config/define_flow.ts";
import type { StageContext } from "../../engine/actor.ts";
import { MemoryDeadLetters } from "../../engine/dead_letters.ts";
import { type Envelope, envelope, type RawItem } from "../../engine/item.ts";
import { memoryLogger } from "../../engine/log.ts";
import {
  type BuildEnv,
  Registry,
  schemaOf,
  type SinkSpec,
  type SourceSpec,
} from "../../engine/registry.ts";
import { runFlow } from "../../engine/run_flow.ts";
import type { Sink } from "../../engine/sink.ts";

const collector = () => sharedCollector<RawItem>();

/** A sink that keeps what it is given, and fails while `failing` is set. */
class MemorySink implements Sink {
  static instances: MemorySink[] = [];
  readonly batches: string[][] = [];
  readonly events: string[] = [];
  constructor(readonly name: string, readonly failing: { on: boolean }) {
    MemorySink.instances.push(this);
  }
  open() {
    this.events.push("open");
  }
  write(batch: readonly Envelope<RawItem>[]): Promise<void> {
    if (this.failing.on) return Promise.reject(new Error(`${this.name} is down`));
    this.batches.push(batch.map((e) => e.id));
    return Promise.resolve();
  }
  close() {
    this.events.push("close");
  }
}

const failing = { on: false };
const memorySink: SinkSpec<{ name: string }> = {
  kind: "memory",
  summary: "test sink",
  schema: z.strictObject({ name: z.string().default("memory") }),
  create: (config) => new MemorySink(config.name, failing),
};
const vectorSink: SinkSpec<{ collection: string }> = {
  kind: "vectors",
  summary: "test sink that needs vectors",
  schema: z.strictObject({ collection: z.string() }),
  needs: ["embedded"],
  create: () => new MemorySink("vectors", failing),
};

const registry = new Registry().stage(publishStage).sink(jsonlSink).sink(stdoutSink)
  .sink(memorySink).sink(vectorSink);

async function testEnv(): Promise<BuildEnv> {
  const outDir = await Deno.makeTempDir();
  return { flow: "t", baseDir: outDir, outDir, log: memoryLogger(), registry };
}

function ctx(): StageContext {
  return { flow: "t", stage: "publish", signal: new AbortController().signal, log: memoryLogger() };
}

function parse(raw: unknown): PublishConfig {
  return schemaOf(publishStage, registry).parse(raw);
}

/**
 * The issues a person is shown: of a union (list form or object form), those
 * of the branch that took the value's type, as the flow loader picks them.
 */
function issues(raw: unknown): { path: PropertyKey[]; message: string }[] {
  const result = schemaOf(publishStage, registry).safeParse(raw);
  assert.ok(!result.success, "the config is refused");
  type Issue = { code: string; path: PropertyKey[]; message: string; errors?: Issue[][] };
  const flat = (list: Issue[]): Issue[] =>
    list.flatMap((i) => {
      if (i.code !== "invalid_union" || !i.errors) return [i];
      const taken = i.errors.filter((b) =>
        !b.some((e) => e.path.length === 0 && e.code === "invalid_type")
      );
      assert.equal(taken.length, 1, "one branch takes the value's type");
      return flat(taken[0]).map((e) => ({ ...e, path: [...i.path, ...e.path] }));
    });
  return flat(result.error.issues as unknown as Issue[]).map(({ path, message }) => ({
    path,
    message,
  }));
}

function items(n: number): Envelope<RawItem>[] {
  return Array.from(
    { length: n },
    (_, i) => envelope({ title: `Title ${i}`, url: `https://example.com/${i}` }, "t"),
  );
}

async function lineCount(path: string): Promise<number> {
  return (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "").length;
}

Deno.test("both config forms parse to sinks and a batch window", () => {
  const list = parse([{ jsonl: { path: "items.jsonl" } }, { stdout: null }]);
  assert.deepEqual(list, {
    sinks: [
      { kind: "jsonl", config: { path: "items.jsonl", vectors: true }, needs: [] },
      { kind: "stdout", config: { vectors: false }, needs: [] },
    ],
    batch: { size: 500, maxWait: 1_000 },
    retentionEvery: 60_000,
  });
  const object = parse({ sinks: [{ memory: {} }], batch: { size: 50, maxWait: "3s" } });
  assert.deepEqual(object, {
    sinks: [{ kind: "memory", config: { name: "memory" }, needs: [] }],
    batch: { size: 50, maxWait: 3_000 },
    retentionEvery: 60_000,
  });
  const kept = parse({ sinks: [{ memory: {} }], retention: "30d", retentionEvery: "50ms" });
  assert.equal(kept.retention, 30 * 86_400_000);
  assert.equal(kept.retentionEvery, 50);
  assert.deepEqual(publishStage.window!(object), { size: 50, maxWait: 3_000 });
  assert.deepEqual(parse({ sinks: [{ stdout: {} }] }).batch, { size: 500, maxWait: 1_000 });
});

Deno.test("an unknown sink is one issue naming the known sinks, with a suggestion when close", () => {
  assert.deepEqual(issues([{ stdout: {} }, { jsnl: { path: "x" } }]), [{
    path: [1],
    message:
      'unknown sink "jsnl" (known sinks: jsonl, stdout, memory, vectors); did you mean "jsonl"?',
  }]);
  assert.deepEqual(issues({ sinks: [{ postgres: { url: "x" } }] }), [{
    path: ["sinks", 0],
    message: 'unknown sink "postgres" (known sinks: jsonl, stdout, memory, vectors)',
  }]);
});

Deno.test("a bad sink config is reported at its path inside the list", () => {
  const listForm = issues([{ stdout: {} }, { jsonl: { pth: "items.jsonl" } }]);
  assert.deepEqual(listForm.map((i) => i.path), [[1, "jsonl", "path"], [1, "jsonl"]]);
  const objectForm = issues({ sinks: [{ jsonl: { path: 5 } }] });
  assert.deepEqual(objectForm.map((i) => i.path), [["sinks", 0, "jsonl", "path"]]);
});

Deno.test("a sink must be a map of exactly one kind, and there must be one", () => {
  const two = issues([{ jsonl: { path: "a" }, stdout: {} }]);
  assert.deepEqual(two.map((i) => i.path), [[0]]);
  assert.match(two[0].message, /ONE kind.*got 2 kinds: jsonl, stdout/);
  const scalar = issues(["jsonl"]);
  assert.match(scalar[0].message, /such as \{ jsonl: \{ path: items.jsonl \} \}/);
  assert.deepEqual(issues([]).map((i) => i.path), [[]]);
  assert.deepEqual(issues({ sinks: [{ stdout: {} }], batch: { size: 0 } }).map((i) => i.path), [[
    "batch",
    "size",
  ]]);
});

Deno.test("the stage needs what any of its sinks needs", () => {
  assert.deepEqual(publishStage.needs!(parse([{ jsonl: { path: "a" } }])), []);
  const withVectors = parse([{ vectors: { collection: "c" } }, { jsonl: { path: "a" } }]);
  assert.deepEqual(publishStage.needs!(withVectors), ["embedded"]);
});

Deno.test("a batch is written to every sink and every item is emitted", async () => {
  const env = await testEnv();
  MemorySink.instances = [];
  const cfg = parse([{ jsonl: { path: "out/items.jsonl" } }, { memory: { name: "m" } }]);
  const actor = await publishStage.create(cfg, env);
  await actor.open?.(ctx());
  const { out, emitted, dropped, rejected } = collector();
  const batch = items(5);
  await actor.handle(batch, out, ctx());
  await actor.close?.();

  assert.deepEqual(emitted, batch, "the same envelopes, in order");
  assert.equal(dropped.length + rejected.length, 0);
  assert.equal(await lineCount(join(env.outDir, "out", "items.jsonl")), 5);
  const [memory] = MemorySink.instances;
  assert.deepEqual(memory.batches, [batch.map((e) => e.id)]);
  assert.deepEqual(memory.events, ["open", "close"], "sinks are opened and closed");
});

Deno.test("where the flow embeds, an item with no vector, or one of another length, is refused, not written", async () => {
  // Items past an embed stage's place when it was added to a durable flow, or embedded before
  // its dimensions changed: rows with no vector, and lines of the old length, went in unsaid.
  const env = {
    ...await testEnv(),
    vectors: { dimensions: 3, stage: "vectorize" },
    command: (args: string) => `deno task run ${args} flows/news.yaml`,
  };
  MemorySink.instances = [];
  const actor = await publishStage.create(parse([{ memory: { name: "m" } }]), env);
  await actor.open?.(ctx());
  const [fit, none, short, gone] = items(4);
  fit.vector = [1, 2, 3];
  short.vector = [1, 2];
  gone.payload = { deleted: true };
  const update: Envelope<RawItem> = { ...none, update: true, payload: { revision: 2 } };
  const { out, emitted, rejected } = collector();
  await actor.handle([fit, none, short, gone, update], out, ctx());
  await actor.close?.();
  assert.deepEqual(emitted.map((e) => e.id), [fit.id, gone.id]);
  assert.deepEqual(rejected.map((r) => [r.item.id, r.label]), [
    [none.id, "no vector"],
    [short.id, "vector length"],
  ]);
  assert.match(rejected[0].reason, /t\/publish: it has no vector, though the flow's embed stage/);
  assert.match(
    rejected[1].reason,
    /its vector has 2 numbers, where the flow's embed stage makes 3/,
  );
  // The command to run as it is: the flow's file and its embed stage's id, not placeholders.
  assert.match(
    rejected[1].reason,
    /`deno task run dlq replay --stage publish --into vectorize flows\/news\.yaml` embeds it again/,
  );
  assert.deepEqual(
    MemorySink.instances[0].batches,
    [[fit.id, gone.id]],
    "the update too, to a sink of updates",
  );
  // A flow that does not embed (no length said) passes items as they are.
  const plain = await publishStage.create(parse([{ memory: { name: "p" } }]), await testEnv());
  const c = collector();
  await plain.handle([none], c.out, ctx());
  assert.deepEqual(c.emitted, [none]);
});

Deno.test("a failed write counts merge updates apart from items", async () => {
  const env = await testEnv();
  const actor = await publishStage.create(parse([{ memory: { name: "search" } }]), env);
  await actor.open?.(ctx());
  const batch = items(3);
  const update = { ...batch[0], update: true as const, payload: { revision: 2 } };
  failing.on = true;
  try {
    await assert.rejects(
      Promise.resolve(actor.handle([...batch, update], collector().out, ctx())),
      /t\/publish: cannot write 3 items and 1 merge update to sink memory \(search is down\)/,
    );
  } finally {
    failing.on = false;
  }
});

Deno.test("a failing sink fails the batch, emits nothing, and the retry writes nothing twice", async () => {
  const env = await testEnv();
  MemorySink.instances = [];
  const cfg = parse([{ jsonl: { path: "items.jsonl" } }, { memory: { name: "search" } }]);
  const actor = await publishStage.create(cfg, env);
  await actor.open?.(ctx());
  const batch = items(3);

  failing.on = true;
  const first = collector();
  try {
    await assert.rejects(
      Promise.resolve(actor.handle(batch, first.out, ctx())),
      /t\/publish: cannot write 3 items to sink memory \(search is down\)/,
    );
  } finally {
    failing.on = false;
  }
  assert.equal(first.emitted.length, 0);

  const retry = collector();
  await actor.handle(batch, retry.out, ctx());
  await actor.close?.();
  assert.equal(retry.emitted.length, 3);
  assert.equal(await lineCount(join(env.outDir, "items.jsonl")), 3, "jsonl took it once");
});

Deno.test("the documented YAML examples load", () => {
  const flow = parseYaml(`
- publish:
    - jsonl: { path: items.jsonl }
    - stdout: {}
- publish:
    sinks: [ { jsonl: { path: items.jsonl } } ]
    batch: { size: 500, maxWait: 1s }
`) as { publish: unknown }[];
  const [list, object] = flow.map((stage) => parse(stage.publish));
  assert.deepEqual(list.sinks.map((s) => s.kind), ["jsonl", "stdout"]);
  assert.deepEqual(object.sinks.map((s) => s.kind), ["jsonl"]);
  assert.deepEqual(object.batch, { size: 500, maxWait: 1_000 });
});

/**
 * A sink that keeps the ids it took, and refuses any batch holding an item
 * titled `refuse` (as a database refuses one bad row), or opens with an
 * error when `failOpen`. Kept apart from `registry` above so the known-sinks
 * messages there stay as they are.
 */
class KeepingSink implements Sink {
  static byName = new Map<string, KeepingSink>();
  readonly ids = new Set<string>();
  writes = 0;
  closed = false;
  constructor(
    readonly config: {
      name: string;
      refuse?: string;
      failOpen?: boolean;
      delay?: number;
      final?: boolean;
    },
  ) {
    KeepingSink.byName.set(config.name, this);
  }
  open() {
    if (this.config.failOpen) throw new Error(`${this.config.name} cannot connect`);
  }
  async write(batch: readonly Envelope<RawItem>[]): Promise<void> {
    this.writes++;
    if (this.config.delay) await new Promise((r) => setTimeout(r, this.config.delay));
    const bad = batch.find((e) => e.payload.title === this.config.refuse);
    if (bad) {
      const error = new Error(`${this.config.name} refuses ${JSON.stringify(bad.payload.title)}`);
      if (this.config.final) Object.assign(error, { retryable: false });
      throw error;
    }
    for (const e of batch) this.ids.add(e.id);
  }
  close() {
    this.closed = true;
  }
}

const keepingSink: SinkSpec<KeepingSink["config"]> = {
  kind: "keep",
  summary: "test sink that keeps ids",
  schema: z.strictObject({
    name: z.string(),
    refuse: z.string().optional(),
    failOpen: z.boolean().optional(),
    delay: z.int().optional(),
    final: z.boolean().optional(),
  }),
  create: (config) => new KeepingSink(config),
};

const listSource: SourceSpec<{ n: number }> = {
  kind: "list",
  summary: "test source of n items",
  schema: z.strictObject({ n: z.int() }),
  create: ({ n }) => ({
    async *read() {
      yield Array.from({ length: n }, (_, i) => ({
        title: `Title ${i}`,
        url: `https://example.com/${i}`,
      }));
    },
  }),
};

const flowRegistry = new Registry().stage(publishStage).sink(keepingSink).source(listSource);

Deno.test("sinks are named by kind, and kind#N when a kind repeats", () => {
  assert.deepEqual(sinkNames(["jsonl", "qdrant", "jsonl", "jsonl"]), [
    "jsonl",
    "qdrant",
    "jsonl#2",
    "jsonl#3",
  ]);
});

Deno.test("a sink that refuses one item sends it alone to dead letters, naming the sink; the other sink has every item and the flow finishes", async () => {
  KeepingSink.byName.clear();
  const output = await Deno.makeTempDir();
  const flow = defineFlow({
    name: "two",
    output,
    sources: { s: { kind: "list", n: 20 } },
    pipeline: [{
      publish: {
        sinks: [{ keep: { name: "search" } }, { keep: { name: "db", refuse: "Title 7" } }],
        batch: { size: 5, maxWait: "10ms" },
        retries: 1,
      },
    }],
  }, flowRegistry);
  const deadLetters = new MemoryDeadLetters();
  const report = await runFlow(flow, {
    registry: flowRegistry,
    deadLetters,
    log: memoryLogger(),
    backoffBase: 1,
  });

  assert.equal(report.published, 19);
  assert.equal(report.deadLettered, 1);
  assert.equal(deadLetters.entries.length, 1);
  const [letter] = deadLetters.entries;
  assert.equal((letter.item.payload as RawItem).title, "Title 7");
  assert.equal(letter.stage, "publish");
  assert.equal(
    letter.reason,
    'failed: two/publish: cannot write 1 item to sink keep#2 (db refuses "Title 7")',
  );
  const search = KeepingSink.byName.get("search")!;
  const db = KeepingSink.byName.get("db")!;
  assert.equal(db.ids.size, 19, "the refusing sink has every other item");
  assert.ok(!db.ids.has(letter.item.id));
  assert.equal(search.ids.size, 20, "the healthy sink has all 20: at least once at a healthy sink");
  assert.ok(search.ids.has(letter.item.id), "including the dead-lettered item");
  assert.ok(search.closed && db.closed, "both sinks closed when the flow finished");
});

Deno.test("a failing sink does not cut short the other sink's write", async () => {
  KeepingSink.byName.clear();
  const env = await testEnv();
  const cfg = schemaOf(publishStage, flowRegistry).parse([
    { keep: { name: "slow", delay: 30 } },
    { keep: { name: "fast-fail", refuse: "Title 1" } },
  ]);
  const actor = await publishStage.create(cfg, { ...env, registry: flowRegistry });
  await actor.open?.(ctx());
  const batch = items(3);
  const first = collector();
  await assert.rejects(
    Promise.resolve(actor.handle(batch, first.out, ctx())),
    /t\/publish: cannot write 3 items to sink keep#2 \(fast-fail refuses "Title 1"\)/,
  );
  assert.equal(KeepingSink.byName.get("slow")!.ids.size, 3, "written before the batch failed");
  assert.equal(first.emitted.length, 0, "nothing is published until every sink has it");
});

Deno.test("when a sink cannot open, the sinks that did are closed and the error names the sink", async () => {
  KeepingSink.byName.clear();
  const env = await testEnv();
  const cfg = schemaOf(publishStage, flowRegistry).parse([
    { keep: { name: "fine" } },
    { keep: { name: "down", failOpen: true } },
  ]);
  const actor = await publishStage.create(cfg, { ...env, registry: flowRegistry });
  await assert.rejects(
    Promise.resolve(actor.open?.(ctx())),
    /t\/publish: cannot open sink keep#2 \(down cannot connect\)/,
  );
  assert.ok(KeepingSink.byName.get("fine")!.closed);
});

Deno.test("a batch is not worth retrying only when every failing sink says so", async () => {
  const env = { ...await testEnv(), registry: flowRegistry };
  const failure = async (sinks: unknown[]) => {
    const cfg = schemaOf(publishStage, flowRegistry).parse(sinks);
    const actor = await publishStage.create(cfg, env);
    return await Promise.resolve(actor.handle(items(2), collector().out, ctx())).then(
      () => assert.fail("the batch should fail"),
      (e: Error & { retryable?: boolean }) => e,
    );
  };
  const final = { keep: { name: "a", refuse: "Title 0", final: true } };
  const plain = { keep: { name: "b", refuse: "Title 1" } };
  assert.equal((await failure([final, { keep: { name: "ok" } }])).retryable, false);
  assert.equal((await failure([final, plain])).retryable, undefined);
});

/** A sink that records its expire calls (the cutoff and when), and fails them while `failing`. */
class ExpiringSink implements Sink {
  static last?: ExpiringSink;
  readonly calls: { before: number; at: number }[] = [];
  failing = false;
  removes = 2;
  constructor(readonly now: () => number) {
    ExpiringSink.last = this;
  }
  write(): Promise<void> {
    return Promise.resolve();
  }
  expire(before: number): Promise<number> {
    this.calls.push({ before, at: this.now() });
    return this.failing
      ? Promise.reject(new Error("store is down"))
      : Promise.resolve(this.removes);
  }
}

/**
 * Time the test moves. `advance` lets it pass with the sweep timer firing on
 * time, as often as its period fits; `jump` lets it pass with the timer late
 * (a busy event loop), to fire at the next `advance`.
 */
function fakeTimers() {
  let t = Date.UTC(2026, 5, 1);
  const timers = new Set<{ ms: number; due: number; fn: () => void }>();
  /** Lets a fired sweep run to its end (expire calls, logs) before time moves on. */
  const settle = () => new Promise((r) => setTimeout(r, 0));
  return {
    now: () => t,
    every(ms: number, fn: () => void) {
      const timer = { ms, due: t + ms, fn };
      timers.add(timer);
      return () => void timers.delete(timer);
    },
    async advance(ms: number) {
      const end = t + ms;
      for (;;) {
        const next = [...timers].filter((x) => x.due <= end).sort((a, b) => a.due - b.due)[0];
        if (!next) break;
        t = Math.max(t, next.due);
        next.due += next.ms;
        next.fn();
        await settle();
      }
      t = end;
    },
    jump(ms: number) {
      t += ms;
    },
    /** Timers running. */
    get armed() {
      return timers.size;
    },
  };
}

const clock = fakeTimers();
const expiringRegistry = new Registry().stage(publishStage).sink({
  kind: "expiring",
  summary: "test sink with expire",
  schema: z.strictObject({}),
  create: () => new ExpiringSink(clock.now),
}).sink(stdoutSink);

async function expiringActor(raw: unknown) {
  const cfg = schemaOf(publishStage, expiringRegistry).parse(raw);
  const env = { ...await testEnv(), registry: expiringRegistry };
  const actor = await createPublisher(cfg, env, clock);
  const log = memoryLogger();
  const context: StageContext = { ...ctx(), log };
  return { actor, sink: ExpiringSink.last!, log, context };
}

Deno.test("with retention, sinks expire at open and then every retentionEvery, never more often", async () => {
  const day = 86_400_000;
  const { actor, sink, log, context } = await expiringActor({
    sinks: [{ expiring: {} }, { stdout: null }],
    retention: "30d",
    retentionEvery: "50ms",
  });
  const opened = clock.now();
  const since = () => sink.calls.map((c) => c.at - opened);
  await actor.open!(context);
  assert.equal(sink.calls.length, 1, "one sweep at open");
  assert.equal(sink.calls[0].before, opened - 30 * day, "cutoff is now - 30d");
  assert.match(
    log.lines[0],
    /^info t\/publish: retention removed 2 items seen before .* from expiring$/,
  );

  sink.removes = 0; // a sweep that removed nothing is not news: debug, not info
  for (let i = 0; i < 5; i++) await actor.handle([], collector().out, context);
  assert.equal(sink.calls.length, 1, "batches right after a sweep do not sweep again");
  clock.jump(49);
  await actor.handle([], collector().out, context);
  assert.equal(sink.calls.length, 1, "nor 49 ms after it");

  await clock.advance(1 + 100); // idle: the timer sweeps on its own, at 50, 100 and 150
  assert.deepEqual(since(), [0, 50, 100, 150], "the timer swept an idle flow");
  clock.jump(60); // the timer is late: the next batch sweeps
  await actor.handle([], collector().out, context);
  assert.deepEqual(since(), [0, 50, 100, 150, 210]);
  // The late timer (due at 200) and the next (250) come too soon after the
  // batch's sweep at 210; the one at 300 sweeps.
  await clock.advance(90);
  assert.deepEqual(since(), [0, 50, 100, 150, 210, 300], "at least retentionEvery apart");
  assert.ok(sink.calls.every((c) => c.before === c.at - 30 * day), "each cutoff is then - 30d");
  assert.deepEqual(
    log.lines.filter((l) => l.includes("retention removed")).map((l) => l.split(" ")[0]),
    ["info", "debug", "debug", "debug", "debug", "debug"],
  );

  await actor.close!();
  assert.equal(clock.armed, 0, "the timer is stopped at close");
  await clock.advance(500);
  assert.equal(sink.calls.length, 6, "no sweep after close");
});

Deno.test("a failing expire is logged and retried, and never fails a batch", async () => {
  const { actor, sink, log, context } = await expiringActor({
    sinks: [{ expiring: {} }],
    retention: "1h",
    retentionEvery: "50ms",
  });
  sink.failing = true;
  await actor.open!(context);
  await clock.advance(50);
  const { out, emitted } = collector();
  const batch = items(3);
  await actor.handle(batch, out, context);
  assert.deepEqual(emitted.map((e) => e.id), batch.map((e) => e.id), "the batch is published");
  assert.equal(sink.calls.length, 2, "the sweep was tried again");
  const warns = log.lines.filter((l) => l.startsWith("warn "));
  assert.equal(warns.length, 2);
  assert.match(warns[0], /retention cannot expire items .* from expiring \(store is down\)/);
  await actor.close!();
});

Deno.test("without retention no sink is asked to expire", async () => {
  const { actor, sink, context } = await expiringActor([{ expiring: {} }]);
  await actor.open!(context);
  await actor.handle(items(2), collector().out, context);
  await actor.close!();
  assert.equal(sink.calls.length, 0);
});

Deno.test("merge updates go only to sinks that say they take them: a sink written before updates existed never has a story overwritten by one", async () => {
  const env = await testEnv();
  MemorySink.instances = [];
  // memory: a sink that says nothing of updates; jsonl: a built-in sink, which applies them.
  const cfg = parse([{ memory: { name: "plain" } }, { jsonl: { path: "items.jsonl" } }]);
  const actor = await publishStage.create(cfg, env);
  await actor.open?.(ctx());
  const story = items(2);
  const update: Envelope<RawItem> = {
    ...story[0],
    update: true,
    payload: { sources: [], engagement: {}, lastSeenAt: 1, revision: 2 },
  };
  const { out, emitted } = collector();
  await actor.handle([...story, update], out, ctx());
  // A batch of updates alone asks nothing of the plain sink.
  await actor.handle([{ ...update, payload: { ...update.payload, revision: 3 } }], out, ctx());
  await actor.close?.();

  const [plain] = MemorySink.instances;
  assert.deepEqual(plain.batches, [story.map((e) => e.id)], "the plain sink got the items alone");
  const lines = (await Deno.readTextFile(join(env.outDir, "items.jsonl"))).trim().split("\n");
  assert.equal(lines.length, 4, "the JSONL sink wrote both items and both updates");
  assert.deepEqual(emitted, story, "updates are not passed on");
});
