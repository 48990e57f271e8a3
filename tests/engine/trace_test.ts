import assert from "node:assert/strict";
import { context, ROOT_CONTEXT, SpanStatusCode, trace } from "@opentelemetry/api";
import { z } from "zod";
import type { Actor } from "../../engine/actor.ts";
import { decodeEntry, encodeEntries } from "../../engine/redis/codec.ts";
import { envelope } from "../../engine/item.ts";
import { parseTraceparent, tracedBatch } from "../../engine/trace.ts";
import { parseFlow } from "../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../engine/dead_letters.ts";
import { memoryLogger } from "../../engine/log.ts";
import { runFlow } from "../../engine/run_flow.ts";
import { runTestFlow, testRegistry } from "../../testing.ts";
import { redisTest, withRedis } from "../_redis_server.ts";
import { type MemorySpan as ReadableSpan, MemoryTracerProvider } from "./_memory_tracer.ts";

// One in-process tracer provider for this file: what OTEL_DENO=true gives a run, kept in memory.
const provider = new MemoryTracerProvider();
trace.setGlobalTracerProvider(provider);

/** The spans a run made, by name, after clearing what came before. */
async function spansOf<T>(run: () => Promise<T>): Promise<[T, ReadableSpan[]]> {
  provider.reset();
  const result = await run();
  return [result, provider.finished()];
}

const named = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);
const traceOf = (s: ReadableSpan) => s.spanContext().traceId;
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

const items = [
  ...Array.from({ length: 6 }, (_, i) => ({
    title: i === 5 ? "Bad" : `A fine story ${i}`,
    url: `https://example.com/${i % 5}`,
  })),
  // Scraped again with a score: its story changes, so an update rides along.
  {
    title: "A fine story, scraped again",
    url: "https://example.com/1",
    engagement: { score: 5 },
  },
];

const FLOW = (durable: boolean) => `
name: traced
${durable ? "durability: redis" : ""}
sources:
  inbox: { kind: memory, batch: 3 }
pipeline:
  - validate: { require: [title, url], title: { min: 5 } }
  - dedupe: {}
  - publish: [ { collect: { name: out } } ]
`;

/**
 * What every run below must show: one span per source read, one per batch
 * per stage with its counts, each stage span in the trace of its items'
 * source read (child of it) or linked to it.
 */
function assertPath(spans: ReadableSpan[]) {
  const [source] = named(spans, "millrace.source inbox");
  assert.ok(source, spans.map((s) => s.name).join(", "));
  assert.equal(source.attributes["millrace.flow"], "traced");
  assert.equal(source.attributes["millrace.source.kind"], "memory");
  assert.equal(source.attributes["millrace.batch.out"], 7);
  assert.equal(parentOf(source), undefined, "a source read starts its trace");
  const stages = ["validate", "dedupe", "publish"].map((s) => named(spans, `millrace.stage ${s}`));
  for (const batches of stages) {
    assert.ok(batches.length > 0);
    for (const span of batches) {
      const sameTrace = traceOf(span) === traceOf(source) &&
        parentOf(span) === source.spanContext().spanId;
      const linked = span.links.some((l) => l.context.spanId === source.spanContext().spanId);
      assert.ok(sameTrace || linked, `${span.name} belongs to the read or links to it`);
      assert.equal(span.attributes["millrace.flow"], "traced");
    }
  }
  const total = (batches: ReadableSpan[], key: string) =>
    batches.reduce((n, s) => n + Number(s.attributes[key]), 0);
  const [validate, dedupe, publish] = stages;
  assert.equal(total(validate, "millrace.batch.size"), 7);
  assert.equal(total(validate, "millrace.batch.dead_letters"), 1, "the short title");
  assert.equal(total(validate, "millrace.batch.out"), 6);
  assert.equal(total(dedupe, "millrace.batch.size"), 6);
  assert.equal(total(dedupe, "millrace.batch.out"), 5);
  assert.equal(total(dedupe, "millrace.batch.dropped"), 1, "the story scraped again");
  assert.equal(total(publish, "millrace.batch.out"), 5);
  // The duplicate's merge update rides along to publish: news of a story, not an item.
  assert.equal(total(publish, "millrace.batch.size"), 5);
  assert.equal(
    publish.reduce((n, s) => n + Number(s.attributes["millrace.batch.updates"] ?? 0), 0),
    1,
  );
  assert.equal(validate[0].attributes["millrace.stage"], "validate");
}

Deno.test("a batch is parented on its first item a read traced; a batch no read traced starts no trace", () => {
  // With a ratio sampler only sampled reads' items carry a trace. Before: a batch followed its
  // first item, so one whose first item's read was left out was a root of its own (sampled or
  // not, its links to the sampled reads lost with it), and untraced entries each began a trace.
  const ctx = { flow: "f", stage: "s", signal: new AbortController().signal, log: memoryLogger() };
  const read = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const untraced = envelope({ title: "a", url: "https://e.test/a" }, "s");
  const traced = { ...envelope({ title: "b", url: "https://e.test/b" }, "s"), trace: read };
  const counts = { out: [], letters: [] };
  provider.reset();
  // First in this process, as in a durable step's, which reads no source (the first test of the
  // file): a batch was once looked into only after an item of the process had led one.
  tracedBatch(ctx, [untraced, traced], () => counts);
  tracedBatch(ctx, [traced], () => counts);
  const spans = provider.finished();
  assert.equal(spans.length, 2);
  for (const span of spans) {
    assert.equal(traceOf(span), "0af7651916cd43dd8448eb211c80319c");
    assert.equal(parentOf(span), "b7ad6b7169203331");
  }
  provider.reset();
  let ran = 0;
  tracedBatch(ctx, [untraced, { ...untraced, event: "other" }], () => (ran++, counts));
  assert.equal(ran, 1);
  assert.deepEqual(provider.finished(), [], "no span, so no trace of its own");
});

Deno.test("a memory flow: a span per source read and per batch per stage, in the read's trace", async () => {
  const [result, spans] = await spansOf(() => runTestFlow(FLOW(false), { items }));
  assert.equal(result.published.get("out")!.length, 5);
  assertPath(spans);
  const [source] = named(spans, "millrace.source inbox");
  for (const span of spans) assert.equal(traceOf(span), traceOf(source), "one trace");
});

redisTest("a durable flow: the trace context crosses each Redis edge with the items", async () => {
  await withRedis(async (server) => {
    const [result, spans] = await spansOf(() =>
      runTestFlow(FLOW(true), { items, redis: server.url })
    );
    assert.equal(result.published.get("out")!.length, 5);
    assertPath(spans);
  });
});

Deno.test("a batch with items of two reads is the child of the first and links the other", async () => {
  const registry = testRegistry();
  const [, spans] = await spansOf(() =>
    runTestFlow(
      `
name: windowed
sources:
  a: { kind: memory }
  b: { kind: memory }
pipeline:
  - validate: {}
  - publish: [ { collect: { name: out } } ]
`,
      {
        registry,
        items: {
          a: [{ title: "from a", url: "https://a.test/" }],
          b: [{ title: "from b", url: "https://b.test/" }],
        },
      },
    )
  );
  const reads = [...named(spans, "millrace.source a"), ...named(spans, "millrace.source b")];
  assert.equal(reads.length, 2);
  const publish = named(spans, "millrace.stage publish");
  assert.ok(
    publish.some((s) => s.attributes["millrace.batch.size"] === 2),
    "publish's window put the two reads' items in one batch",
  );
  // However the two reads were batched, each publish span is in one read's trace and links the other's if it holds both.
  for (const span of publish) {
    const parent = reads.find((r) => r.spanContext().spanId === parentOf(span));
    assert.ok(parent, "child of a read");
    const size = Number(span.attributes["millrace.batch.size"]);
    assert.equal(span.links.length, size - 1);
  }
});

Deno.test("a batch whose item keeps failing ends its span with an error status", async () => {
  const registry = testRegistry().stage({
    kind: "broken",
    summary: "fails every batch",
    schema: z.strictObject({}),
    create: (): Actor => ({
      handle() {
        throw new Error("it broke");
      },
    }),
  });
  const [result, spans] = await spansOf(() =>
    runTestFlow(
      `
name: failing
sources:
  inbox: { kind: memory }
pipeline:
  - broken: {}
  - publish: [ { collect: { name: out } } ]
`,
      { registry, items: [{ title: "x", url: "https://x.test/" }] },
    )
  );
  assert.equal(result.deadLetters.length, 1);
  const [span] = named(spans, "millrace.stage broken");
  assert.equal(span.status.code, SpanStatusCode.ERROR);
  assert.match(span.status.message ?? "", /it broke/);
  assert.equal(span.attributes["millrace.batch.dead_letters"], 1);
});

Deno.test("a failed source read's error line is written in its span, so an exported log is tied to it", async () => {
  const registry = testRegistry().source({
    kind: "broken",
    summary: "fails at once",
    schema: z.strictObject({}),
    create: () => ({
      // deno-lint-ignore require-yield
      async *read() {
        throw new Error("feed went away");
      },
    }),
  });
  const flow = parseFlow(
    "name: broke\nsources:\n  feed: { kind: broken }\npipeline:\n  - publish: [stdout: {}]\n",
    "flows/broke.yaml",
    registry,
    {},
  );
  // Deno's OpenTelemetry ties a log record to the span active when it is written: here a
  // context manager that keeps what `context.with` sets while its function runs, as Deno's does.
  let active = ROOT_CONTEXT;
  context.setGlobalContextManager({
    active: () => active,
    with(ctx, fn, thisArg, ...args) {
      const before = active;
      active = ctx;
      try {
        return fn.call(thisArg, ...args);
      } finally {
        active = before;
      }
    },
    bind: (_ctx, target) => target,
    enable() {
      return this;
    },
    disable() {
      return this;
    },
  });
  const errors: (string | undefined)[] = [];
  const log = memoryLogger();
  log.error = () => void errors.push(trace.getActiveSpan()?.spanContext().spanId);
  const [, spans] = await spansOf(() =>
    runFlow(flow, { registry, log, deadLetters: new MemoryDeadLetters() })
  ).finally(() => context.disable());
  const [read] = named(spans, "millrace.source feed");
  assert.equal(read.status.code, SpanStatusCode.ERROR);
  assert.ok(errors.length >= 1);
  assert.equal(errors[0], read.spanContext().spanId);
});

Deno.test("an envelope's trace survives the Redis entry codec; an entry without one still decodes", () => {
  const item = {
    ...envelope({ title: "t", url: "https://t.test/" }, "s"),
    trace: "00-" + "a".repeat(32) + "-" + "b".repeat(16) + "-01",
  };
  const [{ body }] = encodeEntries([item], 10, 10_000);
  const decoded = decodeEntry("1-0", ["b", body.toString()]);
  assert.equal(decoded.items![0].trace, item.trace);
  assert.deepEqual(parseTraceparent(item.trace), {
    traceId: "a".repeat(32),
    spanId: "b".repeat(16),
    traceFlags: 1,
    isRemote: true,
  });
  const { trace: _, ...old } = item;
  const [{ body: oldBody }] = encodeEntries([old], 10, 10_000);
  assert.equal(decodeEntry("1-1", ["b", oldBody.toString()]).items![0].trace, undefined);
  assert.equal(parseTraceparent("not a traceparent"), undefined);
});

Deno.test("a source read that fails ends its span with an error status and what it read", async () => {
  const registry = testRegistry().source({
    kind: "half",
    summary: "one batch, then fails",
    schema: z.strictObject({}),
    create: () => ({
      async *read() {
        yield [{ title: "first of two", url: "https://h.test/1" }];
        throw new Error("feed went away");
      },
    }),
  });
  const [result, spans] = await spansOf(() =>
    runTestFlow(
      `
name: half
sources:
  feed: { kind: half }
pipeline:
  - publish: [ { collect: { name: out } } ]
`,
      { registry },
    )
  );
  assert.equal(result.published.get("out")!.length, 1);
  const [read] = named(spans, "millrace.source feed");
  assert.equal(read.status.code, SpanStatusCode.ERROR);
  assert.match(read.status.message ?? "", /feed went away/);
  assert.equal(read.attributes["millrace.batch.out"], 1);
  const [publish] = named(spans, "millrace.stage publish");
  assert.equal(
    parentOf(publish),
    read.spanContext().spanId,
    "what it read before failing is traced",
  );
});
