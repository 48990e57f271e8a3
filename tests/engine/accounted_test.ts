import assert from "node:assert/strict";
import { z } from "zod";
import { copyItem } from "../../engine/accounted.ts";
import type { Actor } from "../../engine/actor.ts";
import { envelope, type RawItem } from "../../engine/item.ts";
import { schemaOf, type StageSpec } from "../../engine/registry.ts";
import { builtinRegistry } from "../../builtins.ts";
import { defineFlow } from "../../config/define_flow.ts";
import { runStage, runTestFlow, testRegistry } from "../../testing.ts";
import { run, testContext, testEnv } from "../_outcome.ts";
import { withFakeChat } from "../adapters/chat/_fake_chat.ts";

const payloads = (): RawItem[] =>
  Array.from({ length: 12 }, (_, i) => ({
    title: `Deno ships release ${i % 6} with faster startup and new APIs`,
    url: `https://example.com/news/${i % 10}?utm_source=feed`,
    text: "The release notes list faster startup, a new permission model and fixes. ".repeat(3),
    author: "A. Writer",
    publishedAt: "2026-12-01T10:00:00Z",
    tags: ["deno", "release"],
    engagement: { score: i, comments: i * 2 },
  }));

/**
 * The built-ins say `leavesInputs`, so the flow hands them the batch's items
 * themselves (no copies): they must change none of them, which each is
 * checked for here on a batch holding exact and near duplicates.
 */
const builtins: [string, unknown][] = [
  ["validate", { require: ["title", "url"], spam: ["casino"] }],
  ["dedupe", { key: ["url"], near: { threshold: 0.8 } }],
  ["enrich", { steps: ["canonical-url", "domain", "word-count", "language", "keywords"] }],
  ["embed", { provider: "local", dimensions: 16 }],
  ["publish", [{ jsonl: { path: "leaves_inputs.jsonl" } }]],
];

/** A built-in stage's actor, made as a flow makes it. */
async function builtin(kind: string, config: unknown): Promise<Actor> {
  const registry = builtinRegistry();
  const spec = registry.stages.get(kind)!;
  assert.equal(spec.leavesInputs, true);
  return await spec.create(schemaOf(spec, registry).parse(config), { ...testEnv(), registry });
}

for (const [kind, config] of builtins) {
  Deno.test(`built-in ${kind} changes none of the items it is given`, async () => {
    const actor = await builtin(kind, config);
    await actor.open?.(testContext(kind));
    try {
      const batch = payloads().map((p) => envelope(p, "test"));
      const before = structuredClone(batch);
      const out = await run(actor, batch, kind);
      assert.ok(out.emitted.length + out.dropped.length + out.rejected.length > 0);
      assert.deepEqual(batch, before);
    } finally {
      await actor.close?.();
    }
  });
}

Deno.test("built-in llm changes none of the items it is given", async () => {
  await withFakeChat({ answer: () => ({ topic: "tech" }) }, async (server) => {
    const actor = await builtin("llm", {
      baseUrl: server.url,
      apiKey: "sk-test",
      model: "m",
      prompt: "The topic.",
      input: "{title}",
      schema: { type: "object", properties: { topic: { type: "string" } }, required: ["topic"] },
      into: "facts",
    });
    const batch = payloads().map((p) => envelope(p, "test"));
    const before = structuredClone(batch);
    const out = await run(actor, batch, "llm");
    assert.equal(out.emitted.length, 12);
    assert.deepEqual(batch, before);
    await actor.close?.();
  });
});

Deno.test("every stage the built-in registry holds says whether it leaves its inputs alone", () => {
  // step runs the user's module: held to account by the flow, so it must not say it.
  const said = [...builtinRegistry().stages.values()].map((s) => [s.kind, s.leavesInputs]);
  assert.deepEqual(said.filter(([, leaves]) => leaves !== true).map(([kind]) => kind), ["step"]);
});

Deno.test("copyItem copies plain objects and arrays to the bottom, and shares the rest", () => {
  const when = new Date(0);
  const item = envelope({ title: "t", tags: ["a"], nested: { list: [{ x: 1 }] }, when }, "s");
  const copy = copyItem(item);
  assert.deepEqual(copy, item);
  assert.notEqual(copy.payload, item.payload);
  assert.notEqual(copy.payload.nested.list[0], item.payload.nested.list[0]);
  assert.notEqual(copy.payload.when, when);
  assert.equal(copy.payload.when.getTime(), 0);
  const embedded = { ...item, vector: [0.5, 0.25] };
  assert.notEqual(copyItem(embedded).vector, embedded.vector);
  class Point {
    constructor(readonly x: number) {}
  }
  const point = new Point(1);
  assert.equal(
    copyItem(envelope({ at: point }, "s")).payload.at,
    point,
    "a class's instance is shared",
  );
  // A payload that holds itself is not copied (the budget runs out), not followed for ever.
  const cyclic: Record<string, unknown> = { title: "loop" };
  cyclic.self = cyclic;
  const looped = envelope(cyclic, "s");
  assert.equal(copyItem(looped), looped);
});

Deno.test("a stage registered in code that emits two items under one id for one input fails that input", async () => {
  // Sinks keep one item per id: one of the two was lost unsaid, as a step module's was.
  const twice: StageSpec = {
    kind: "twice",
    summary: "emits each item twice",
    schema: z.strictObject({}),
    create: (): Actor => ({
      handle(batch, out) {
        for (const item of batch) {
          out.emit({ ...item, payload: { ...item.payload, part: 1 } });
          out.emit({ ...item, payload: { ...item.payload, part: 2 } });
        }
      },
    }),
  };
  const registry = testRegistry().stage(twice);
  const flow = defineFlow({
    name: "twice",
    sources: { inbox: { kind: "memory" } },
    pipeline: [{ twice: { retries: 0 } }, { publish: [{ collect: { name: "out" } }] }],
  }, registry);
  const { published, deadLetters, report } = await runTestFlow(flow, {
    registry,
    items: [{ title: "a", url: "https://example.com/a" }],
  });
  assert.deepEqual(published.get("out"), []);
  assert.equal(report.published, 0);
  assert.equal(deadLetters.length, 1);
  assert.match(deadLetters[0].reason, /emitted 2 items with the id \w+ for one input/);
});

Deno.test("a stage of the user's own that emits an input and rejects it too fails that input", async () => {
  // It went to the sink and to dead letters both: a replay of the letter published it again.
  const both: StageSpec = {
    kind: "both",
    summary: "emits each item, and rejects the second",
    schema: z.strictObject({}),
    create: (): Actor => ({
      handle(batch, out) {
        for (const item of batch) {
          out.emit({ ...item, payload: { ...item.payload, checked: true } });
          if (item.payload.title === "b") out.reject(item, "looks wrong");
        }
      },
    }),
  };
  const registry = testRegistry().stage(both);
  const flow = defineFlow({
    name: "both",
    sources: { inbox: { kind: "memory" } },
    pipeline: [{ both: { retries: 0 } }, { publish: [{ collect: { name: "out" } }] }],
  }, registry);
  const { published, deadLetters } = await runTestFlow(flow, {
    registry,
    items: [{ title: "a", url: "https://example.com/a" }, {
      title: "b",
      url: "https://example.com/b",
    }],
  });
  assert.deepEqual(published.get("out")!.map((i) => i.payload.title), ["a"]);
  assert.equal(deadLetters.length, 1);
  assert.equal((deadLetters[0].item.payload as { title: string }).title, "b");
  assert.match(deadLetters[0].reason, /emitted an item for one input and rejected it too/);
});

Deno.test("an item too large or cyclic to copy is handed over as it is, and that is said once", async () => {
  const looped: Record<string, unknown> = { title: "loop", url: "https://example.com/l" };
  looped.self = looped;
  const pass: StageSpec = {
    kind: "pass",
    summary: "passes items on",
    schema: z.strictObject({}),
    create: (): Actor => ({
      handle(batch, out) {
        for (const item of batch) out.emit(item);
      },
    }),
  };
  const { emitted, logs } = await runStage(pass, [looped, looped]);
  assert.equal(emitted.length, 2);
  assert.equal(
    logs.filter((l) =>
      /pass: an item too large to copy .* was handed to the stage as it is/.test(l)
    )
      .length,
    1,
    logs.join("\n"),
  );
});
