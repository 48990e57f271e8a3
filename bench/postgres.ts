/**
 * The Postgres benchmark: rows/s through the postgres sink (one upsert per
 * batch) next to a raw postgres.js multi-row INSERT of the same rows into
 * the same kind of table, in the same run, batch by batch on one
 * connection each; then the sink again over the same rows (a replay: every
 * row conflicts and none changed). Each round writes to fresh tables in a
 * schema of its own, dropped at the end.
 *
 *   deno run -A bench/postgres.ts [--rows N] [--rounds R] [--batch B]   this section alone
 *   (bench/main.ts runs it as one of its sections)
 *
 * The server is BENCH_DATABASE_URL, else DATABASE_URL, else the local one
 * (postgres://postgres@127.0.0.1:5432/test); when it cannot be reached the
 * section prints why and is skipped.
 */
import { parseArgs } from "node:util";
import postgres from "postgres";
import { generateItems } from "../adapters/sources/generator_source.ts";
import { HashingEmbedder } from "../adapters/embeddings/hashing_embedder.ts";
import { maskUrl, PostgresSink, postgresSinkSchema } from "../adapters/sinks/postgres_sink.ts";
import { columnValue } from "../adapters/sinks/_pg_columns.ts";
import { type Envelope, envelope, type RawItem } from "../engine/item.ts";

const DIMENSIONS = 256;
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

export interface PostgresFigures {
  sink: number;
  raw: number;
  replay: number;
  vectors: string;
}

/** The server the benchmark writes to. */
export function benchDatabaseUrl(): string {
  return Deno.env.get("BENCH_DATABASE_URL") ?? Deno.env.get("DATABASE_URL") ??
    "postgres://postgres@127.0.0.1:5432/test";
}

/** Why the server cannot be used, or undefined when it can. */
async function unreachable(url: string): Promise<string | undefined> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message || String(error) : String(error);
  } finally {
    await sql.end({ timeout: 0 });
  }
}

/** Tech-news-like items with 256-dimension vectors of their titles and texts, made before timing. */
function benchItems(rows: number): Envelope<RawItem>[] {
  const { items } = generateItems({ count: rows, duplicates: 0, nearDuplicates: 0, invalid: 0 });
  const embedder = new HashingEmbedder({ dimensions: DIMENSIONS });
  const t0 = Date.UTC(2024, 0, 1);
  return items.map((payload, i) => ({
    ...envelope(payload, "bench", t0 + i),
    vector: embedder.embedOne(`${payload.title}\n${payload.text}`),
  }));
}

async function seconds(fn: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

/** One round: sink, raw insert and sink replay, each into tables of `schema`. */
async function round(
  url: string,
  schema: string,
  items: Envelope<RawItem>[],
  batch: number,
  n: number,
): Promise<PostgresFigures> {
  const signal = new AbortController().signal;
  const batches: Envelope<RawItem>[][] = [];
  for (let i = 0; i < items.length; i += batch) batches.push(items.slice(i, i + batch));

  const sink = new PostgresSink(
    postgresSinkSchema.parse({ url, table: `${schema}.sink_${n}`, maxConnections: 1 }),
  );
  await sink.open();
  let sinkSecs = 0;
  let replaySecs = 0;
  try {
    // The first write adds pgvector's column: not part of the timing.
    await sink.write(batches[0], signal);
    sinkSecs = await seconds(async () => {
      for (const b of batches.slice(1)) await sink.write(b, signal);
    });
    replaySecs = await seconds(async () => {
      for (const b of batches) await sink.write(b, signal);
    });
  } finally {
    await sink.close();
  }
  const pgvector = sink.table!.vector === "pgvector";

  // The raw side: the same columns, values and batches, plain multi-row INSERTs.
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const raw = sql`${sql(schema)}.${sql(`raw_${n}`)}`;
  let rawSecs = 0;
  try {
    await sql`create table ${raw} (like ${sql(schema)}.${sql(`sink_${n}`)} including all)`;
    const rows = items.map((e) => ({
      id: e.id,
      title: e.payload.title,
      url: e.payload.url,
      published_at: columnValue("timestamptz", e.payload.publishedAt),
      language: e.payload.language ?? null,
      payload: sql.json(e.payload as postgres.JSONValue),
      vector: pgvector ? `[${e.vector!.join(",")}]` : e.vector!,
      source: e.source,
      seen_at: new Date(e.seenAt).toISOString(),
    }));
    const columns = Object.keys(rows[0]) as (keyof typeof rows[0])[];
    await sql`insert into ${raw} ${sql(rows.slice(0, batch), columns)}`;
    rawSecs = await seconds(async () => {
      for (let i = batch; i < rows.length; i += batch) {
        await sql`insert into ${raw} ${sql(rows.slice(i, i + batch), columns)}`;
      }
    });
    const [{ a, b }] = await sql`
      select (select count(*) from ${sql(schema)}.${sql(`sink_${n}`)})::int as a,
             (select count(*) from ${raw})::int as b`;
    if (a !== items.length || b !== items.length) {
      throw new Error(`expected ${items.length} rows in each table, got ${a} and ${b}`);
    }
  } finally {
    await sql.end();
  }
  const timed = items.length - batches[0].length;
  return {
    sink: timed / sinkSecs,
    raw: timed / rawSecs,
    replay: items.length / replaySecs,
    vectors: pgvector ? `vector(${DIMENSIONS})` : `double precision[${DIMENSIONS}]`,
  };
}

/** Prints the section; skipped with the reason when the server cannot be reached. */
export async function printPostgresSection(rows: number, rounds: number, batch = 500) {
  console.log(
    `## Postgres sink, ${fmt(rows)} rows with ${DIMENSIONS}-dimension vectors, ` +
      `batches of ${batch}, best of ${rounds}`,
  );
  if (!(rows >= 2 * batch)) {
    throw new Error(`rows (${rows}) must be at least twice batch (${batch})`);
  }
  const url = benchDatabaseUrl();
  const why = await unreachable(url);
  if (why !== undefined) {
    console.log(`skipped: Postgres at ${maskUrl(url)} is not reachable (${why})\n`);
    return;
  }
  const items = benchItems(rows);
  const schema = `millrace_bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  await admin`create schema ${admin(schema)}`;
  const runs: PostgresFigures[] = [];
  try {
    for (let r = 0; r < rounds; r++) runs.push(await round(url, schema, items, batch, r));
  } finally {
    await admin`drop schema ${admin(schema)} cascade`;
    await admin.end();
  }
  const best = (key: "sink" | "raw" | "replay") => Math.max(...runs.map((f) => f[key]));
  const [sink, raw, replay] = [best("sink"), best("raw"), best("replay")];
  console.log(`vectors stored as ${runs[0].vectors} on ${maskUrl(url)}`);
  console.log(`sink upsert:              ${fmt(sink)} rows/s`);
  console.log(`raw postgres.js INSERT:   ${fmt(raw)} rows/s (baseline, same run: no upsert)`);
  console.log(`ratio sink / baseline:    ${(sink / raw).toFixed(2)}x`);
  console.log(`sink replay (no change):  ${fmt(replay)} rows/s\n`);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rows: { type: "string", default: "50000" },
      rounds: { type: "string", default: "1" },
      batch: { type: "string", default: "500" },
    },
  });
  await printPostgresSection(Number(values.rows), Number(values.rounds), Number(values.batch));
}
