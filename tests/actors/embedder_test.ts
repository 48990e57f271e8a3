import assert from "node:assert/strict";
import { collector as sharedCollector } from "../_outcome.ts";
import { parse as parseYaml } from "yaml";
import { createEmbedder, type EmbedConfig, embedStage } from "../../actors/embedder.ts";
import type { EmbeddingClient } from "../../adapters/embeddings/embedding_client.ts";
import { HashingEmbedder } from "../../adapters/embeddings/hashing_embedder.ts";
import type { StageContext } from "../../engine/actor.ts";
import { type Envelope, envelope, type RawItem } from "../../engine/item.ts";
import { memoryLogger } from "../../engine/log.ts";
import { type BuildEnv, Registry, schemaOf } from "../../engine/registry.ts";

const collector = () => sharedCollector<RawItem>();

const registry = new Registry().stage(embedStage);
const env: BuildEnv = { flow: "t", baseDir: ".", outDir: ".", log: memoryLogger(), registry };

function ctx(signal = new AbortController().signal): StageContext {
  return { flow: "t", stage: "embed", signal, log: memoryLogger() };
}

function config(raw: unknown = {}): EmbedConfig {
  return schemaOf(embedStage, registry).parse(raw);
}

function items(n: number): Envelope<RawItem>[] {
  return Array.from(
    { length: n },
    (_, i) =>
      envelope({ title: `Title ${i}`, url: `https://example.com/${i}`, text: `Body ${i}` }, "t"),
  );
}

/** A client that records every call and answers with vectors of its own choosing. */
function fakeClient(dimensions: number, answer?: (inputs: string[]) => number[][]) {
  const calls: { inputs: string[]; signal: AbortSignal }[] = [];
  const client: EmbeddingClient = {
    model: "fake",
    dimensions,
    embed(inputs, signal) {
      calls.push({ inputs, signal });
      const vectors = answer?.(inputs) ??
        inputs.map((_, i) =>
          Array.from({ length: dimensions }, (_, d) => calls.length * 1000 + i + d)
        );
      return Promise.resolve(vectors);
    },
  };
  return { client, calls };
}

function chunks<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

Deno.test("the embedder calls the client once per batch of window size", async () => {
  for (const [n, size] of [[1000, 256], [256, 256], [7, 3], [1, 256]]) {
    const cfg = config({ batch: { size } });
    const { client, calls } = fakeClient(4);
    const actor = createEmbedder(client, cfg);
    const { out, emitted } = collector();
    const input = items(n);
    for (const batch of chunks(input, windowOf(cfg).size)) {
      await actor.handle(batch, out, ctx());
    }
    assert.equal(calls.length, Math.ceil(n / size), `${n} items in batches of ${size}`);
    assert.equal(emitted.length, n);
    assert.deepEqual(emitted.map((e) => e.id), input.map((e) => e.id), "order is kept");
  }
});

Deno.test("each emitted item carries its own vector and an unchanged payload", async () => {
  const { client, calls } = fakeClient(3);
  const actor = createEmbedder(client, config({ dimensions: 3 }));
  const { out, emitted, dropped, rejected } = collector();
  const input = items(3);
  const signal = new AbortController().signal;
  await actor.handle(input, out, ctx(signal));

  assert.equal(calls[0].signal, signal, "the stage's signal reaches the client");
  assert.deepEqual(emitted.map((e) => e.vector), [[1000, 1001, 1002], [1001, 1002, 1003], [
    1002,
    1003,
    1004,
  ]]);
  for (let i = 0; i < input.length; i++) {
    assert.notEqual(emitted[i], input[i], "a new envelope");
    assert.equal(input[i].vector, undefined, "the input envelope is not touched");
    assert.equal(emitted[i].payload, input[i].payload, "the payload is passed as it is");
    assert.deepEqual({ ...emitted[i], vector: undefined }, { ...input[i], vector: undefined });
  }
  assert.equal(dropped.length + rejected.length, 0);
});

Deno.test("a reply with the wrong number of vectors throws and emits nothing", async () => {
  const { client } = fakeClient(2, (inputs) => inputs.slice(1).map(() => [0, 1]));
  const actor = createEmbedder(client, config());
  const { out, emitted } = collector();
  await assert.rejects(
    Promise.resolve(actor.handle(items(4), out, ctx())),
    /t\/embed: fake returned 3 vectors for 4 inputs/,
  );
  assert.equal(emitted.length, 0);
});

Deno.test("a vector of the wrong length throws and emits nothing", async () => {
  const { client } = fakeClient(2, (inputs) => inputs.map((_, i) => i === 1 ? [0] : [0, 1]));
  const actor = createEmbedder(client, config());
  const { out, emitted } = collector();
  await assert.rejects(
    Promise.resolve(actor.handle(items(3), out, ctx())),
    /vector of length 1 for input 1, expected 2/,
  );
  assert.equal(emitted.length, 0);
});

Deno.test("inputs are rendered from the template, missing fields empty, long ones cut", async () => {
  const { client, calls } = fakeClient(1);
  const cfg = config({ input: "{title} | {tags} | {text}", maxInputChars: 20 });
  const actor = createEmbedder(client, cfg);
  const batch = [
    envelope({ title: "Short", tags: ["a", "b"] }, "t"),
    envelope({ title: "A title", text: "that is far too long to keep" }, "t"),
  ];
  await actor.handle(batch, collector().out, ctx());
  assert.deepEqual(calls[0].inputs, ["Short | a b | ", "A title |  | that is"]);

  const plain = fakeClient(1);
  await createEmbedder(plain.client, config()).handle(
    [envelope({ title: "Only a title", url: "u" }, "t")],
    collector().out,
    ctx(),
  );
  assert.deepEqual(plain.calls[0].inputs, ["Only a title\n"], 'the default is "{title}\\n{text}"');
});

Deno.test("the window holds size items, maxTokens of estimated tokens, and maxWait", () => {
  const defaults = windowOf(config());
  assert.equal(defaults.size, 256);
  assert.equal(defaults.maxWeight, 200_000);
  assert.equal(defaults.maxWait, 2_000);

  const cfg = config({
    input: "{text}",
    maxInputChars: 100,
    batch: { size: 10, maxTokens: 500, maxWait: "250ms" },
  });
  const window = windowOf(cfg);
  assert.deepEqual([window.size, window.maxWeight, window.maxWait], [10, 500, 250]);
  const weigh = (text: string) => window.weigh!(envelope({ text }, "t"));
  assert.equal(weigh(""), 0);
  assert.equal(weigh("abcd"), 1);
  assert.equal(weigh("abcde"), 2, "chars/4 rounded up");
  assert.equal(weigh("x".repeat(1000)), 25, "weighed as sent: cut to maxInputChars");
});

Deno.test("the config checks providers, templates and sizes", () => {
  const schema = schemaOf(embedStage, registry);
  const provider = schema.safeParse({ provider: "opneai" });
  assert.ok(!provider.success);
  assert.deepEqual(provider.error.issues.map((i) => i.path), [["provider"]]);
  assert.match(provider.error.issues[0].message, /unknown embedding provider "opneai"/);
  assert.match(provider.error.issues[0].message, /known providers: local/);

  const noField = schema.safeParse({ input: "constant text" });
  assert.ok(!noField.success);
  assert.match(noField.error.issues[0].message, /at least one payload field/);

  // A user:password in baseUrl went beside apiKey as a second Authorization and out in traces.
  const userinfo = schema.safeParse({
    provider: "openai",
    model: "m",
    apiKey: "k",
    baseUrl: "http://alice:pw456@127.0.0.1:9/v1",
  });
  assert.ok(!userinfo.success);
  assert.deepEqual(userinfo.error.issues.map((i) => i.path), [["baseUrl"]]);
  assert.match(userinfo.error.issues[0].message, /holds a user:password/);

  const typo = schema.safeParse({ batch: { sise: 10 } });
  assert.ok(!typo.success);
  assert.deepEqual(typo.error.issues.map((i) => [i.code, i.path]), [
    ["unrecognized_keys", ["batch"]],
  ]);
  assert.ok(!schema.safeParse({ dimensions: 0 }).success);
  assert.ok(!schema.safeParse({ batch: { maxWait: "soon" } }).success);
});

Deno.test("the documented YAML example builds a local embedder of its dimension", async () => {
  const [{ embed: raw }] = parseYaml(`
- embed:
    provider: local
    dimensions: 64
    input: "{title}\\n{text}"
    maxInputChars: 8000
    batch: { size: 256, maxTokens: 200000, maxWait: 2s }
`);
  const cfg = config(raw);
  assert.deepEqual(cfg, {
    provider: "local",
    dimensions: 64,
    input: "{title}\n{text}",
    maxInputChars: 8000,
    truncate: { maxTokens: 8191, policy: "truncate" },
    batch: { size: 256, maxTokens: 200_000, maxWait: 2_000 },
  });
  assert.deepEqual(embedStage.needs!(cfg), []);
  assert.deepEqual(embedStage.adds, ["embedded"]);

  const actor = await embedStage.create(cfg, env);
  const { out, emitted } = collector();
  const input = items(2);
  await actor.handle(input, out, ctx());
  const local = new HashingEmbedder({ dimensions: 64 });
  assert.deepEqual(emitted.map((e) => e.vector), [
    local.embedOne("Title 0\nBody 0"),
    local.embedOne("Title 1\nBody 1"),
  ]);
});

Deno.test("provider openai needs a model and a key, and at most 2048 inputs per call", () => {
  const schema = schemaOf(embedStage, registry);
  const bare = schema.safeParse({ provider: "openai" });
  assert.ok(!bare.success);
  assert.deepEqual(bare.error.issues.map((i) => [i.path, i.message]), [
    [["model"], "provider openai needs a model, e.g. model: text-embedding-3-small"],
    [
      ["apiKey"],
      "provider openai needs an apiKey, e.g. apiKey: ${OPENAI_API_KEY} " +
      "(a server without auth, such as Ollama, takes any value)",
    ],
  ]);
  const ok = { provider: "openai", model: "text-embedding-3-small", apiKey: "k" };
  const big = schema.safeParse({ ...ok, batch: { size: 4096 } });
  assert.ok(!big.success);
  assert.deepEqual(big.error.issues[0].path, ["batch", "size"]);
  assert.match(big.error.issues[0].message, /4096 is over the 2048 inputs/);
  assert.ok(schema.safeParse({ ...ok, batch: { size: 2048 } }).success);
  assert.ok(schema.safeParse({ batch: { size: 4096 } }).success, "the local embedder has no limit");

  const empty = schema.safeParse({ ...ok, apiKey: "" });
  assert.ok(!empty.success);
  assert.match(
    empty.error.issues[0].message,
    /apiKey is empty \(is its environment variable set\?\)/,
  );
  assert.ok(!schema.safeParse({ ...ok, baseUrl: "ftp://x" }).success);
  assert.ok(!schema.safeParse({ ...ok, truncate: { policy: "cut" } }).success);
});

Deno.test("fields of a remote provider on the local one are errors, not silently ignored", () => {
  const result = schemaOf(embedStage, registry).safeParse({ model: "m", rpm: 10 });
  assert.ok(!result.success);
  assert.deepEqual(result.error.issues.map((i) => [i.path, i.message]), [
    [["model"], "model is for provider openai; this stage uses provider local"],
    [["rpm"], "rpm is for provider openai; this stage uses provider local"],
  ]);
});

Deno.test("the documented openai YAML example parses to its fields", () => {
  const [{ embed: raw }] = parseYaml(`
- embed:
    provider: openai
    model: text-embedding-3-small
    apiKey: sk-from-env
    dimensions: 512
    rpm: 3000
    tpm: 1000000
    input: "{title}\\n{text}"
    truncate: { maxTokens: 8191, policy: chunk-average }
    batch: { size: 256, maxTokens: 200000, maxWait: 2s }
`);
  assert.deepEqual(config(raw), {
    provider: "openai",
    model: "text-embedding-3-small",
    apiKey: "sk-from-env",
    dimensions: 512,
    rpm: 3000,
    tpm: 1_000_000,
    input: "{title}\n{text}",
    truncate: { maxTokens: 8191, policy: "chunk-average" },
    batch: { size: 256, maxTokens: 200_000, maxWait: 2_000 },
  });
});

/** Items whose text is `n` characters of one letter each. */
const sized = (...lengths: number[]) =>
  lengths.map((n, i) => envelope({ title: `t${i}`, text: "abcdefgh"[i].repeat(n) }, "t"));

Deno.test("truncate: a long input is cut to maxTokens and the window weighs it so", async () => {
  const { client, calls } = fakeClient(2);
  const cfg = config({ input: "{text}", truncate: { maxTokens: 5, policy: "truncate" } });
  const actor = createEmbedder(client, cfg);
  const { out, emitted, rejected } = collector();
  const batch = sized(8, 40);
  await actor.handle(batch, out, ctx());
  assert.deepEqual(
    calls[0].inputs,
    ["a".repeat(8), "b".repeat(20)],
    "chars/4: 5 tokens = 20 chars",
  );
  assert.equal(emitted.length, 2);
  assert.equal(rejected.length, 0);
  const weigh = windowOf(cfg).weigh!;
  assert.deepEqual(batch.map(weigh), [2, 5]);
});

Deno.test("chunk-average: a long input is embedded in chunks whose vectors are averaged by tokens", async () => {
  const { client, calls } = fakeClient(
    2,
    (inputs) => inputs.map((t) => t.length === 20 ? [1, 0] : [0, 1]),
  );
  const cfg = config({ input: "{text}", truncate: { maxTokens: 5, policy: "chunk-average" } });
  const { out, emitted } = collector();
  const batch = sized(4, 44);
  await createEmbedder(client, cfg).handle(batch, out, ctx());
  assert.deepEqual(calls[0].inputs, ["aaaa", "b".repeat(20), "b".repeat(20), "bbbb"]);
  assert.deepEqual(emitted.map((e) => e.id), batch.map((e) => e.id));
  assert.deepEqual(emitted[0].vector, [0, 1], "a short input keeps its own vector");
  // Chunks of 5, 5 and 1 tokens: (5*[1,0] + 5*[1,0] + 1*[0,1]) / |..| = [10, 1] / sqrt(101).
  const [x, y] = emitted[1].vector!;
  assert.ok(Math.abs(x - 10 / Math.sqrt(101)) < 1e-12 && Math.abs(y - 1 / Math.sqrt(101)) < 1e-12);
  assert.deepEqual(batch.map(windowOf(cfg).weigh!), [1, 11], "weighed by all chunks");
});

Deno.test("reject: a long input goes to dead letters with its size, the rest are embedded", async () => {
  const { client, calls } = fakeClient(2);
  const cfg = config({ input: "{text}", truncate: { maxTokens: 5, policy: "reject" } });
  const c = collector();
  const batch = sized(4, 44, 20);
  await createEmbedder(client, cfg).handle(batch, c.out, ctx());
  assert.deepEqual(calls[0].inputs, ["aaaa", "c".repeat(20)]);
  assert.deepEqual(c.emitted.map((e) => e.id), [batch[0].id, batch[2].id]);
  assert.deepEqual(c.rejected.map((r) => [r.item.id, r.label]), [[
    batch[1].id,
    "too long",
  ]]);
  assert.equal(windowOf(cfg).weigh!(batch[1]), 0);

  const all = fakeClient(2);
  await createEmbedder(all.client, cfg).handle(sized(0, 30), collector().out, ctx());
  assert.equal(all.calls.length, 1);
  const none = fakeClient(2);
  const only = collector();
  await createEmbedder(none.client, cfg).handle(sized(30), only.out, ctx());
  assert.equal(none.calls.length, 0, "a batch with nothing left to embed makes no call");
  assert.equal(only.rejected.length, 1);
});

Deno.test("a deleted item passes on without a vector and costs no input", async () => {
  const { client, calls } = fakeClient(2);
  const cfg = config();
  const c = collector();
  const gone = envelope({ url: "https://example.com/gone", deleted: true }, "t");
  const batch = [items(1)[0], gone];
  await createEmbedder(client, cfg).handle(batch, c.out, ctx());
  assert.deepEqual(calls.map((call) => call.inputs.length), [1]);
  assert.deepEqual(c.emitted.map((e) => e.id), [batch[0].id, gone.id]);
  assert.equal(c.emitted[1], gone, "the tombstone as it came");
  assert.equal(c.emitted[1].vector, undefined);
  assert.equal(windowOf(cfg).weigh!(gone), 0);

  const only = fakeClient(2);
  await createEmbedder(only.client, cfg).handle([gone], collector().out, ctx());
  assert.equal(only.calls.length, 0);
});

/** The window an embed stage of this config puts in front of its actor. */
function windowOf(cfg: ReturnType<typeof config>) {
  return createEmbedder(fakeClient(4).client, cfg).window!;
}

Deno.test("a field of the input no item of a batch has is said once: a misspelt {titel}", async () => {
  const { client, calls } = fakeClient(4);
  const actor = createEmbedder(client, config({ input: "{titel}\n{text}", dimensions: 4 }));
  const c = ctx();
  const { out } = collector();
  await actor.handle(items(3), out, c);
  await actor.handle(items(3), out, c);
  // Before: the items were embedded from their text alone, without a word.
  assert.deepEqual(calls[0].inputs.map((t) => t.startsWith("\n")), [true, true, true]);
  const lines = (c.log as ReturnType<typeof memoryLogger>).lines;
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(
    lines[0],
    /t\/embed: no item of a batch of 3 has "titel", which the input's \{titel\} reads: it stands empty \(said once; check the field name\)/,
  );
  // Fields that are there say nothing.
  const quiet = ctx();
  await createEmbedder(client, config({ dimensions: 4 })).handle(items(3), out, quiet);
  assert.deepEqual((quiet.log as ReturnType<typeof memoryLogger>).lines, []);
  // Nor does a batch of deletes alone, which carry no text and are embedded for no one.
  const deletes = items(2).map((e) => ({ ...e, payload: { url: e.payload.url, deleted: true } }));
  const still = ctx();
  const embedder = createEmbedder(client, config({ dimensions: 4 }));
  await embedder.handle(deletes, out, still);
  await embedder.handle(items(1), out, still);
  assert.deepEqual((still.log as ReturnType<typeof memoryLogger>).lines, []);
});

Deno.test("the embed stage tells the stages after it its vectors' length and its own id", async () => {
  // A publish stage's dead letter of an item embedded before a change of dimensions names the
  // stage to replay it into: it said `--into embed` whatever the stage was called.
  const vectors: { dimensions?: number; stage?: string } = {};
  const actor = await embedStage.create(config({ provider: "local", dimensions: 8 }), {
    ...env,
    vectors,
  });
  const { out } = collector();
  await actor.handle(items(1), out, { ...ctx(), stage: "vectorize" });
  assert.deepEqual(vectors, { dimensions: 8, stage: "vectorize" });
});
