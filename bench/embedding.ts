/**
 * The embedding benchmark: a flow whose Embedder (provider openai) calls an
 * endpoint this file serves on 127.0.0.1 with a fixed 100 ms latency, under
 * set rpm/tpm limits; items/s next to the most those limits allow,
 * min(rpm / 60 * size, tpm / 60 / tokens per item), once where requests bind
 * and once where tokens do. Tokens per item are the exact cl100k_base counts
 * of the inputs sent, which is also what the endpoint reports as usage.
 *
 *   deno run -A bench/embedding.ts        this section alone
 *   (bench/main.ts runs it as one of its sections)
 *
 * "steady" is the rate at which requests were let through: the items of
 * every request after the first, over the time from the first request's
 * arrival to the last one's. "wall" is all items over first arrival to the
 * end of the run: it also counts the first request, which any limiter lets
 * go at once, and the last reply's latency, so over a few seconds it sits a
 * little off the limit on either side.
 */
import { z } from "zod";
import { countTokens } from "gpt-tokenizer/encoding/cl100k_base";
import { builtinRegistry } from "../builtins.ts";
import { defineFlow } from "../config/define_flow.ts";
import { MemoryDeadLetters } from "../engine/dead_letters.ts";
import { memoryLogger } from "../engine/log.ts";
import type { RawItem } from "../engine/item.ts";
import type { SourceSpec } from "../engine/registry.ts";
import { runFlow } from "../engine/run_flow.ts";

const LATENCY = 100;
const DIMENSIONS = 64;

export interface EmbeddingCase {
  label: string;
  rpm: number;
  tpm: number;
  size: number;
  /** Requests to send; the run lasts about this many request intervals. */
  requests: number;
  /** Words of text per item (about 1.3 tokens each). */
  words: number;
}

export interface EmbeddingFigure {
  items: number;
  tokensPerItem: number;
  limit: number;
  steady: number;
  wall: number;
  requests: number;
}

const WORDS = ("stream window batch vector embedding redis channel source sink actor " +
  "token minute request latency budget engine flow item").split(" ");

function itemsOf(count: number, words: number): RawItem[] {
  return Array.from({ length: count }, (_, i) => ({
    title: `item ${i}`,
    url: `https://example.com/${i}`,
    text: Array.from({ length: words }, (_, w) => WORDS[(i * 7 + w * 3) % WORDS.length]).join(" "),
  }));
}

/** An OpenAI-shaped endpoint: answers after LATENCY ms, records when each request came. */
function serve() {
  const arrivals: { at: number; inputs: number; tokens: number }[] = [];
  const vector = Array.from({ length: DIMENSIONS }, (_, d) => (d === 0 ? 1 : 0));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const at = performance.now();
    const body = await req.json() as { input: string[] };
    const tokens = body.input.reduce((n, t) => n + countTokens(t), 0);
    arrivals.push({ at, inputs: body.input.length, tokens });
    await new Promise((r) => setTimeout(r, LATENCY));
    return Response.json({
      object: "list",
      data: body.input.map((_, index) => ({ object: "embedding", index, embedding: vector })),
      model: "text-embedding-3-small",
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/v1`,
    arrivals,
    close: () => server.shutdown(),
  };
}

export async function runEmbeddingCase(c: EmbeddingCase): Promise<EmbeddingFigure> {
  const count = c.size * c.requests;
  const items = itemsOf(count, c.words);
  const source: SourceSpec<Record<string, never>> = {
    kind: "bench-items",
    summary: "the benchmark's items",
    schema: z.strictObject({}),
    create: () => ({
      async *read() {
        for (let i = 0; i < items.length; i += 1000) yield items.slice(i, i + 1000);
      },
    }),
  };
  const registry = builtinRegistry().source(source);
  const endpoint = serve();
  try {
    const flow = defineFlow({
      name: "bench-embedding",
      output: await Deno.makeTempDir({ prefix: "millrace-bench-embed-" }),
      sources: { items: { kind: "bench-items" } },
      pipeline: [{
        embed: {
          provider: "openai",
          model: "text-embedding-3-small",
          baseUrl: endpoint.url,
          apiKey: "bench",
          dimensions: DIMENSIONS,
          rpm: c.rpm,
          tpm: c.tpm,
          cache: false,
          batch: { size: c.size, maxTokens: 300_000, maxWait: "5s" },
          concurrency: 8,
        },
      }],
    }, registry);
    const report = await runFlow(flow, {
      registry,
      deadLetters: new MemoryDeadLetters(),
      log: memoryLogger(),
    });
    const end = performance.now();
    if (report.published !== count) throw new Error(`${report.published} of ${count} embedded`);
    // The first arrival is the start-up dimension check: the batches come after it.
    const batches = endpoint.arrivals.slice(1);
    const first = batches[0], last = batches[batches.length - 1];
    const sent = batches.reduce((n, a) => n + a.inputs, 0);
    const tokens = batches.reduce((n, a) => n + a.tokens, 0);
    const tokensPerItem = tokens / sent;
    return {
      items: sent,
      tokensPerItem,
      limit: Math.min((c.rpm / 60) * c.size, c.tpm / 60 / tokensPerItem),
      steady: (sent - first.inputs) / ((last.at - first.at) / 1000),
      wall: sent / ((end - first.at) / 1000),
      requests: batches.length,
    };
  } finally {
    await endpoint.close();
  }
}

export const EMBEDDING_CASES: EmbeddingCase[] = [
  { label: "requests bind", rpm: 600, tpm: 1_000_000, size: 256, requests: 31, words: 0 },
  { label: "tokens bind", rpm: 600, tpm: 1_000_000, size: 32, requests: 18, words: 80 },
];

export async function printEmbeddingSection(): Promise<void> {
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  console.log(
    `## embedding throughput against a local endpoint (${LATENCY} ms latency), rpm/tpm limits`,
  );
  for (const c of EMBEDDING_CASES) {
    const f = await runEmbeddingCase(c);
    const pct = (x: number) => `${(100 * x / f.limit).toFixed(1)}%`;
    console.log(
      `${c.label}: rpm ${fmt(c.rpm)}, tpm ${fmt(c.tpm)}, size ${c.size}, ` +
        `${f.tokensPerItem.toFixed(1)} tokens/item, ${fmt(f.items)} items in ${f.requests} calls`,
    );
    console.log(`  limit ${fmt(f.limit)} items/s = min(rpm/60 x size, tpm/60 / tokens per item)`);
    console.log(`  steady ${fmt(f.steady)} items/s (${pct(f.steady)} of the limit)`);
    console.log(
      `  wall   ${fmt(f.wall)} items/s (${pct(f.wall)}, first call and last reply included)`,
    );
  }
  console.log();
}

if (import.meta.main) await printEmbeddingSection();
