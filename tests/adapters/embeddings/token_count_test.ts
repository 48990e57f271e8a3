import assert from "node:assert/strict";
import {
  charsPerToken,
  encodingFor,
  loadTokenCounter,
} from "../../../adapters/embeddings/token_count.ts";

const STORY =
  "Uber suspends self-driving cars in San Francisco after regulators revoke registrations";

Deno.test("OpenAI's embedding models are counted exactly in cl100k_base", async () => {
  const counter = await loadTokenCounter("text-embedding-3-small");
  assert.equal(counter.encoding, "cl100k_base");
  assert.equal(counter.count("hello world"), 2);
  assert.equal(counter.count("The quick brown fox jumps over the lazy dog."), 10);
  assert.equal(counter.count(STORY), 13);
  // Where chars/4 is far off: one token per character of Japanese here, not a quarter.
  assert.equal(counter.count("東京は日本の首都です。"), 11);
  assert.equal(charsPerToken.count("東京は日本の首都です。"), 3);
  assert.equal(counter.within(STORY, 13), 13);
  assert.equal(counter.within(STORY, 12), undefined);
  assert.equal(counter.within("", 5), 0);
});

Deno.test("models are matched by name, Azure deployment names included; others are estimated", () => {
  assert.equal(encodingFor("text-embedding-3-large"), "cl100k_base");
  assert.equal(encodingFor("text-embedding-ada-002"), "cl100k_base");
  assert.equal(encodingFor("prod-text-embedding-3-small-eu"), "cl100k_base");
  assert.equal(encodingFor("nomic-embed-text"), undefined);
  assert.equal(encodingFor("BAAI/bge-small-en-v1.5"), undefined);
});

Deno.test("an unknown model gets chars/4, and no tokenizer is loaded for it", async () => {
  const counter = await loadTokenCounter("nomic-embed-text");
  assert.equal(counter, charsPerToken);
  assert.equal(counter.count("abcdefghi"), 3);
  assert.equal(counter.within("abcdefghi", 2), undefined);
  assert.equal(counter.truncate("abcdefghi", 2), "abcdefgh");
  assert.deepEqual(counter.split("abcdefghij", 1), [
    { text: "abcd", tokens: 1 },
    { text: "efgh", tokens: 1 },
    { text: "ij", tokens: 1 },
  ]);
});

Deno.test("truncate keeps the longest start within the limit and split loses nothing", async () => {
  const counter = await loadTokenCounter("text-embedding-3-small");
  const long = "Streams of items flow through windows into batches. ".repeat(50);
  assert.equal(counter.count(long), 451);
  const cut = counter.truncate(long, 20);
  assert.ok(long.startsWith(cut));
  assert.equal(counter.count(cut), 20);
  assert.equal(counter.truncate(STORY, 100), STORY, "a short text is left alone");

  const pieces = counter.split(long, 100);
  assert.deepEqual(pieces.map((p) => p.tokens), [100, 100, 100, 100, 51]);
  assert.equal(pieces.map((p) => p.text).join(""), long);
  for (const p of pieces) assert.ok(counter.count(p.text) <= 101, "each piece is about its count");
});

Deno.test("counting 2,000 inputs of 500 characters gives each its tokens", async () => {
  const counter = await loadTokenCounter("text-embedding-3-small");
  const texts = Array.from({ length: 2000 }, (_, i) => `${STORY} ${i} `.repeat(6));
  let tokens = 0;
  for (const t of texts) tokens += counter.count(t);
  assert.ok(tokens > 2000 * 70);
});

Deno.test("chunks and truncations of text cut inside characters stay within the limit, encoded on their own", async () => {
  // Cut between the tokens of one emoji or ideograph, a piece decoded to a replacement
  // character that encodes to more tokens: 8 of 150 chunks at 8,191 came to 8,193, which
  // the API refuses, and the document was dead-lettered.
  const c = await loadTokenCounter("text-embedding-3-small");
  const words = [
    "the",
    "market",
    "🚀",
    "🔥",
    "📈",
    "😂",
    "👍🏽",
    "北京",
    "東京",
    "Ελλάδα",
    "naïve",
    "—",
    "…",
  ];
  let seed = 1;
  const next = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  let over = 0, pieces = 0, tokens = 0;
  for (let t = 0; t < 20; t++) {
    let text = "";
    while (text.length < 20_000) {
      text += words[Math.floor(next() * words.length)] + (next() < 0.7 ? " " : "");
    }
    tokens += c.count(text);
    for (const max of [61, 1000]) {
      for (const p of c.split(text, max)) {
        pieces++;
        if (c.count(p.text) > max || p.tokens > max) over++;
      }
      if (c.count(c.truncate(text, max)) > max) over++;
    }
  }
  assert.ok(pieces > tokens / 1000, "the texts were split");
  assert.equal(over, 0);
});
