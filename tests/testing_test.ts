/**
 * testing.ts as a user meets it: a custom stage tested among the built-in
 * ones with runTestFlow, and its refusals read back with stage and reason.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import type { Actor } from "../engine/actor.ts";
import type { Envelope, RawItem } from "../engine/item.ts";
import { defineFlow } from "../config/define_flow.ts";
import { parseFlow } from "../config/load_flow.ts";
import {
  assertMatches,
  MemorySink,
  memorySource,
  runStage,
  runTestFlow,
  testableFlow,
  testRegistry,
  testSinkNames,
} from "../testing.ts";
import { hangingStage } from "./_hanging_stage.ts";
import type { StepSpec } from "../mod.ts";

/** A custom stage: upper-cases titles, refuses items that shout already. */
const shout = {
  kind: "shout",
  summary: "upper-cases titles",
  schema: z.strictObject({}),
  create: (): Actor => ({
    handle(batch, out) {
      for (const item of batch) {
        const title = String(item.payload.title);
        if (title === title.toUpperCase()) out.reject(item, "already shouting");
        else out.emit({ ...item, payload: { ...item.payload, title: title.toUpperCase() } });
      }
    },
  }),
};

const items: RawItem[] = [
  { title: "Deno ships a release", url: "https://example.com/1" },
  { title: "ALL CAPS NEWS", url: "https://example.com/2" },
  { title: "Quiet news", url: "https://example.com/3" },
];

Deno.test("a custom stage runs among the built-in ones and its output reaches the sink", async () => {
  const registry = testRegistry().stage(shout);
  const flow = defineFlow({
    name: "shouting",
    sources: { inbox: { kind: "memory" } },
    pipeline: [{ validate: {} }, { shout: {} }, { publish: [{ collect: { name: "out" } }] }],
  }, registry);

  const { report, published } = await runTestFlow(flow, { registry, items });

  assert.equal(report.published, 2);
  assert.deepEqual(published.get("out")!.map((i) => i.payload.title), [
    "DENO SHIPS A RELEASE",
    "QUIET NEWS",
  ]);
});

Deno.test("dead letters come back with the stage that refused them and why", async () => {
  const registry = testRegistry().stage(shout);
  const { deadLetters } = await runTestFlow(
    `
name: shouting
sources: { inbox: { kind: memory } }
pipeline:
  - validate: { title: { min: 5, max: 100 } }
  - shout: {}
  - publish: [ { collect: {} } ]
`,
    { registry, items: [...items, { title: "tiny", url: "https://example.com/4" }] },
  );

  assert.deepEqual(deadLetters.map((d) => [d.item.payload, d.stage, d.reason]), [
    [
      { title: "tiny", url: "https://example.com/4" },
      "validate",
      "title: 4 characters, fewer than the minimum 5",
    ],
    [{ title: "ALL CAPS NEWS", url: "https://example.com/2" }, "shout", "already shouting"],
  ]);
});

Deno.test("items can be given per source, and each collect sink is returned by its name", async () => {
  const { published } = await runTestFlow(
    `
name: two
sources:
  a: { kind: memory }
  b: { kind: memory, items: [ { title: "inline item", url: "https://example.com/inline" } ] }
pipeline:
  - validate: {}
  - publish: [ { collect: { name: first } }, { collect: { name: second } } ]
`,
    { items: { a: [items[0]] } },
  );

  const titles = (name: string) => published.get(name)!.map((i) => i.payload.title).sort();
  assert.deepEqual(titles("first"), ["Deno ships a release", "inline item"]);
  assert.deepEqual(titles("second"), titles("first"));
});

Deno.test("MemorySink keeps one copy per id and removes items marked deleted", async () => {
  const sink = new MemorySink();
  const item = (n: number, payload: RawItem = {}): Envelope<RawItem> => ({
    id: `id${n}`,
    event: `e${n}`,
    source: "s",
    seenAt: 0,
    attempts: 0,
    payload,
  });
  await sink.write([item(1, { title: "one" }), item(2), item(3)]);
  await sink.write([item(1, { title: "one, again" }), item(2, { deleted: true })]);
  assert.deepEqual(sink.items.map((i) => [i.id, i.payload.title]), [
    ["id1", "one, again"],
    ["id3", undefined],
  ]);
  assert.deepEqual(sink.deleted, ["id2"]);
  // Only `deleted: true` deletes, as in every real sink: "no" is a field like any other.
  await sink.write([item(3, { deleted: "no" } as unknown as RawItem)]);
  assert.deepEqual(sink.items.map((i) => i.id), ["id1", "id3"]);
  assert.deepEqual(sink.deleted, ["id2"]);
});

Deno.test("the collect sink dead-letters an item JSON cannot hold, as a real sink does, and keeps its batch-mates", async () => {
  // It kept them: a flow's test passed that a run with its jsonl sink dead-letters.
  const odd = {
    kind: "odd",
    summary: "puts a BigInt in one item",
    schema: z.strictObject({}),
    create: (): Actor => ({
      handle(batch, out) {
        for (const item of batch) {
          const big = item.payload.title === "Quiet news" ? { big: 10n } : {};
          out.emit({ ...item, payload: { ...item.payload, ...big } });
        }
      },
    }),
  };
  const registry = testRegistry().stage(odd);
  const { report, published, deadLetters } = await runTestFlow(
    "name: odd\nsources: { inbox: { kind: memory } }\n" +
      "pipeline:\n  - odd: {}\n  - publish: [ { collect: { name: out } } ]\n",
    { registry, items },
  );
  assert.deepEqual(published.get("out")!.map((i) => i.payload.title), [
    "Deno ships a release",
    "ALL CAPS NEWS",
  ]);
  assert.equal(report.published, 2);
  assert.deepEqual(deadLetters.map((l) => [l.stage, (l.item.payload as RawItem).title]), [
    ["publish", "Quiet news"],
  ]);
  assert.match(deadLetters[0].reason, /cannot be written as JSON: .*BigInt/);
});

Deno.test("memorySource yields copies in batches and resumes from its checkpoint", async () => {
  const list: RawItem[] = [{ title: "a" }, { title: "b" }, { title: "c" }];
  const source = memorySource(list, { batch: 2 });
  const signal = new AbortController().signal;
  const first = await source.read(signal)[Symbol.asyncIterator]().next();
  assert.deepEqual(first.value, [{ title: "a" }, { title: "b" }]);
  first.value[0].title = "changed";
  assert.equal(list[0].title, "a", "the caller's list is untouched");

  const resumed = memorySource(list, { batch: 2 });
  resumed.resume!(source.checkpoint!());
  const rest = [];
  for await (const batch of resumed.read(signal)) rest.push(batch);
  assert.deepEqual(rest, [[{ title: "c" }]]);
});

Deno.test("testableFlow runs a durable, polling flow in memory on given items, its sinks collected by name", async () => {
  const registry = testRegistry();
  const flow = parseFlow(
    `name: polled
durability: redis
redis: redis://127.0.0.1:1
sources:
  a: { kind: generator, every: 1s }
  b: { kind: generator, cron: "* * * * *" }
pipeline:
  - validate: { require: [title, url] }
  - publish: [ { jsonl: { path: a.jsonl } }, { stdout: {} }, { jsonl: { path: b.jsonl } } ]
`,
    "polled.yaml",
    registry,
    {},
    { baseDir: Deno.cwd() },
  );
  assert.deepEqual(testSinkNames(flow), ["jsonl", "stdout", "jsonl#2"]);
  const testable = testableFlow(flow, { b: [items[0]] });
  assert.equal(testable.durability, "memory");
  assert.deepEqual(testable.sources.map((s) => [s.name, s.kind, s.every, s.cron]), [
    ["a", "memory", undefined, undefined],
    ["b", "memory", undefined, undefined],
  ]);
  // Ends by itself: the sources read their lists once.
  const { published } = await runTestFlow(testable, { registry });
  assert.deepEqual([...published.keys()], ["jsonl", "stdout", "jsonl#2"]);
  for (const sink of published.values()) {
    assert.deepEqual(sink.map((i) => [i.source, i.payload.title]), [["b", items[0].title]]);
  }
});

Deno.test("the collect sink lays merge updates over their story, as the real sinks do", async () => {
  const registry = testRegistry().stage(shout);
  const copies: RawItem[] = [
    { title: "Deno ships a release", url: "https://example.com/1", engagement: { score: 3 } },
    {
      title: "Deno ships a release",
      url: "https://example.com/1?utm_source=x",
      engagement: { score: 8 },
    },
  ];
  const flow = defineFlow({
    name: "merging",
    sources: { inbox: { kind: "memory", batch: 1 } },
    pipeline: [{ validate: {} }, { dedupe: {} }, { shout: {} }, {
      publish: [{ collect: { name: "out" } }],
    }],
  }, registry);
  const { report, published } = await runTestFlow(flow, { registry, items: copies });
  assert.equal(report.published, 1);
  const [story] = published.get("out")!;
  assert.equal(
    story.payload.title,
    "DENO SHIPS A RELEASE",
    "the custom stage never saw the update",
  );
  assert.deepEqual(story.payload.engagement, { score: 8 });
  assert.equal(story.payload.revision, 2);
  assert.equal((story.payload.sources as unknown[]).length, 1, "one source, one canonical url");
});

Deno.test("runTestFlow kills a flow past its timeout and fails, naming what was in flight: a hung stage cannot hang the test", async () => {
  const registry = testRegistry().stage(hangingStage);
  const flow = "name: hung\nsources: { m: { kind: memory } }\n" +
    "pipeline: [ { hangs: {} }, { publish: [ { collect: {} } ] } ]\n";
  const items = [{ title: "a", url: "https://a.example/1" }, {
    title: "b",
    url: "https://a.example/2",
  }];
  await assert.rejects(
    runTestFlow(flow, { registry, items, timeout: 200 }),
    /^Error: runTestFlow: flow hung did not end within 200 ms \(timeout\) and was killed with 2 items in flight \(held by stage hangs: 2 items\)/,
  );
  // Stopped by its signal too, a hung stage is still killed at the timeout.
  const stop = new AbortController();
  setTimeout(() => stop.abort(), 50);
  await assert.rejects(
    runTestFlow(flow, { registry, items, timeout: 300, signal: stop.signal }),
    /did not end within 300 ms/,
  );
});

Deno.test("runTestFlow's timeout fires on a flow that never awaits anything but itself: an endless source in memory cannot hang the test", async () => {
  // A source and a sink that do no I/O: every await in the run resolves at once, so only the
  // engine giving timers their turn lets the timeout (or a stop() from a timer) run at all.
  const CAP = 2_000_000;
  let emitted = 0;
  const registry = testRegistry()
    .source({
      kind: "endless",
      summary: "numbered items, until stopped",
      schema: z.strictObject({}),
      create: () => ({
        async *read(signal: AbortSignal) {
          for (let n = 0; n < CAP && !signal.aborted; n += 100) {
            const batch = Array.from({ length: 100 }, (_, i) => ({
              title: "t",
              url: `https://a.example/${n + i}`,
            }));
            emitted += batch.length;
            yield batch;
          }
        },
      }),
    })
    .sink({
      kind: "count",
      summary: "writes nothing",
      schema: z.strictObject({}),
      create: () => ({ write: () => Promise.resolve() }),
    });
  const flow = "name: endless\nsources: { e: { kind: endless } }\n" +
    "pipeline: [ { publish: [ { count: {} } ] } ]\n";
  await assert.rejects(
    runTestFlow(flow, { registry, timeout: 100 }),
    /did not end within 100 ms \(timeout\)/,
  );
  assert.ok(emitted < CAP, `the source was stopped early, not read to its end (${emitted} items)`);
});

Deno.test("runStage runs a custom stage on one batch, built from its config as a flow builds it", async () => {
  const given = structuredClone(items);
  const { emitted, rejected, dropped } = await runStage(shout, given);
  assert.deepEqual(emitted.map((e) => e.payload.title), ["DENO SHIPS A RELEASE", "QUIET NEWS"]);
  assert.deepEqual(rejected.map((r) => [r.item.payload.url, r.reason]), [
    ["https://example.com/2", "already shouting"],
  ]);
  assert.equal(dropped.length, 0);
  assert.deepEqual(given, items, "the caller's items are not changed");
  // The config goes through the stage's schema: a field it does not know is refused.
  await assert.rejects(
    runStage(shout, items, { loud: true }),
    (e: Error) => {
      assert.equal(e.message, 'runStage: shout: bad config:\nconfig.loud: unknown field "loud"');
      return true;
    },
  );
  // An actor with its handle misspelt is told so, as a flow's build tells it (before:
  // "actor.handle is not a function").
  const misspelt = { ...shout, create: () => ({ process() {} }) } as unknown as typeof shout;
  await assert.rejects(
    runStage(misspelt, items),
    (e: Error) => {
      assert.equal(
        e.message,
        "runStage: shout: its create() returned an actor with no handle(batch, out) function: " +
          "return { handle(batch, out) { ... } }",
      );
      return true;
    },
  );
});

Deno.test("a stage tallying a name per item is counted by 20 names, the rest as other, and told once", async () => {
  // Before: a usage counter, a metrics series and a part of the summary's row per item.
  const registry = testRegistry().stage({
    kind: "tallier",
    summary: "counts per item",
    schema: z.strictObject({}),
    create: () => ({
      handle(batch, out, ctx) {
        for (const item of batch) {
          ctx.tally?.("requests", 1);
          ctx.tally?.(`host ${item.payload.url}`, 1);
          out.emit(item);
        }
      },
    }),
  });
  const flow = defineFlow({
    name: "tallying",
    sources: { inbox: { kind: "memory" } },
    pipeline: [{ tallier: {} }, { publish: [{ collect: { name: "out" } }] }],
  }, registry);
  const many = Array.from({ length: 50 }, (_, i) => ({
    title: `story ${i}`,
    url: `https://example.com/${i}`,
  }));
  const { report, logs } = await runTestFlow(flow, { registry, items: many });
  const usage = report.stages.find((s) => s.id === "tallier")!.usage!;
  assert.equal(Object.keys(usage).length, 21);
  assert.equal(usage.requests, 50, "a name counted from the start keeps counting");
  assert.equal(usage.other, 50 - 19);
  const said = logs.filter((l) => l.includes("ctx.tally"));
  assert.equal(said.length, 1, logs.join("\n"));
  assert.match(said[0], /tallying\/tallier: more than 20 different names given to ctx\.tally/);
});

Deno.test("a custom stage's items are typed: a payload field used as the wrong type does not compile", async () => {
  const registry = testRegistry().stage({
    kind: "typed",
    summary: "reads a typed payload",
    schema: z.strictObject({}),
    create: () => ({
      handle(batch, out) {
        for (const item of batch) {
          const title: string | undefined = item.payload.title;
          // @ts-expect-error a title is a string, not a number (an `any` payload would allow it)
          const wrong: number = item.payload.title;
          out.emit({ ...item, payload: { ...item.payload, title: `${title}:${typeof wrong}` } });
        }
      },
    }),
  });
  const { emitted } = await runStage(registry.stages.get("typed")!, [{ title: "a" }]);
  assert.equal(emitted[0].payload.title, "a:string");
});

Deno.test("a durable test flow given its Redis names the lines the test wrote in its errors", async () => {
  // The Redis was set by printing the YAML again, which dropped blank lines and reflowed
  // { } maps: every line and column an error named moved.
  const yaml = "name: rt\ndurability: redis\n\n\n# comment\nsources:\n  s: { kind: memory }\n\n" +
    "pipeline:\n\n  - validate: { require: [title, url], titel: 5 }\n  - publish:\n      - collect: {}\n";
  const said = async (redis?: string) =>
    (await runTestFlow(yaml, { redis, items: [] }).then(() => "", (e: Error) => e.message))
      .split("\n").find((line) => line.includes("titel"));
  const without = await said(undefined);
  assert.match(without ?? "", /^test flow:11:40: pipeline\[0\]\.validate\.titel: unknown field/);
  assert.equal(await said("redis://127.0.0.1:1"), without);
});

Deno.test("runStage takes a step module's spec, whose kind and summary may be left out", async () => {
  // README says a step module's kind and summary are optional; runStage refused such a spec
  // at type-check, and so did `satisfies StepSpec` in the module.
  const step: StepSpec = {
    schema: z.object({}),
    create: (): Actor => ({
      handle(batch, out) {
        for (const item of batch) out.emit(item);
      },
    }),
  };
  const result = await runStage(step, [{ title: "a story", url: "https://example.com/a" }]);
  assert.deepEqual(result.emitted.map((e) => e.payload.title), ["a story"]);
});

Deno.test("runStage holds a stage to what a flow holds it to: envelopes emitted, every item accounted for", async () => {
  const stage = (handle: Actor["handle"]): StepSpec => ({
    summary: "x",
    schema: z.object({}),
    create: (): Actor => ({ handle }),
  });
  const items = [{ title: "a", url: "https://example.com/a" }, {
    title: "b",
    url: "https://example.com/b",
  }];
  // A payload emitted in place of its envelope: a flow dead-letters every such item.
  await assert.rejects(
    runStage(stage((batch, out) => batch.forEach((i) => out.emit(i.payload as never))), items),
    /emitted an object with no string id, not an item's envelope/,
  );
  // Two items under one id for one input: a flow dead-letters the input.
  await assert.rejects(
    runStage(stage((batch, out) => batch.forEach((i) => (out.emit(i), out.emit({ ...i })))), items),
    /emitted 2 items with the id [0-9a-f]{32} for one input/,
  );
  // An item let go without a word is dropped "not passed on" and said, as a flow counts it.
  const { emitted, dropped, logs } = await runStage(
    stage((batch, out) => out.emit(batch[0])),
    items,
  );
  assert.deepEqual(emitted.map((e) => e.payload.title), ["a"]);
  assert.deepEqual(dropped.map((d) => [d.item.payload.title, d.label]), [["b", "not passed on"]]);
  assert.match(
    logs.join("\n"),
    /1 of a batch's 2 items were neither emitted, dropped nor rejected/,
  );
});

Deno.test("runTestFlow refuses items that no memory source of the flow would emit", async () => {
  const yaml = `name: t
sources: { news: { kind: json, path: news.json } }
pipeline:
  - publish: [ { collect: { name: out } } ]
`;
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/news.json`, JSON.stringify([{ title: "from the file" }]));
    await assert.rejects(
      runTestFlow(yaml, { baseDir: dir, items: [{ title: "given" }] }),
      /runTestFlow: items were given, but flow t has no memory source without items of its own to emit them \(its sources: news \(json\)\); give the test's flow a source \{ kind: memory \}, or make one with testableFlow/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("two runTestFlow calls started together on one registry: the second is refused, the first runs whole", async () => {
  const registry = testRegistry().stage(shout);
  const flow = defineFlow({
    name: "together",
    sources: { inbox: { kind: "memory" } },
    pipeline: [{ shout: {} }, { publish: [{ collect: { name: "out" } }] }],
  }, registry);
  const [first, second] = await Promise.allSettled([
    runTestFlow(flow, { registry, items }),
    runTestFlow(flow, { registry, items }),
  ]);
  assert.equal(first.status, "fulfilled");
  assert.equal(first.value.published.get("out")!.length, 2);
  assert.equal(second.status, "rejected");
  assert.match(String(second.reason), /runTestFlow is already running on this registry/);
});

Deno.test("runStage fails a stage that never returns at its timeout, naming it, and aborts its signal", async () => {
  let signal: AbortSignal | undefined;
  const stuck = {
    ...hangingStage,
    create: () => ({
      handle: (_b: unknown, _o: unknown, ctx: { signal: AbortSignal }) => {
        signal = ctx.signal;
        return new Promise<void>(() => {});
      },
    }),
  };
  await assert.rejects(
    runStage(stuck, [{ title: "a", url: "https://a.example/1" }], {}, { timeout: 100 }),
    /^Error: runStage: stage hangs: handle did not return within 100 ms \(timeout\)/,
  );
  assert.equal(signal?.aborted, true);
});

Deno.test("assertMatches holds code tests to what a test file's expect: holds flows to", async () => {
  const registry = testRegistry().stage(shout);
  const flow = defineFlow({
    name: "matches",
    sources: { inbox: { kind: "memory" } },
    pipeline: [{ shout: {} }, { publish: [{ collect: { name: "out" } }] }],
  }, registry);
  const { published } = await runTestFlow(flow, { registry, items });
  const titles = published.get("out")!.map((i) => i.payload);
  assertMatches(titles, [{ title: "QUIET NEWS", url: "{url}" }, { title: "{/^DENO/}" }], {
    anyOrder: true,
  });
  assert.throws(
    () => assertMatches(titles, [{ title: "{integer}" }, { title: "{/^DENO/}", url: "{url}" }]),
    (e: Error) => {
      assert.equal(e.name, "AssertionError");
      assert.match(
        e.message,
        /^not as expected:\n {2}\[0\]\.title\n {4}expected: "\{integer\}"\n {4}actual: {3}"DENO SHIPS A RELEASE"/,
      );
      assert.match(
        e.message,
        /\[1\]\.title\n {4}expected: "\{\/\^DENO\/\}"\n {4}actual: {3}"QUIET NEWS"/,
      );
      return true;
    },
  );
});

Deno.test("runStage closes a stage whose handle timed out in time too, and throws the handle's error", async () => {
  let inHand: Promise<void> | undefined;
  const waits = {
    ...hangingStage,
    create: () => ({
      handle: () => inHand = new Promise<void>(() => {}),
      close: () => inHand, // waits for the batch in hand, which never ends
    }),
  };
  await assert.rejects(
    runStage(waits, [{ title: "a", url: "https://a.example/1" }], {}, { timeout: 100 }),
    /runStage: stage hangs: handle did not return within 100 ms/,
  );
});

Deno.test("runStage holds a step module to account as a flow does, whatever it says of itself", async () => {
  // A flow does not take a step module's word (leavesInputs): neither does runStage.
  const twice: StepSpec = {
    kind: "twice",
    summary: "emits each item twice under its id",
    schema: z.strictObject({}),
    leavesInputs: true,
    create: (): Actor => ({
      handle(batch, out) {
        for (const item of batch) out.emit(item), out.emit({ ...item });
      },
    }),
  } as StepSpec;
  await assert.rejects(
    runStage(twice, [{ title: "a", url: "https://a.example/1" }]),
    /emitted 2 items with the id \w+ for one input/,
  );
});
