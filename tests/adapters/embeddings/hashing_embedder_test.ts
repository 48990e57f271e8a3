import assert from "node:assert/strict";
import { join } from "node:path";
import { FIXTURES, fixtureTest } from "../../_fixtures_dir.ts";
import { HashingEmbedder } from "../../../adapters/embeddings/hashing_embedder.ts";

const signal = new AbortController().signal;

/** Titles of real Reddit posts: /r/all/new as the Reddit API returned it. */
async function redditTitles(): Promise<string[]> {
  const path = join(FIXTURES, "api", "reddit", "praw__r-all-new_page1.json");
  const listing = JSON.parse(await Deno.readTextFile(path));
  return listing.data.children.map((c: { data: { title: string } }) => c.data.title);
}

function title(titles: string[], start: string): string {
  const found = titles.find((t) => t.startsWith(start));
  assert.ok(found, `the fixture has a title starting with ${start}`);
  return found;
}

function dot(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function norm(v: number[]): number {
  return Math.sqrt(dot(v, v));
}

Deno.test("the same text gets the identical vector, from any embedder instance", async () => {
  const text = "Uber suspends self-driving cars service in California";
  const [a, b] = await new HashingEmbedder().embed([text, text], signal);
  const [c] = await new HashingEmbedder().embed([text], signal);
  assert.deepEqual(a, b);
  assert.deepEqual(a, c);
});

Deno.test("vectors have the configured dimension, 256 by default", async () => {
  const standard = new HashingEmbedder();
  assert.equal(standard.dimensions, 256);
  assert.equal(standard.model, "local-hashing-v1");
  const [v] = await standard.embed(["a title"], signal);
  assert.equal(v.length, 256);

  const small = new HashingEmbedder({ dimensions: 17 });
  const vectors = await small.embed(["one", "two words", "three words here"], signal);
  assert.deepEqual(vectors.map((x) => x.length), [17, 17, 17]);
  assert.throws(() => new HashingEmbedder({ dimensions: 0 }), /positive integer/);
});

fixtureTest("vectors have unit length, whatever the length of the text", async () => {
  const titles = await redditTitles();
  const vectors = await new HashingEmbedder().embed(
    [...titles.slice(0, 40), "x", titles.join(" ")],
    signal,
  );
  for (const v of vectors) assert.ok(Math.abs(norm(v) - 1) < 1e-9, `norm ${norm(v)}`);
});

/** The first 16 hex digits of the SHA-256 of a value's JSON. */
async function digest(value: unknown): Promise<string> {
  const json = new TextEncoder().encode(JSON.stringify(value));
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", json));
  return Array.from(hash.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

fixtureTest(
  "vectors stay those of local-hashing-v1, to the last bit, on texts of any length",
  async () => {
    // Digests of the vectors the Map-based embedder gave before its counts moved to typed arrays:
    // a change of features or of the order of sums shows here, and then needs a new model name.
    const titles = await redditTitles();
    const all = titles.join(" ");
    // Some 50,000 words: the counts table grows several times.
    const long = Array.from({ length: 40 }, (_, i) => titles.map((t) => `${t} ${i}`).join(". "));
    const plain = new HashingEmbedder(),
      tri = new HashingEmbedder({ dimensions: 64, charTrigrams: true });
    assert.equal(await digest(await plain.embed(titles, signal)), "d56b2497b87b34df");
    assert.equal(
      await digest(await plain.embed([all, long.join(" ")], signal)),
      "8acaa828790ff991",
    );
    assert.equal(
      await digest(await tri.embed([...titles, all, long.join(" ")], signal)),
      "62257760c116c0fc",
    );
  },
);

fixtureTest("near-duplicate titles are closer than unrelated ones", async () => {
  const titles = await redditTitles();
  const [dalai1, dalai2, tyt1, tyt2, mead, uber] = await new HashingEmbedder().embed([
    title(titles, "(SCMP) Mongolia pledges"),
    title(titles, "[World] - Mongolia pledges"),
    title(titles, "Corporate Propaganda Blinds Us To The Suffering Of Others - TYT"),
    title(titles, "Corporate Propaganda Blinds Us To The Suffering Of Others | The Young"),
    title(titles, "How to bottle sparkling mead?"),
    title(titles, "Uber suspends self-driving"),
  ], signal);
  const unrelated = [dot(dalai1, mead), dot(dalai1, uber), dot(tyt1, uber), dot(mead, uber)];
  for (const similar of [dot(dalai1, dalai2), dot(tyt1, tyt2)]) {
    assert.ok(similar > 0.7, `near-duplicates have cosine ${similar}`);
    for (const other of unrelated) assert.ok(similar > other + 0.5, `${similar} vs ${other}`);
  }
});

Deno.test("word order matters through bigrams, case does not", async () => {
  const [a, b, c] = await new HashingEmbedder().embed(
    ["Louisville defeats Kentucky", "Kentucky defeats Louisville", "LOUISVILLE DEFEATS KENTUCKY"],
    signal,
  );
  assert.deepEqual(a, c);
  const swapped = dot(a, b);
  assert.ok(swapped < 0.999 && swapped > 0.3, `same words in another order: ${swapped}`);
});

Deno.test("char trigrams bring inflections closer and name another model", async () => {
  const plain = new HashingEmbedder();
  const trigrams = new HashingEmbedder({ charTrigrams: true });
  assert.equal(trigrams.model, "local-hashing-v1+trigrams");
  const texts = ["suspends cars", "suspended car"];
  const [p1, p2] = await plain.embed(texts, signal);
  const [t1, t2] = await trigrams.embed(texts, signal);
  assert.ok(dot(t1, t2) > dot(p1, p2) + 0.2, `${dot(t1, t2)} vs ${dot(p1, p2)}`);
});

Deno.test("a text without words embeds as the zero vector, without NaN", async () => {
  const [empty, punctuation] = await new HashingEmbedder({ dimensions: 8 }).embed(
    ["", " .,;!? "],
    signal,
  );
  assert.deepEqual(empty, new Array(8).fill(0));
  assert.deepEqual(punctuation, new Array(8).fill(0));
});

Deno.test("an aborted signal rejects the call", async () => {
  const controller = new AbortController();
  controller.abort(new Error("shutting down"));
  await assert.rejects(new HashingEmbedder().embed(["x"], controller.signal), /shutting down/);
});
