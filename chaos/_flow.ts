/**
 * The flow every chaos scenario runs: the demo's durable pipeline (validate,
 * dedupe, enrich, embed, publish to JSONL) over one scenario's own Redis,
 * with the pieces a scenario swaps in: the `numbered` test source instead of
 * the generator, a test stage (`poison`, `slow`), an OpenAI-compatible
 * embedder, a Postgres sink beside the JSONL one. Embed's window is
 * limited by tokens as well as items, so most of its batches end in the
 * middle of an entry: every fault also meets a step holding the rest of an
 * entry whose first part it committed.
 */
import { join } from "node:path";

/** Demo-like generated items (with duplicates, near duplicates and invalid ones). */
export interface GeneratorSource {
  kind: "generator";
  count: number;
  seed: number;
}

/** The test worker's numbered items; `poison` indexes make the `poison` stage throw or crash. */
export interface NumberedSource {
  kind: "numbered";
  count: number;
  poison?: number[];
}

export type SourceSpec = GeneratorSource | NumberedSource;

export interface FlowOptions {
  name: string;
  redisUrl: string;
  /** Output directory; the JSONL sink writes `items.jsonl` there. */
  dir: string;
  source: SourceSpec;
  /** Pipeline lines inserted after enrich, e.g. `- poison: {}`. */
  extraStages?: string[];
  /** Embedding over an OpenAI-compatible server instead of the local hashing embedder. */
  openai?: { baseUrl: string; timeout: string };
  /** A Postgres sink beside the JSONL one. */
  postgres?: { url: string; table: string; timeout: string };
  claimAfter?: string;
  maxBacklog?: number;
  /** `durable.fuse`: validate to enrich one step, embed and publish another; "all": one step. */
  fuse?: boolean | "all";
}

/** Where the JSONL sink of a flow written with these options publishes. */
export function publishedPath(dir: string): string {
  return join(dir, "items.jsonl");
}

/** The flow file's text. */
export function flowYaml(o: FlowOptions): string {
  const s = o.source;
  const source = s.kind === "generator"
    ? `{ kind: generator, count: ${s.count}, seed: ${s.seed}, batch: 200 }`
    : `{ kind: numbered, count: ${s.count}, batch: 100, poison: [${(s.poison ?? []).join(", ")}] }`;
  const embed = o.openai
    ? [
      "  - embed:",
      "      provider: openai",
      "      model: text-embedding-3-small",
      `      baseUrl: ${o.openai.baseUrl}`,
      "      apiKey: chaos-key",
      "      dimensions: 8",
      `      timeout: ${o.openai.timeout}`,
      "      maxRetries: 8",
      "      batch: { size: 100, maxTokens: 3000, maxWait: 100ms }",
    ]
    : [
      "  - embed:",
      "      provider: local",
      "      dimensions: 64",
      "      batch: { size: 200, maxTokens: 3000, maxWait: 100ms }",
    ];
  const sinks = ["      - jsonl: { path: items.jsonl, vectors: false }"];
  if (o.postgres) {
    sinks.push(
      `      - postgres: { url: "${o.postgres.url}", table: ${o.postgres.table}, ` +
        `vector: none, timeout: ${o.postgres.timeout}, maxConnections: 2 }`,
    );
  }
  return [
    `name: ${o.name}`,
    "durability: redis",
    `redis: ${o.redisUrl}`,
    `output: ${o.dir}`,
    "sources:",
    `  news: ${source}`,
    "pipeline:",
    "  - validate: { require: [title, url], title: { min: 5, max: 500 }, spam: [casino] }",
    // Numbered items' texts differ by one number, so each shares LSH bands
    // with every other: near-duplicate lookups grow with all items seen
    // (quadratic, and long Redis scripts that starve the source's lease).
    // Those scenarios test faults, not near-dedupe: exact keys only there.
    s.kind === "generator"
      ? "  - dedupe: { key: [url], near: { threshold: 0.8 } }"
      : "  - dedupe: { key: [url] }",
    "  - enrich: { steps: [canonical-url, domain, word-count, keywords] }",
    ...(o.extraStages ?? []).map((line) => `  ${line}`),
    ...embed,
    "  - publish:",
    "      sinks:",
    ...sinks,
    "      batch: { size: 200, maxWait: 100ms }",
    `durable: { claimAfter: ${o.claimAfter ?? "1s"}, maxBacklog: ${o.maxBacklog ?? 2000}, ` +
    `fuse: ${o.fuse ?? false} }`,
    "deadLetters: { maxDeliveries: 5 }",
    "",
  ].join("\n");
}
