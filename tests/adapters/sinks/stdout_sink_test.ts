import { z } from "zod";
import { runTestFlow, testRegistry } from "../../../testing.ts";
import { isRetryable } from "../../../engine/errors.ts";
import assert from "node:assert/strict";
import { StdoutClosedError, StdoutSink, stdoutSink } from "../../../adapters/sinks/stdout_sink.ts";
import { endingError } from "../../../engine/errors.ts";
import { type Envelope, envelope, type RawItem } from "../../../engine/item.ts";
import { Registry, schemaOf } from "../../../engine/registry.ts";

const signal = new AbortController().signal;

function item(n: number): Envelope<RawItem> {
  const e = envelope({ title: `Title ${n}`, url: `https://example.com/${n}` }, "test", n);
  return { ...e, vector: [1, 0] };
}

function capture() {
  const chunks: string[] = [];
  const out = {
    write(p: Uint8Array) {
      chunks.push(new TextDecoder().decode(p));
      return Promise.resolve(p.length);
    },
  };
  return { chunks, out };
}

Deno.test("the stdout sink prints each item once per process, one write per batch", async () => {
  const { chunks, out } = capture();
  const config = schemaOf(stdoutSink, new Registry()).parse({});
  const sink = new StdoutSink(config, out);
  await sink.write([item(1), item(2)], signal);
  await sink.write([item(2), item(3)], signal);
  await sink.write([item(1)], signal);
  assert.equal(chunks.length, 2, "a batch of known items prints nothing");
  const printed = chunks.join("").trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(
    printed,
    [1, 2, 3].map((n) => {
      const e = item(n);
      return { id: e.id, source: "test", seenAt: n, payload: e.payload };
    }),
    "no vectors unless asked",
  );
});

Deno.test("the stdout sink prints vectors and picks fields when asked", async () => {
  const { chunks, out } = capture();
  const config = schemaOf(stdoutSink, new Registry()).parse({ fields: ["url"], vectors: true });
  await new StdoutSink(config, out).write([item(1)], signal);
  assert.deepEqual(JSON.parse(chunks[0]), {
    id: item(1).id,
    source: "test",
    seenAt: 1,
    payload: { url: "https://example.com/1" },
    vector: [1, 0],
  });
});

Deno.test("the stdout sink prints a deleted item's tombstone once", async () => {
  const { chunks, out } = capture();
  const sink = new StdoutSink(schemaOf(stdoutSink, new Registry()).parse({}), out);
  const e = item(1);
  const deleted = { ...e, payload: { url: e.payload.url, deleted: true } };
  await sink.write([e, deleted], signal);
  await sink.write([deleted], signal);
  const printed = chunks.join("").trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(printed, [
    { id: e.id, source: "test", seenAt: 1, payload: e.payload },
    { id: e.id, deleted: true, source: "test", seenAt: 1 },
  ]);
});

Deno.test("a closed stdout (BrokenPipe) is a StdoutClosedError that ends the run, and stays closed", async () => {
  let writes = 0;
  const out = {
    write(): Promise<number> {
      writes++;
      return Promise.reject(new Deno.errors.BrokenPipe("Broken pipe (os error 32)"));
    },
  };
  const sink = new StdoutSink(schemaOf(stdoutSink, new Registry()).parse({}), out);
  const first = await sink.write([item(1)], signal).catch((e) => e);
  assert.ok(first instanceof StdoutClosedError, String(first));
  assert.ok(endingError(new Error("publish: cannot write", { cause: first })), "found as a cause");
  await assert.rejects(sink.write([item(2)], signal), StdoutClosedError);
  assert.equal(writes, 1, "no write once stdout is known closed");
});

Deno.test("a batch holding an item JSON cannot encode prints nothing, and its other items print when retried", async () => {
  const { chunks, out } = capture();
  const sink = new StdoutSink(schemaOf(stdoutSink, new Registry()).parse({}), out);
  const big = { ...item(2), payload: { ...item(2).payload, views: 10n ** 30n } };
  await assert.rejects(
    sink.write([item(1), big, item(3)], signal),
    (error) =>
      isRetryable(error) === false && /cannot be written as JSON: .*BigInt/.test(String(error)),
  );
  await sink.write([item(1), item(3)], signal);
  const printed = chunks.join("").trimEnd().split("\n").map((l) => JSON.parse(l).id);
  assert.deepEqual(printed, [item(1).id, item(3).id]);
});

Deno.test("fields apply to merge updates too: none of the merged fields kept, no update line", async () => {
  const update = (fields?: string[]) => {
    const { chunks, out } = capture();
    const config = schemaOf(stdoutSink, new Registry()).parse(fields ? { fields } : {});
    const story = item(1);
    const merged = {
      sources: [{ source: "a", url: "https://example.com/1", seenAt: "2026-01-01T00:00:00.000Z" }],
      engagement: { score: 3 },
      lastSeenAt: "2026-01-01T00:00:00.000Z",
      revision: 2,
    };
    const sink = new StdoutSink(config, out);
    return sink.write([story, { ...story, update: true, payload: merged as never }], signal)
      .then(() => chunks.join("").trimEnd().split("\n").map((l) => JSON.parse(l)));
  };
  // Before: `fields: [title]` printed the update line whole, sources and all.
  const titles = await update(["title"]);
  assert.deepEqual(titles.map((l) => [l.update ?? false, l.payload]), [[false, {
    title: "Title 1",
  }]]);
  const revisions = await update(["title", "revision"]);
  assert.deepEqual(revisions.map((l) => l.payload), [{ title: "Title 1" }, { revision: 2 }]);
  assert.equal((await update()).length, 2, "without fields, the update line is whole");
});

Deno.test("a sink built again for the same flow and stream (a --watch swap) does not print its items twice", async () => {
  // --watch swaps in a new flow, and a new sink, whose sources read again from the start: each
  // item was printed again, with the same id.
  const { chunks, out } = capture();
  const config = schemaOf(stdoutSink, new Registry()).parse({});
  await new StdoutSink(config, out, "ticker").write([item(1), item(2)], signal);
  await new StdoutSink(config, out, "ticker").write([item(1), item(2), item(3)], signal);
  // Another flow of the same process prints its own items, whatever their ids.
  await new StdoutSink(config, out, "other").write([item(1)], signal);
  const ids = chunks.join("").trimEnd().split("\n").map((l) => JSON.parse(l).id);
  assert.deepEqual(ids, [item(1).id, item(2).id, item(3).id, item(1).id]);
  // A second sink of the same flow printing other fields prints each item too.
  chunks.length = 0;
  const titles = schemaOf(stdoutSink, new Registry()).parse({ fields: ["title"] });
  await new StdoutSink(titles, out, "ticker").write([item(1)], signal);
  assert.equal(chunks.length, 1);
});

Deno.test("stdout sinks alike in two publish stages each print every item: a sink is known by its stage", async () => {
  // `publish[stdout] -> enrich -> publish[stdout]` printed each item once, the enriched copy
  // never (a9d7a5c keyed a sink by its flow and fields alone).
  const seen: (string | undefined)[] = [];
  const registry = testRegistry().sink({
    kind: "spy",
    summary: "records the stage it is built for",
    schema: z.object({}),
    create: (_config, env) => {
      seen.push(env.stage);
      return { write: () => Promise.resolve() };
    },
  });
  await runTestFlow(
    "name: twice\nsources: { inbox: { kind: memory } }\npipeline:\n" +
      "  - publish: [ { spy: {} } ]\n  - publish: [ { spy: {} } ]\n",
    { registry, items: [{ title: "Hello there", url: "https://example.com/a" }] },
  );
  assert.deepEqual(seen, ["publish", "publish#2"]);
  const { chunks, out } = capture();
  const config = schemaOf(stdoutSink, new Registry()).parse({});
  await new StdoutSink(config, out, "twice publish").write([item(1)], signal);
  await new StdoutSink(config, out, "twice publish#2").write([item(1)], signal);
  assert.equal(chunks.length, 2);
});
