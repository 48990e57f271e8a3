import type postgres from "postgres";
import { errorMessage } from "../../engine/errors.ts";
import { COLUMN_TYPES, type LiftedColumn } from "./_pg_columns.ts";

type Sql = postgres.Sql;
/** A connection pool or one transaction of it: what a query needs. */
type Db = postgres.ISql;
type Fragment = postgres.Fragment;

/** How vectors are stored: pgvector's `vector(n)`, a plain `float8[]`, or not at all. */
export type VectorMode = "pgvector" | "array" | "none";

/** A table as the flow file names it: `trends` (on the search path) or `public.trends`. */
export interface TableName {
  schema?: string;
  name: string;
}

/** The table the sink writes, once it is known to exist with the right shape. */
export interface Table {
  /** The schema the table lives in (the first of the search path when the flow named none). */
  schema: string;
  /** The table name, unquoted. */
  name: string;
  /** How messages show it: "public"."trends". */
  label: string;
  /** How this table stores vectors, as decided at open (`auto` resolved). */
  vector: VectorMode;
  /** Whether the vector column exists (pgvector's is added by the first write with a vector). */
  vectorColumn: boolean;
  /** Length of the vectors it holds, once known (a typed column or a stored row says). */
  dimensions?: number;
  /** Whether a pgvector column this sink adds gets an HNSW index for cosine distance. */
  index?: VectorIndex;
  /**
   * Whether the schema's record of deletes (deletedSql) is there to hold a
   * delete that came before its item; false when the role may not create
   * it (the sink then writes as before it existed, and said so at open).
   */
  deletes: boolean;
}

/** The index a pgvector column added by the sink gets: HNSW on cosine distance, or none. */
export type VectorIndex = "hnsw" | "none";

/** pgvector's limit for an HNSW index on a `vector` column. */
export const MAX_HNSW_DIMENSIONS = 2_000;

/** pgvector's limit for an indexable `vector` column. */
export const MAX_PGVECTOR_DIMENSIONS = 16_000;

/**
 * `schema.name` or `name`. postgres.js reads a dot in an identifier as the
 * schema separator, so a dot can only be that; quotes and any other
 * character are fine (each part is quoted when it reaches SQL).
 */
export function parseTableName(text: string): TableName | { error: string } {
  const parts = text.split(".");
  if (parts.length > 2 || parts.some((p) => p === "")) {
    return {
      error: `expected a table as NAME or SCHEMA.NAME (a dot only separates the two), got ${
        JSON.stringify(text)
      }`,
    };
  }
  const [schema, name] = parts.length === 2 ? parts : [undefined, parts[0]];
  return { schema, name };
}

/** The table as SQL: each part quoted by postgres.js, never spliced into a string by hand. */
export function tableSql(sql: Db, t: { schema: string; name: string }): Fragment {
  return sql`${sql(t.schema)}.${sql(t.name)}`;
}

/**
 * The schema's table of deletes, one per schema whatever the sinks' tables:
 * (tbl, id) and the `seen_at` of the delete. A delete can reach the sink
 * before the item it deletes (two processes, batches in flight at once, a
 * durable edge putting the rest of a cut entry behind later ones), and the
 * item's upsert must not bring the row back: upserts and merge updates
 * skip an id deleted at or after their own `seen_at`.
 */
export function deletedSql(sql: Db, t: { schema: string }): Fragment {
  return sql`${sql(t.schema)}.${sql(DELETED_TABLE)}`;
}

const DELETED_TABLE = "millrace_deleted";

/** Its columns: which table, which id, and when the delete was seen (the latest per id). */
const DELETED_COLUMNS =
  "tbl text not null, id text not null, seen_at timestamptz not null, primary key (tbl, id)";

/**
 * Makes sure the schema's table of deletes exists (see deletedSql): looked
 * up first, since CREATE needs the schema's CREATE privilege even when the
 * table is there, which a role that may only write its own tables lacks
 * (Postgres 15 grants none on `public`). Returns whether it is there; when
 * it cannot be made, `log` says why and what to run instead.
 */
export async function prepareDeleted(
  sql: Sql,
  schema: string,
  log: (msg: string) => void,
): Promise<boolean> {
  const label = quoteForDisplay(schema, DELETED_TABLE);
  // pg_class by a query (its snapshot sees what another session committed),
  // not to_regclass (the session's catalog cache, which may not yet).
  const exists = async (q: Db) =>
    (await q`select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = ${schema} and c.relname = ${DELETED_TABLE}`).length > 0;
  const usable = async () => {
    const [{ ok }] = await sql<{ ok: boolean }[]>`select
      has_table_privilege(${label}, 'SELECT') and has_table_privilege(${label}, 'INSERT') and
      has_table_privilege(${label}, 'UPDATE') and has_table_privilege(${label}, 'DELETE') as ok`;
    if (!ok) {
      log(
        `${label} is there but this role may not read and write it: a delete that reaches the ` +
          `table before its item will not hold (the item comes back). Have its owner run: grant ` +
          `select, insert, update, delete on ${label} to this role`,
      );
    }
    return ok;
  };
  if (await exists(sql)) return await usable();
  try {
    await underTableLock(sql, label, async (tx) => {
      if (await exists(tx)) return;
      await tx`create table ${deletedSql(tx, { schema })} (${tx.unsafe(DELETED_COLUMNS)})`;
    });
    return await usable();
  } catch (error) {
    const code = (error as { code?: string }).code;
    // Made by another session meanwhile (duplicate_table, or its type's unique_violation).
    if (code === "42P07" || code === "23505") return await usable();
    if (code !== "42501") throw error; // insufficient_privilege
    log(
      `cannot create ${label} (${errorMessage(error)}): a delete that reaches the table before ` +
        `its item will not hold (the item comes back). Have its owner run: create table ${label} ` +
        `(${DELETED_COLUMNS}), and grant this role select, insert, update, delete on it`,
    );
    return false;
  }
}

/** `"public"."trends"`, for messages only. */
export function quoteForDisplay(...parts: string[]): string {
  return parts.map((p) => `"${p.replaceAll('"', '""')}"`).join(".");
}

/** Joins fragments with commas (postgres.js joins a list of fragments with spaces). */
export function commaList(sql: Db, parts: Fragment[]): Fragment[] {
  return parts.map((p, i) => i === 0 ? p : sql`, ${p}`);
}

/** An existing relation: its kind, its columns (name -> format_type) and whether `id` is unique. */
interface Found {
  oid: string;
  kind: string;
  columns: Map<string, string>;
  idUnique: boolean;
}

async function inspect(sql: Db, schema: string, name: string): Promise<Found | undefined> {
  const [rel] = await sql<{ oid: string; kind: string }[]>`
    select c.oid::text as oid, c.relkind as kind
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relname = ${name}`;
  if (!rel) return undefined;
  const columns = await sql<{ name: string; type: string }[]>`
    select attname as name, format_type(atttypid, atttypmod) as type
    from pg_attribute where attrelid = ${rel.oid}::oid and attnum > 0 and not attisdropped`;
  const [{ unique }] = await sql<{ unique: boolean }[]>`
    select exists (
      select 1 from pg_index i
      join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
      where i.indrelid = ${rel.oid}::oid and i.indisunique and i.indnatts = 1
        and i.indpred is null and a.attname = 'id'
    ) as unique`;
  return {
    oid: rel.oid,
    kind: rel.kind,
    columns: new Map(columns.map((c) => [c.name, c.type])),
    idUnique: unique,
  };
}

/** The columns every sink table has after id and the lifted ones, the vector aside. */
const BASE_COLUMNS: [string, string][] = [
  ["payload", "jsonb"],
  ["source", "text"],
  ["seen_at", "timestamp with time zone"],
  ["updated_at", "timestamp with time zone"],
];

/** Says everything that keeps an existing table from taking the sink's rows, or nothing. */
function shapeProblems(found: Found, lifted: LiftedColumn[]): string[] {
  const wanted: [string, string][] = [
    ["id", "text"],
    ...lifted.map((c): [string, string] => [c.column, COLUMN_TYPES[c.type]]),
    ...BASE_COLUMNS,
  ];
  const missing: string[] = [];
  const wrong: string[] = [];
  // A lifted column of another type can be taken as it is: say how (a table made before a
  // field was typed, say, holds it as text).
  const entryOf = new Map(lifted.map((c) => [c.column, c.field]));
  const nameOf = new Map<string, string>(
    Object.entries(COLUMN_TYPES).map(([name, sqlType]) => [sqlType, name]),
  );
  for (const [column, type] of wanted) {
    const has = found.columns.get(column);
    if (has === undefined) missing.push(`${column} (${type})`);
    else if (has !== type) {
      const field = entryOf.get(column), name = nameOf.get(has);
      wrong.push(
        `${column} is ${has}, expected ${type}` +
          (field !== undefined && name !== undefined
            ? ` (or write the column entry { ${field}: ${name} } to keep it)`
            : ""),
      );
    }
  }
  const problems: string[] = [];
  if (missing.length) {
    problems.push(`missing column${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`);
  }
  problems.push(...wrong);
  if (found.columns.has("id") && !found.idUnique) {
    problems.push("id is not its primary key (upserts need a unique index on id alone)");
  }
  return problems;
}

/** The error refusing an existing table, naming everything about it that does not fit. */
function unfit(label: string, problems: string[]): Error {
  return new Error(
    `table ${label} exists but cannot take the sink's rows: ${
      problems.join("; ")
    }. Alter it, or point the sink at a new table`,
  );
}

/** What an existing `vector` column holds; undefined for a type the sink cannot write. */
function modeOfColumn(type: string): { mode: VectorMode; dimensions?: number } | undefined {
  if (type === "double precision[]") return { mode: "array" };
  const m = /^vector(?:\((\d+)\))?$/.exec(type);
  return m ? { mode: "pgvector", dimensions: m[1] ? Number(m[1]) : undefined } : undefined;
}

/** Whether pgvector is installed in this database, installing it when the server has it. */
async function havePgvector(sql: Sql): Promise<{ ok: true } | { ok: false; why: string }> {
  const installed = () => sql`select 1 from pg_extension where extname = 'vector'`;
  if ((await installed()).length) return { ok: true };
  try {
    await sql`create extension if not exists vector`;
    return { ok: true };
  } catch (error) {
    // Two sinks racing to create it: one loses with a duplicate key, yet it is there.
    if ((await installed()).length) return { ok: true };
    return { ok: false, why: errorMessage(error) };
  }
}

/**
 * Picks the vector mode from what was asked and what the table's vector
 * column (of SQL type `existing`, which the sink can write) already holds.
 */
async function resolveMode(
  sql: Sql,
  label: string,
  wanted: VectorMode | "auto",
  existing: { type: string; has: { mode: VectorMode; dimensions?: number } } | undefined,
  log: (msg: string) => void,
): Promise<{ mode: VectorMode; dimensions?: number }> {
  if (wanted === "none") return { mode: "none" };
  if (existing !== undefined) {
    const { type, has } = existing;
    if (wanted !== "auto" && wanted !== has.mode) {
      throw new Error(
        `table ${label} stores vectors as ${type}, but the flow asks for vector: ${wanted}; use vector: ${has.mode} (or auto) or another table`,
      );
    }
    return has;
  }
  if (wanted === "array") return { mode: "array" };
  const pgvector = await havePgvector(sql);
  if (pgvector.ok) return { mode: "pgvector" };
  if (wanted === "pgvector") {
    throw new Error(
      `vector: pgvector asks for the pgvector extension, which this server cannot create (${pgvector.why}); install it, or use vector: array`,
    );
  }
  log(`pgvector is not available (${pgvector.why}): vectors go to a double precision[] column`);
  return { mode: "array" };
}

/**
 * Makes sure the table exists with every column the sink writes: creates it
 * when missing, adds the vector column of a float8[] table, and refuses an
 * existing table that lacks a column or has one of another type, naming all
 * of them at once. pgvector's column waits for the first vector (its type
 * needs the dimension).
 */
export async function prepareTable(
  sql: Sql,
  given: TableName,
  lifted: LiftedColumn[],
  wanted: VectorMode | "auto",
  log: (msg: string) => void,
  warn: (msg: string) => void = log,
): Promise<Table> {
  const [{ current }] = await sql<{ current: string | null }[]>`select current_schema() as current`;
  const schema = given.schema ?? current;
  if (schema === null) {
    throw new Error(
      `table ${
        quoteForDisplay(given.name)
      }: no schema of the search path exists; name it as SCHEMA.NAME`,
    );
  }
  const label = quoteForDisplay(schema, given.name);
  const [schemaRow] = await sql`select 1 from pg_namespace where nspname = ${schema}`;
  if (!schemaRow) {
    throw new Error(`table ${label}: schema ${quoteForDisplay(schema)} does not exist`);
  }
  const t = { schema, name: given.name };

  let found = await inspect(sql, schema, given.name);
  if (found && found.kind !== "r" && found.kind !== "p") {
    throw new Error(`${label} exists and is not a table (pg_class.relkind ${found.kind})`);
  }
  const vector = found?.columns.get("vector");
  const has = vector === undefined ? undefined : modeOfColumn(vector);
  // A vector column the sink cannot write is said with everything else that does not fit, in
  // one error: said alone first, the table was refused again once it was altered.
  if (found && vector !== undefined && !has && wanted !== "none") {
    throw unfit(label, [
      `vector is ${vector}, expected vector(n) (pgvector) or double precision[]`,
      ...shapeProblems(found, lifted),
    ]);
  }
  const { mode, dimensions } = await resolveMode(
    sql,
    label,
    wanted,
    vector !== undefined && has ? { type: vector, has } : undefined,
    log,
  );
  if (!found) {
    const made = await underTableLock(sql, label, async (tx) => ({
      created: await createTable(tx, t, lifted, mode),
      found: (await inspect(tx, schema, given.name))!,
    }));
    if (made.created) log(`created table ${label}`);
    found = made.found;
  } else if (mode === "array" && !found.columns.has("vector")) {
    await sql`alter table ${tableSql(sql, t)} add column if not exists vector double precision[]`;
    found.columns.set("vector", "double precision[]");
  }
  const problems = shapeProblems(found, lifted);
  if (problems.length) throw unfit(label, problems);
  const deletes = await prepareDeleted(sql, schema, warn);
  const table: Table = {
    schema,
    name: given.name,
    label,
    deletes,
    vector: mode,
    vectorColumn: mode !== "none" && found.columns.has("vector"),
    dimensions,
  };
  if (table.vector === "array" || (table.vectorColumn && dimensions === undefined)) {
    table.dimensions = await storedDimensions(sql, table);
  }
  return table;
}

/**
 * Runs `fn` in a transaction that holds an advisory lock named after the
 * table. Postgres's `if not exists` does not cover two sessions creating
 * one table, or one index, at once (two `run`s of a flow opening their
 * sink together): the loser fails with "type ... already exists",
 * "relation ... already exists" or a duplicate key, depending on when the
 * winner commits. Under the lock the second session waits, then finds the
 * table.
 */
async function underTableLock<T>(
  sql: Sql,
  label: string,
  fn: (tx: postgres.TransactionSql) => Promise<T>,
): Promise<T> {
  // Read committed whatever the pool's default (the sink's writes are
  // serializable): what the lock waited for must be seen after it, and a
  // serializable transaction's snapshot is taken at the lock's select.
  return await sql.begin("isolation level read committed", async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${"millrace sink " + label}))`;
    return await fn(tx);
  }) as T;
}

/** Creates the table unless it exists; says whether it did. Run under `underTableLock`. */
async function createTable(
  sql: Db,
  t: { schema: string; name: string },
  lifted: LiftedColumn[],
  mode: VectorMode,
): Promise<boolean> {
  if (await inspect(sql, t.schema, t.name)) return false;
  const columns = commaList(sql, [
    sql`id text primary key`,
    ...lifted.map((c) => sql`${sql(c.column)} ${sql.unsafe(COLUMN_TYPES[c.type])}`),
    sql`payload jsonb not null`,
    ...(mode === "array" ? [sql`vector double precision[]`] : []),
    sql`source text`,
    sql`seen_at timestamptz`,
    sql`updated_at timestamptz not null default now()`,
  ]);
  await sql`create table ${tableSql(sql, t)} (${columns})`;
  return true;
}

/** The length of the vectors already stored, if any row has one. */
async function storedDimensions(sql: Sql, t: Table): Promise<number | undefined> {
  const length = t.vector === "pgvector" ? sql`vector_dims(vector)` : sql`array_length(vector, 1)`;
  const [row] = await sql<{ n: number }[]>`
    select ${length} as n from ${tableSql(sql, t)} where vector is not null limit 1`;
  return row?.n ?? undefined;
}

/**
 * Makes sure the table takes vectors of `dimensions`: adds pgvector's
 * column, typed with it, on the first vector, and refuses a length other
 * than the one the table already holds. The HNSW index is made with the
 * column, while it holds nothing, so it costs nothing to build; an existing
 * column's indexes are the owner's business (building one on a full table
 * is slow and blocks writes).
 */
export async function ensureVectorColumn(sql: Sql, t: Table, dimensions: number): Promise<void> {
  if (t.vector === "pgvector" && !t.vectorColumn) {
    if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > MAX_PGVECTOR_DIMENSIONS) {
      throw new Error(
        `table ${t.label}: a pgvector column takes 1 to ${MAX_PGVECTOR_DIMENSIONS} dimensions, the first vector has ${dimensions}`,
      );
    }
    await underTableLock(sql, t.label, async (tx) => {
      // The dimension is a checked integer: a type modifier cannot be a bind parameter.
      await tx`alter table ${tableSql(tx, t)}
        add column if not exists vector vector(${tx.unsafe(String(dimensions))})`;
      if ((t.index ?? "hnsw") === "hnsw" && dimensions <= MAX_HNSW_DIMENSIONS) {
        await tx`create index if not exists ${tx(indexName(t.name))} on ${tableSql(tx, t)}
          using hnsw (vector vector_cosine_ops)`;
      }
    });
    const type = (await inspect(sql, t.schema, t.name))?.columns.get("vector") ?? "";
    t.vectorColumn = true;
    t.dimensions = modeOfColumn(type)?.dimensions ?? await storedDimensions(sql, t);
  }
  if (t.dimensions !== undefined && t.dimensions !== dimensions) {
    throw new Error(
      `table ${t.label} holds vectors of ${t.dimensions} dimensions, and this flow's are ${dimensions}: embed with ${t.dimensions} dimensions, or use another table`,
    );
  }
  t.dimensions = dimensions;
}

/** `<table>_vector_hnsw`, cut to Postgres's 63-byte identifier limit on a character boundary. */
export function indexName(table: string): string {
  const suffix = "_vector_hnsw";
  const bytes = new TextEncoder();
  let base = table;
  while (bytes.encode(base + suffix).length > 63) base = [...base].slice(0, -1).join("");
  return base + suffix;
}
