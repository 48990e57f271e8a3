/**
 * One runtime, two kinds of edge (issue 7): every behaviour here is written
 * once and run on in-memory edges and on Redis Streams, through the public
 * API only (defineFlow, startFlow, the built-in registry plus the test-only
 * components of _conformance_registry.ts). A flow must not behave
 * differently because of where its items wait.
 */
import assert from "node:assert/strict";
import { startFakeOpenAI } from "../adapters/embeddings/_fake_openai.ts";
import { edgeTest, MODES, waitFor } from "./_conformance.ts";

const sorted = (keys: Iterable<string>) => [...keys].sort();
const recording = (batch: { size: number; maxWait: number }) => ({
  publish: { sinks: [{ recording: {} }], batch },
});
const keys = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i}`);
/** An embed stage on the fake OpenAI server at `baseUrl`, embedding each item's text. */
const embed = (baseUrl: string, batch: { size: number; maxTokens: number; maxWait: number }) => ({
  embed: {
    provider: "openai",
    model: "test-embed",
    apiKey: "k",
    baseUrl,
    dimensions: 8,
    cache: false,
    input: "{text}",
    batch,
  },
});

for (const mode of MODES) {
  edgeTest(mode, "window batches are exactly size, but for the last", {}, async (edge) => {
    const flow = edge.flow({
      sources: { n: { kind: "feed", count: 1000, batch: 100 } },
      // A maxWait far longer than reading the items takes: size cuts, and the
      // end of the items (a durable step, which cannot know of that end,
      // sends the last batch once maxWait has passed).
      pipeline: [recording({ size: 150, maxWait: 3_000 })],
    });
    await edge.run(flow);
    const sizes = edge.probe.writes.map((w) => w.length);
    assert.deepEqual(sizes.toSorted((a, b) => b - a), [150, 150, 150, 150, 150, 150, 100]);
    assert.deepEqual(sorted(edge.probe.published), sorted(keys("n", 1000)));
  });

  edgeTest(
    mode,
    "window batches never exceed maxTokens, but for one heavy item alone",
    {},
    async (edge) => {
      const api = startFakeOpenAI();
      try {
        // Item i weighs 10 × (1 + i % 4) tokens (4 characters each); n50 weighs 500.
        const flow = edge.flow({
          sources: {
            n: {
              kind: "feed",
              count: 200,
              batch: 10,
              textChars: 40,
              heavy: [50],
              heavyChars: 2000,
            },
          },
          pipeline: [embed(api.url, { size: 1000, maxTokens: 300, maxWait: 500 })],
        });
        const report = await edge.run(flow);
        assert.equal(report.published, 200);
        // The client's start-up probe is not a batch of ours: our inputs are all "x".
        const calls = api.hits.map((h) => h.input).filter((c) => c.every((t) => /^x+$/.test(t)));
        const tokens = (input: string[]) => input.reduce((n, t) => n + Math.ceil(t.length / 4), 0);
        const over = calls.filter((c) => tokens(c) > 300);
        assert.deepEqual(
          over.map((c) => c.length),
          [1],
          `only the heavy item goes over, alone; calls of ${calls.map(tokens).join(", ")} tokens`,
        );
        assert.equal(calls.flat().length, 200);
      } finally {
        await api.close();
      }
    },
  );

  edgeTest(
    mode,
    "a weight-limited window keeps items in the order they were read",
    {},
    async (edge) => {
      const api = startFakeOpenAI();
      try {
        // Entries of 10 items of 10 to 40 tokens: most batches of 300
        // tokens end in the middle of one. A durable step once put the rest
        // of that entry back at the end of its stream, behind the entries
        // read after it, where in memory it went on in order.
        const flow = edge.flow({
          sources: { n: { kind: "feed", count: 200, batch: 10, textChars: 40 } },
          pipeline: [
            embed(api.url, { size: 1000, maxTokens: 300, maxWait: 500 }),
            recording({ size: 1000, maxWait: 200 }),
          ],
        });
        const report = await edge.run(flow);
        assert.equal(report.published, 200);
        assert.deepEqual(edge.probe.published, keys("n", 200));
      } finally {
        await api.close();
      }
    },
  );

  edgeTest(
    mode,
    "window flushes after maxWait while the source is still open",
    {},
    async (edge) => {
      const flow = edge.flow({
        sources: { n: { kind: "feed", count: 10, hold: true } },
        pipeline: [recording({ size: 1000, maxWait: 50 })],
      });
      const running = await edge.start(flow);
      try {
        await waitFor("10 items published", () => edge.probe.published.length >= 10, 10_000);
        assert.ok(edge.probe.open.has("n"), "the source is still reading");
      } finally {
        running.stop();
        await running.done;
      }
      assert.deepEqual(sorted(edge.probe.published), sorted(keys("n", 10)));
    },
  );

  edgeTest(mode, "concurrency keeps that many batches in flight, never more", {}, async (edge) => {
    const flow = edge.flow({
      sources: { n: { kind: "feed", count: 200, batch: 10 } },
      // Each batch stays a while once four are in: a fifth let in would be counted.
      pipeline: [{ record: { gather: 4, gatherMs: 100, delayMs: 30, concurrency: 4 } }],
    });
    const report = await edge.run(flow);
    assert.equal(report.published, 200);
    assert.equal(edge.probe.maxInFlight, 4);
  });

  edgeTest(mode, "a high-priority source overtakes a normal backlog", {}, async (edge) => {
    const flow = edge.flow({
      sources: {
        bulk: { kind: "feed", tag: "n", count: 1000, batch: 10 },
        urgent: { kind: "feed", tag: "h", count: 10, batch: 10, after: "n", priority: "high" },
      },
      // The stage holds its first batch until both sources are done: the
      // whole normal backlog is waiting when the high items arrive.
      pipeline: [{ record: { after: "h" } }, recording({ size: 10, maxWait: 0 })],
    });
    await edge.run(flow);
    const published = edge.probe.published;
    assert.deepEqual(sorted(published), sorted([...keys("n", 1000), ...keys("h", 10)]));
    const lastHigh = Math.max(...keys("h", 10).map((k) => published.indexOf(k)));
    // Only what was already in hand when they came goes before them (10 to 30 here).
    assert.ok(lastHigh < 100, `high items published by position ${lastHigh} of 1010`);
  });

  edgeTest(
    mode,
    "a failing batch is split: only the bad item is dead-lettered",
    {},
    async (edge) => {
      const flow = edge.flow({
        sources: { n: { kind: "feed", count: 100, batch: 20 } },
        pipeline: [
          { explode: { bad: ["n37"], retries: 2 } },
          recording({ size: 100, maxWait: 50 }),
        ],
      });
      await edge.run(flow);
      const letters = await edge.deadLetters();
      assert.equal(letters.length, 1, JSON.stringify(letters));
      assert.equal(letters[0].key, "n37");
      assert.equal(letters[0].stage, "explode");
      assert.ok(letters[0].attempts > 2, `attempts ${letters[0].attempts}: the retries were spent`);
      assert.match(letters[0].reason, /bad item n37/);
      assert.deepEqual(
        sorted(edge.probe.published),
        sorted(keys("n", 100).filter((k) => k !== "n37")),
      );
    },
  );

  edgeTest(
    mode,
    "a batch that outlasts batchTimeout is split at once: only the item that hangs is dead-lettered",
    {},
    async (edge) => {
      // It held its batch, and the run, for ever without a word.
      const flow = edge.flow({
        sources: { n: { kind: "feed", count: 100, batch: 20 } },
        pipeline: [
          { explode: { hang: ["n37"], retries: 2, batchTimeout: 200 } },
          recording({ size: 100, maxWait: 50 }),
        ],
      });
      const report = await edge.run(flow);
      const letters = await edge.deadLetters();
      assert.deepEqual(letters.map((l) => [l.key, l.stage]), [["n37", "explode"]]);
      assert.match(
        letters[0].reason,
        /^failed: handle did not return within 200 ms \(the stage's batchTimeout\) on a batch of 1/,
      );
      assert.equal(report.stages[0].retries, 0, "not retried: a timeout is waited out once");
      assert.deepEqual(
        sorted(edge.probe.published),
        sorted(keys("n", 100).filter((k) => k !== "n37")),
      );
    },
  );

  edgeTest(
    mode,
    "a stage that changes its items in place: each try starts from them as they came",
    {},
    async (edge) => {
      // A retry and each half of a split are handed the items as they came, not as an
      // earlier try left them, and the dead letter holds the item as the stage was given it.
      const flow = edge.flow({
        sources: { n: { kind: "feed", count: 40, batch: 20 } },
        pipeline: [
          { explode: { bad: ["n7"], retries: 2, scribble: true } },
          recording({ size: 40, maxWait: 50 }),
        ],
      });
      await edge.run(flow);
      const letters = await edge.deadLetters();
      assert.deepEqual(letters.map((l) => [l.key, l.payload]), [[
        "n7",
        { key: "n7", title: "item n7", url: "https://example.com/n7", text: "" },
      ]]);
      const good = keys("n", 40).filter((k) => k !== "n7");
      assert.deepEqual(sorted(edge.probe.published), sorted(good));
      for (const key of good) {
        const { title, tags } = edge.probe.payloads.get(key) as { title: string; tags: string[] };
        assert.deepEqual({ title, tags }, { title: `item ${key}!`, tags: ["seen"] }, key);
      }
    },
  );

  edgeTest(mode, "dead letters carry stage, attempts and reason", {}, async (edge) => {
    const flow = edge.flow({
      sources: { n: { kind: "feed", count: 3, batch: 1 } },
      pipeline: [
        { validate: { require: ["title", "url"], spam: ["n1"] } },
        { explode: { id: "boom", bad: ["n2"], retries: 1 } },
        recording({ size: 10, maxWait: 50 }),
      ],
    });
    await edge.run(flow);
    const letters = (await edge.deadLetters()).sort((a, b) => a.key.localeCompare(b.key));
    assert.deepEqual(letters.map(({ key, stage, attempts }) => ({ key, stage, attempts })), [
      { key: "n1", stage: "validate", attempts: 0 },
      { key: "n2", stage: "boom", attempts: 2 },
    ]);
    assert.match(letters[0].reason, /spam/);
    assert.equal(letters[1].reason, "failed: bad item n2");
    assert.deepEqual(edge.probe.published, ["n0"]);
  });

  edgeTest(mode, "stop drains: every emitted item is settled once", {}, async (edge) => {
    const flow = edge.flow({
      sources: { n: { kind: "feed", count: 10, every: 5 } },
      pipeline: [
        { explode: { bad: ["n13", "n57"], retries: 0 } },
        { record: { delayMs: 1 } },
        recording({ size: 50, maxWait: 20 }),
      ],
    });
    const running = await edge.start(flow);
    try {
      await waitFor("100 items published", () => edge.probe.published.length >= 100, 20_000);
    } finally {
      running.stop();
      await running.done;
    }
    const emitted = edge.probe.emitted.get("n")!;
    const left = await edge.leftOnEdges();
    const letters = await edge.deadLetters();
    assert.equal(left.pending, 0, "no entry read and left unacknowledged");
    assert.deepEqual(
      sorted([...edge.probe.published, ...letters.map((l) => l.key), ...left.waiting]),
      sorted(emitted),
      "published, dead-lettered or still waiting on an edge: each emitted item exactly once",
    );
  });
}
