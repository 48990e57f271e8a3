import assert from "node:assert/strict";
import type { z } from "zod";
import { resolve } from "node:path";
import { defineFlow } from "../../config/define_flow.ts";
import type { FlowDefinition, flowSchema } from "../../config/flow_schema.ts";
import { FlowError } from "../../engine/flow_error.ts";
import { fakeRegistry } from "./fake_registry.ts";

const registry = fakeRegistry();

function flowError(run: () => unknown): FlowError {
  try {
    run();
  } catch (e) {
    if (e instanceof FlowError) return e;
    throw e;
  }
  assert.fail("expected a FlowError");
}

Deno.test("defineFlow checks a flow built in code and fills the same defaults as a file", () => {
  const flow = defineFlow(
    {
      name: "demo",
      sources: { hn: { kind: "json", every: "5m" } },
      pipeline: [
        { validate: { require: ["title"] } },
        { dedupe: { ttl: 60_000 } },
        { embed: null },
        { publish: [{ vector: { collection: "c" } }] },
      ],
    },
    registry,
    { baseDir: "/srv" },
  );
  assert.equal(flow.baseDir, "/srv");
  assert.equal(flow.outDir, resolve("out/demo"));
  assert.equal(flow.capacity, 1024);
  assert.deepEqual(flow.sources, [
    { name: "hn", kind: "json", every: 300_000, priority: "normal", config: {} },
  ]);
  assert.deepEqual(flow.pipeline.map((s) => [s.id, s.concurrency, s.retries]), [
    ["validate", 1, 3],
    ["dedupe", 1, 3],
    ["embed", 1, 3],
    ["publish", 1, 3],
  ]);
  assert.deepEqual(flow.pipeline[1].config, { key: ["url"], ttl: 60_000 });
});

Deno.test("defineFlow takes the name from its options when the input has none", () => {
  const flow = defineFlow({ sources: { a: { kind: "json" } }, pipeline: ["validate"] }, registry, {
    name: "from-code",
  });
  assert.equal(flow.name, "from-code");
  assert.equal(flow.baseDir, Deno.cwd());
});

Deno.test("defineFlow errors name the flow and the field's path, with no line", () => {
  const e = flowError(() =>
    defineFlow({
      name: "demo",
      sources: { hn: { kind: "jsn" } },
      pipeline: [{ dedupe: { ttl: "24 hours", treshold: 1 } }],
    }, registry)
  );
  assert.equal(
    e.message,
    'flow "demo": sources.hn.kind: unknown source kind "jsn"; did you mean "json"?\n' +
      'flow "demo": pipeline[0].dedupe.ttl: expected a duration such as 500ms, 2s, 5m or 24h, ' +
      'got "24 hours"\n' +
      'flow "demo": pipeline[0].dedupe.treshold: unknown field "treshold"; valid fields: ' +
      "key, ttl, near, concurrency, retries, id, batchTimeout, workers",
  );
  assert.equal(e.line, undefined);
  assert.equal(e.column, undefined);
  assert.equal(e.path, "sources.hn.kind");
  assert.deepEqual(e.problems.map((p) => p.path), [
    "sources.hn.kind",
    "pipeline[0].dedupe.ttl",
    "pipeline[0].dedupe.treshold",
  ]);
});

Deno.test("defineFlow runs the same stage-order check as a flow file", () => {
  const e = flowError(() =>
    defineFlow({
      name: "demo",
      sources: { hn: { kind: "json" } },
      pipeline: ["validate", { publish: [{ vector: { collection: "c" } }] }],
    }, registry)
  );
  assert.equal(
    e.message,
    'flow "demo": pipeline[1].publish: publish needs embedded items; ' +
      "add a stage that provides it before it (provided by: embed)",
  );
});

Deno.test("defineFlow refuses what is not a flow, and redis durability with no URL", () => {
  assert.equal(
    // Untyped input (JSON read at run time) is checked all the same.
    flowError(() => defineFlow([] as never, registry)).message,
    "flow: a flow is a map with name, sources and pipeline; got an empty list",
  );
  const e = flowError(() =>
    defineFlow({
      name: "demo",
      durability: "redis",
      sources: { hn: { kind: "json" } },
      pipeline: ["validate"],
    }, registry)
  );
  assert.equal(
    e.message,
    'flow "demo": durability: durability is redis but no redis URL is given; ' +
      "add redis: ${REDIS_URL:-redis://127.0.0.1:6379}",
  );
});

Deno.test("defineFlow reports a stage that is not a one-key map", () => {
  const e = flowError(() =>
    defineFlow({
      name: "demo",
      sources: { hn: { kind: "json" } },
      pipeline: [{}, 3],
    }, registry)
  );
  assert.deepEqual(e.problems.map((p) => `${p.path}: ${p.message}`), [
    "pipeline[0]: a stage is a map with one key, its kind (e.g. - dedupe: { key: [url] }); " +
    "got an empty map",
    "pipeline[1]: expected a stage such as - dedupe: { key: [url] }, got 3",
  ]);
});

Deno.test("defineFlow's input is typed at the top level: a misspelt field does not compile, and is refused at run time", () => {
  const e = flowError(() =>
    defineFlow({
      name: "typo",
      sources: { g: { kind: "generator", count: 1 } },
      // @ts-expect-error `pipline` is not a field of a flow (an `unknown` input would take it)
      pipline: [{ validate: {} }],
    }, registry)
  );
  assert.match(e.message, /pipline: unknown field "pipline"; did you mean "pipeline"\?/);
});

// FlowDefinition is written out for its documentation: it must name the fields flowSchema takes.
type Keys<T> = keyof T & string;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameFields: Same<Keys<FlowDefinition>, Keys<z.input<typeof flowSchema>>> = true;
void sameFields;
