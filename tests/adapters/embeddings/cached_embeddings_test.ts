import assert from "node:assert/strict";
import { CachedEmbeddings } from "../../../adapters/embeddings/cached_embeddings.ts";
import type { EmbeddingClient } from "../../../adapters/embeddings/embedding_client.ts";
import { textKey, type VectorCache } from "../../../adapters/embeddings/vector_cache.ts";
import { memoryLogger } from "../../../engine/log.ts";

const signal = () => AbortSignal.timeout(5000);

/** A client that records what it is asked; vectors carry the text's length and a call number. */
function recording(dimensions = 2, answer?: (inputs: string[]) => number[][]) {
  const calls: string[][] = [];
  const client: EmbeddingClient = {
    model: "m",
    dimensions,
    embed(inputs) {
      calls.push(inputs);
      return Promise.resolve(answer?.(inputs) ?? inputs.map((t) => [t.length, calls.length / 10]));
    },
  };
  return { client, calls };
}

function mapCache() {
  const store = new Map<string, Float32Array>();
  const rounds = { get: 0, set: 0 };
  const cache: VectorCache = {
    getMany(keys) {
      rounds.get++;
      return Promise.resolve(keys.map((k) => store.get(k)));
    },
    setMany(entries) {
      rounds.set++;
      for (const [k, vec] of entries) store.set(k, vec);
      return Promise.resolve();
    },
  };
  return { cache, store, rounds };
}

Deno.test("only texts the cache lacks are sent, each once, and a second pass sends nothing", async () => {
  const { client, calls } = recording();
  const { cache, store, rounds } = mapCache();
  const cached = new CachedEmbeddings(client, cache);
  const first = await cached.embed(["aa", "bbb", "aa", "c"], signal());
  assert.deepEqual(calls, [["aa", "bbb", "c"]], "the duplicate is not paid for");
  assert.deepEqual(first, [[2, Math.fround(0.1)], [3, Math.fround(0.1)], [2, Math.fround(0.1)], [
    1,
    Math.fround(0.1),
  ]]);
  assert.deepEqual(rounds, { get: 1, set: 1 });
  assert.equal(store.size, 3);
  assert.deepEqual([cached.hits, cached.misses], [1, 3]);

  const again = await cached.embed(["c", "aa", "dddd"], signal());
  assert.deepEqual(calls[1], ["dddd"]);
  assert.deepEqual(again, [first[3], first[0], [4, Math.fround(0.2)]]);
  assert.deepEqual(rounds, { get: 2, set: 2 });

  await cached.embed(["aa", "bbb"], signal());
  assert.equal(calls.length, 2, "all hits: no call at all");
  assert.deepEqual(rounds, { get: 3, set: 2 }, "and nothing to store");
});

Deno.test("a hit and a fresh vector of the same text are identical (both float32)", async () => {
  const exact = [0.1234567891234, -0.987654321];
  const { client } = recording(2, (inputs) => inputs.map(() => exact));
  const { cache } = mapCache();
  const cached = new CachedEmbeddings(client, cache);
  const [fresh] = await cached.embed(["t"], signal());
  const [hit] = await cached.embed(["t"], signal());
  assert.deepEqual(fresh, hit);
  assert.deepEqual(fresh, exact.map(Math.fround));
});

Deno.test("a malformed reply is not cached", async () => {
  let broken = true;
  const { client, calls } = recording(2, (inputs) => inputs.map(() => broken ? [1] : [1, 2]));
  const { cache, store } = mapCache();
  const cached = new CachedEmbeddings(client, cache);
  await assert.rejects(cached.embed(["a"], signal()), /vector of length 1 for input 0, expected 2/);
  assert.equal(store.size, 0);
  broken = false;
  assert.deepEqual(await cached.embed(["a"], signal()), [[1, 2]]);
  assert.equal(calls.length, 2);
});

Deno.test("a cache that fails to store still returns the paid-for vectors, with a warning", async () => {
  const { client } = recording();
  const { cache } = mapCache();
  cache.setMany = () => Promise.reject(new Error("READONLY replica"));
  const log = memoryLogger();
  const cached = new CachedEmbeddings(client, cache, log);
  assert.equal((await cached.embed(["a", "b"], signal())).length, 2);
  assert.match(log.lines[0], /^warn vector cache: storing 2 vectors failed .*READONLY replica/);
});

Deno.test("keys are the SHA-256 of the exact text", async () => {
  const { client } = recording();
  const { cache, store } = mapCache();
  await new CachedEmbeddings(client, cache).embed(["x"], signal());
  assert.deepEqual([...store.keys()], [textKey("x")]);
});
