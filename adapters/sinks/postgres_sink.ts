import type postgres from "postgres";
import { z } from "zod";
import { duration } from "../../config/units.ts";
import { type Envelope, MERGED_FIELDS, type RawItem } from "../../engine/item.ts";
import { type Logger, withPrefix } from "../../engine/log.ts";
import type { SinkSpec, VectorShape } from "../../engine/registry.ts";
import type { Sink } from "../../engine/sink.ts";
import {
  COLUMN_TYPES,
  columnsSchema,
  columnValue,
  DEFAULT_COLUMNS,
  type LiftedColumn,
  MAX_IDENTIFIER_BYTES,
} from "./_pg_columns.ts";
import {
  deletedSql,
  ensureVectorColumn,
  parseTableName,
  prepareTable,
  type Table,
  type TableName,
  tableSql,
} from "./_pg_table.ts";
import { errorText, jsonRows, scrubber } from "./_pg_text.ts";
import type { RetryHint } from "../../engine/errors.ts";
import { maskSecretsOf, maskUrl, PASSWORD_ENCODING } from "../../engine/mask_url.ts";
import { portOutOfRange } from "../../engine/url_port.ts";
import { sleep } from "../../engine/backoff.ts";
import { retry } from "../../engine/retry.ts";
import { deleteSql, mergeSql, upsertSql, vectorLength } from "./_pg_upsert.ts";

export { maskUrl } from "../../engine/mask_url.ts";
export { nearest, type Neighbour } from "./_pg_nearest.ts";
export type { VectorMode } from "./_pg_table.ts";

type Sql = postgres.Sql;

const tableSchema = z.string().min(1).transform((text, ctx): TableName => {
  const parsed = parseTableName(text);
  if ("error" in parsed) {
    ctx.issues.push({ code: "custom", message: parsed.error, input: text });
    return z.NEVER;
  }
  for (const part of [parsed.schema, parsed.name]) {
    if (part !== undefined && new TextEncoder().encode(part).length > MAX_IDENTIFIER_BYTES) {
      ctx.issues.push({
        code: "custom",
        message: `"${part}" is longer than Postgres's ${MAX_IDENTIFIER_BYTES} bytes`,
        input: text,
      });
      return z.NEVER;
    }
  }
  return parsed;
});

/**
 * Why postgres.js could not read `url`, or undefined: its own reading
 * (the first of a comma-separated list of hosts through the URL class, the
 * user and password percent-decoded), done when the flow is checked. A
 * port past 65535 or a password holding `/`, `?`, `#` or a stray `%`
 * passed `check` and failed the run at the publish stage's line (not all:
 * a `/` after digits reads as a port and a database named with an `@`,
 * which one may be). Masked.
 */
function pgUrlProblem(url: string): string | undefined {
  const port = portOutOfRange(url);
  if (port !== undefined) return `port ${port} is out of range: a port is 1 to 65535`;
  const hint = url.includes("@") ? ` (${PASSWORD_ENCODING})` : "";
  try {
    let host = url.slice(url.indexOf("://") + 3).split(/[?/]/)[0];
    host = decodeURIComponent(host.slice(host.indexOf("@") + 1));
    const parsed = new URL(url.replace(host, host.split(",")[0]));
    decodeURIComponent(parsed.username);
    decodeURIComponent(parsed.password);
  } catch (error) {
    return maskSecretsOf(`not a URL the Postgres client can read: ${errorText(error)}${hint}`, url);
  }
  // `postgres://app:12/ab@db/x` reads as host "app", port 12 and database "ab@db/x": a
  // password's `/` may have cut it, or a database may be so named; the run says which.
  return undefined;
}

export const postgresSinkSchema = z.strictObject({
  url: z.string().check((ctx) => {
    if (!/^postgres(ql)?:\/\//.test(ctx.value)) {
      ctx.issues.push({
        code: "custom",
        message: `expected a postgres://user:password@host:5432/database URL, got ${
          JSON.stringify(maskUrl(ctx.value))
        }`,
        input: maskUrl(ctx.value),
      });
      return;
    }
    const problem = pgUrlProblem(ctx.value);
    if (problem !== undefined) {
      ctx.issues.push({ code: "custom", message: problem, input: maskUrl(ctx.value) });
    }
  }).describe(
    "postgres://user:password@host:5432/database, usually ${DATABASE_URL}; the password is never logged. Required.",
  ),
  table: tableSchema.describe(
    "Table to upsert into, as NAME (first schema of the search path) or SCHEMA.NAME; created if missing. Required.",
  ),
  columns: columnsSchema.prefault(DEFAULT_COLUMNS).describe(
    `Payload fields lifted into typed columns of their own (publishedAt -> published_at): a name, typed from the item types (else text), or { field: type } with a type of ${
      Object.keys(COLUMN_TYPES).join(", ")
    }; default [${DEFAULT_COLUMNS.join(", ")}].`,
  ),
  vector: z.enum(["auto", "pgvector", "array", "none"]).default("auto").describe(
    "How vectors are stored: pgvector (a vector(n) column), array (double precision[]), none, or auto (pgvector when CREATE EXTENSION vector works, else array); default auto.",
  ),
  index: z.enum(["hnsw", "none"]).default("hnsw").describe(
    "Index for nearest-neighbour search made with a pgvector column the sink adds: hnsw (cosine distance; up to 2000 dimensions) or none; default hnsw.",
  ),
  timeout: duration().default(30_000).describe(
    "Statement timeout, and connect timeout; a server silent 5s past it is given up; 0s: no statement timeout, waited for however long; default 30s.",
  ),
  maxConnections: z.int().positive().max(100).default(4)
    .describe("Connections in the pool; default 4."),
}).describe("Upserts items into a Postgres table by item id, with their vectors.");

/** A checked `postgres:` sink config (see postgresSinkSchema for what each field means). */
export interface PostgresSinkConfig {
  /** postgres://user:password@host:5432/database; the password is never logged. */
  url: string;
  /** The table to upsert into; created if missing. */
  table: TableName;
  /** Payload fields lifted into typed columns of their own. */
  columns: LiftedColumn[];
  /** How vectors are stored; auto picks pgvector when the server has it. */
  vector: "auto" | "pgvector" | "array" | "none";
  /** The nearest-neighbour index made on a pgvector column the sink adds. */
  index: "hnsw" | "none";
  /** Statement and connect timeout, ms. */
  timeout: number;
  /** Connections in the pool. */
  maxConnections: number;
}

// The interface above is written out for the library's documentation and
// types; this fails to compile when it and the schema's output part ways.
const _sameConfig: [PostgresSinkConfig, z.output<typeof postgresSinkSchema>] extends
  [z.output<typeof postgresSinkSchema>, PostgresSinkConfig] ? true : never = true;

const SILENT: Pick<Logger, "info" | "warn"> = { info() {}, warn() {} };

/**
 * Upserts each batch into one Postgres table, keyed by item id: one
 * statement per batch (a JSON array of rows read by json_to_recordset, so
 * the statement is the same whatever the batch size and Postgres parses
 * the vectors), `ON CONFLICT (id) DO UPDATE`, so a replay or a redelivery
 * updates the row and never adds one. A row whose content did not change is
 * not rewritten, so replays cost no table writes and `updated_at` says when
 * the content last changed; `seen_at` keeps the earliest sighting.
 *
 * A merge update (Envelope.update) changes only its row's merged fields
 * (sources, engagement, lastSeenAt, revision), and only when its revision
 * is higher than the row's: see mergeSql. The vector is not touched.
 *
 * An item whose payload has `deleted: true` deletes its row instead, in
 * one DELETE per batch. `expire` (the publish stage's `retention`) deletes
 * the rows whose `seen_at` is older than the cutoff. When an id occurs more than once in a batch the
 * last occurrence wins, as if they had been written one after another.
 *
 * Identifiers from the flow file reach SQL only through postgres.js's
 * identifier quoting, column types only from a fixed list.
 */
export class PostgresSink implements Sink {
  /** Merge updates are applied to the story they name (see the class comment). */
  readonly updates = true;
  readonly #config: PostgresSinkConfig;
  readonly #log: Pick<Logger, "info" | "warn">;
  readonly #scrub: (text: string) => string;
  #sql?: Sql;
  #table?: Table;
  #ready?: Promise<void>;
  #vectorCheck?: { dimensions: number; done: Promise<void> };
  /** Statements sent and not yet answered, to size each one's deadline (see #once). */
  #inFlight = 0;

  readonly #vectors?: VectorShape;

  /**
   * `vectors`, when the flow's embed stage opened first, gives the vector
   * length, so a table made for another length is refused at open.
   */
  constructor(
    config: PostgresSinkConfig,
    log: Pick<Logger, "info" | "warn"> = SILENT,
    vectors?: VectorShape,
  ) {
    this.#config = config;
    this.#log = log;
    this.#vectors = vectors;
    this.#scrub = scrubber(config.url);
  }

  /** The table once open: where it is and how it stores vectors. */
  get table(): Readonly<Table> | undefined {
    return this.#table;
  }

  /** Connects and makes sure the table exists with the sink's columns; fails with one clear line. */
  open(): Promise<void> {
    return this.#ready ??= this.#open().catch((error) => {
      this.#ready = undefined;
      throw error;
    });
  }

  /** Upserts the batch by item id (the last copy wins); items marked `deleted` delete their rows. */
  async write(batch: readonly Envelope<RawItem>[], signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (batch.length === 0) return;
    await this.open();
    const last = new Map<string, Envelope<RawItem>>();
    const updates = new Map<string, Envelope<RawItem>>();
    for (const item of batch) {
      if (item.update === true) {
        const held = updates.get(item.id);
        if (!held || revisionOf(held) < revisionOf(item)) updates.set(item.id, item);
        continue;
      }
      last.delete(item.id); // so the map's order is that of the last occurrences
      last.set(item.id, item);
    }
    const upserts: Envelope<RawItem>[] = [];
    const deletes: { id: string; seen_at: string }[] = [];
    for (const item of last.values()) {
      if (item.payload.deleted === true) {
        deletes.push({ id: item.id, seen_at: new Date(item.seenAt).toISOString() });
      } else upserts.push(item);
    }
    if (upserts.length) await this.#upsert(upserts, signal);
    // Deletes before merges: a merge update of a story this batch deletes then finds the delete
    // recorded and is skipped, as in a later batch. Run after it, it found neither row nor
    // delete, made a row of merged fields alone, seen after the delete, which spared it.
    if (deletes.length) {
      const json = JSON.stringify(deletes);
      await this.#run(
        "delete",
        deletes.length,
        (sql) => deleteSql(sql, this.#table!, json),
        signal,
      );
    }
    if (updates.size) await this.#merge([...updates.values()], signal);
  }

  /** Deletes the rows first seen before `before` (epoch ms), for the publish stage's retention. */
  async expire(before: number, signal: AbortSignal): Promise<number> {
    signal.throwIfAborted();
    await this.open();
    const result = await this.#run(
      "expire",
      undefined,
      // The record of deletes older than the cutoff goes too: no copy that old is taken now.
      (sql) => {
        const table = this.#table!;
        const cutoff = sql`to_timestamp(${before}::float8 / 1000)`;
        const rows = sql`delete from ${tableSql(sql, table)} where seen_at < ${cutoff}`;
        return table.deletes
          ? sql`with forgotten as (
              delete from ${
            deletedSql(sql, table)
          } where tbl = ${table.name} and seen_at < ${cutoff}
            ) ${rows}`
          : rows;
      },
      signal,
    );
    return result.count;
  }

  /** Closes the pool, giving what a hard stop left running at most a second. */
  async close(): Promise<void> {
    const sql = this.#sql;
    this.#sql = undefined;
    this.#ready = undefined;
    this.#vectorCheck = undefined;
    // Every write has returned by now (the stage drained first), so this only
    // waits for what a hard stop left running. postgres.js can otherwise
    // wait the whole timeout on a pool one of whose backends was terminated.
    await sql?.end({ timeout: Math.min(1, this.#config.timeout / 1000) });
  }

  async #open(): Promise<void> {
    const { url, timeout, maxConnections } = this.#config;
    const where = maskUrl(url);
    // Imported here, not at the top: a flow without a postgres sink never loads postgres.js.
    const { default: connect } = await import("postgres");
    let sql: Sql;
    try {
      sql = connect(url, {
        max: maxConnections,
        // `0s` is no statement timeout, not a connection that may take for ever.
        connect_timeout: Math.max(1, Math.ceil((timeout || OPEN_TIMEOUT_MS) / 1000)),
        onnotice: () => {},
        connection: {
          application_name: "millrace",
          statement_timeout: timeout,
          // A lock another session holds (CREATE INDEX, ALTER TABLE, VACUUM FULL) fails the
          // statement as a lock timeout, 55P03, before statement_timeout's cancel, which an
          // item's slow write gives too: Postgres is then waited out as busy, not the rows split.
          ...(timeout > 0 ? { lock_timeout: lockTimeout(timeout) } : {}),
          // Each write is one statement, serializable so that a delete and
          // an upsert of one id by two processes at once cannot miss each
          // other (see serializationFailure).
          default_transaction_isolation: "serializable",
        },
      });
    } catch (error) {
      // The masked URL may look right: the password it hides is what broke the parse.
      throw new Error(
        `postgres sink: bad URL ${where}: ${this.#scrub(errorText(error))} (${PASSWORD_ENCODING})`,
      );
    }
    try {
      // Connecting has a deadline even with `0s`; the table's checks, which may wait on a lock
      // (an ALTER TABLE, a VACUUM FULL), have a statement's.
      await answered(sql`select 1`, (timeout || OPEN_TIMEOUT_MS) + GRACE_MS);
    } catch (error) {
      await sql.end({ timeout: 0 });
      // `postgres://app:12/ab@db/x` parses as host "app", port 12: the password's `/` ended
      // the host part, and the rest of it is in the path. Its `@` gives it away.
      const slash = URL.parse(this.#config.url)?.pathname.includes("@")
        ? ` (the URL's path holds an @: ${PASSWORD_ENCODING})`
        : "";
      throw reconnectable(
        `postgres sink: cannot connect to ${where}: ${this.#scrub(errorText(error))}${slash}`,
        error,
      );
    }
    try {
      this.#table = await answered(
        prepareTable(
          sql,
          this.#config.table,
          this.#config.columns,
          this.#config.vector,
          (msg) => this.#log.info(`postgres sink: ${msg}`),
          (msg) => this.#log.warn(`postgres sink: ${msg}`),
        ),
        silentAfter(timeout),
      );
      this.#table.index = this.#config.index;
    } catch (error) {
      await sql.end({ timeout: 0 });
      throw reconnectable(`postgres sink on ${where}: ${this.#scrub(errorText(error))}`, error);
    }
    this.#sql = sql;
    const dimensions = this.#vectors?.dimensions;
    if (dimensions !== undefined && this.#table.vector !== "none") {
      try {
        await this.#checkVectors(dimensions); // with its own deadline
      } catch (error) {
        this.#sql = undefined;
        await sql.end({ timeout: 0 });
        throw new Error(`${errorText(error)} (${where})`);
      }
    }
    const t = this.#table;
    this.#log.info(
      `postgres sink: writing to ${t.label} on ${where} (vectors: ${
        { pgvector: "pgvector", array: "double precision[]", none: "not stored" }[t.vector]
      })`,
    );
  }

  async #upsert(items: Envelope<RawItem>[], signal: AbortSignal): Promise<void> {
    const table = this.#table!;
    if (table.vector !== "none") {
      const dimensions = vectorLength(items);
      if (dimensions !== undefined) await this.#checkVectors(dimensions);
    }
    const lifted = this.#config.columns;
    const rows = items.map((item) => {
      const row: Record<string, unknown> = {};
      row.id = item.id;
      for (const c of lifted) row[c.column] = columnValue(c.type, item.payload[c.field]);
      row.payload = item.payload;
      if (table.vectorColumn) row.vector = item.vector ?? null;
      row.source = item.source;
      row.seen_at = new Date(item.seenAt).toISOString();
      return row;
    });
    await this.#run(
      "upsert",
      items.length,
      (sql) => upsertSql(sql, table, lifted, jsonRows(rows)),
      signal,
    );
  }

  /** Applies merge updates to their rows (see mergeSql). */
  async #merge(items: Envelope<RawItem>[], signal: AbortSignal): Promise<void> {
    const lifted = this.#config.columns.filter((c) => MERGED_FIELDS.includes(c.field));
    const rows = items.map((item) => {
      const row: Record<string, unknown> = { id: item.id };
      for (const c of lifted) row[c.column] = columnValue(c.type, item.payload[c.field]);
      row.payload = item.payload;
      row.source = item.source;
      row.seen_at = new Date(item.seenAt).toISOString();
      return row;
    });
    await this.#run(
      "merge",
      items.length,
      (sql) => mergeSql(sql, this.#table!, lifted, jsonRows(rows)),
      signal,
    );
  }

  /** Makes sure the vector column takes `dimensions` (once per length, however many writes race). */
  #checkVectors(dimensions: number): Promise<void> {
    if (this.#vectorCheck?.dimensions !== dimensions) {
      const pool = this.#sql;
      // A silent server's statement closed the pool meanwhile: open it again first.
      if (!pool) return this.open().then(() => this.#checkVectors(dimensions));
      const checked = ensureVectorColumn(pool, this.#table!, dimensions);
      const done = answered(checked, silentAfter(this.#config.timeout)).catch(async (error) => {
        this.#vectorCheck = undefined;
        if (error instanceof NoAnswerError) await this.#dropPool(pool);
        throw reconnectable(`postgres sink: ${this.#scrub(errorText(error))}`, error);
      });
      this.#vectorCheck = { dimensions, done };
    }
    return this.#vectorCheck!.done;
  }

  /** Runs a statement, cancelling it on the server when `signal` aborts; errors say what failed. */
  /**
   * Runs a statement, again while the connection is what failed (a backend
   * terminated, a restart, a dropped socket): every statement here is an
   * idempotent upsert or delete, and a lost connection says nothing about
   * the rows, so retrying it (a few times, with backoff) beats sending its
   * items to dead letters while they may already be in the table.
   */
  async #run(
    what: string,
    rows: number | undefined,
    query: (sql: Sql) => postgres.PendingQuery<postgres.Row[]>,
    signal: AbortSignal,
  ): Promise<postgres.RowList<postgres.Row[]>> {
    const pause = (ms: number) => sleep(ms, signal);
    // A statement that lost a race with another session's runs again at
    // once, many times if need be: one of the two always commits.
    const raced = () =>
      retry(() => this.#once(query, signal), {
        maxAttempts: 20,
        baseMs: 10,
        maxMs: 500,
        isRetryable: (error) => !signal.aborted && serializationFailure(error),
        sleep: pause,
      });
    try {
      // The signal cancels the statement (its error says so); it is not
      // passed to retry, which would replace that error with the abort's.
      return await retry(raced, {
        maxAttempts: 6,
        baseMs: 200,
        maxMs: 5_000,
        isRetryable: (error) => !signal.aborted && connectionLost(error),
        sleep: pause,
      });
    } catch (error) {
      const failure: Error & RetryHint = new Error(
        `postgres sink: cannot ${what} ${rows === undefined ? "" : `${rows} `}rows of ${
          this.#table!.label
        }: ${this.#scrub(errorText(error))}`,
        { cause: error },
      );
      // Still no connection after the tries above: Postgres is away, which
      // the stage runner waits out for a while (RetryHint.away) instead of
      // splitting the batch into dead letters.
      if (!signal.aborted && (connectionLost(error) || lockedOut(error))) failure.away = true;
      // The table (or its schema, or a lifted column) gone mid-run fails every write alike: the run stops rather than dead-letter every item to come, as a Qdrant
      // collection gone does.
      if (TABLE_GONE.has((error as { code?: string }).code ?? "")) failure.endsRun = true;
      throw failure;
    }
  }

  /**
   * One statement on the pool (open again if a silent server closed it),
   * cancelled when `signal` aborts. A server that took the statement and
   * stopped answering (frozen, or a network path that drops packets) would
   * hold it for ever: past its deadline the pool is closed (the next try
   * opens a new one) and the statement fails. The deadline is `timeout`
   * and a grace, in which a working server's statement_timeout fires
   * first, plus a `timeout` for each round of statements queued ahead of
   * this one for the pool's connections: waiting in a busy pool is not
   * silence.
   */
  async #once(
    query: (sql: Sql) => postgres.PendingQuery<postgres.Row[]>,
    signal: AbortSignal,
  ): Promise<postgres.RowList<postgres.Row[]>> {
    signal.throwIfAborted();
    await this.open();
    const pool = this.#sql!;
    const { timeout, maxConnections } = this.#config;
    const ahead = Math.max(0, this.#inFlight - maxConnections + 1);
    const deadline = silentAfter(timeout * (1 + Math.ceil(ahead / maxConnections)));
    this.#inFlight++;
    const statement = query(pool);
    const cancel = () => statement.cancel();
    signal.addEventListener("abort", cancel, { once: true });
    try {
      return await answered(statement, deadline);
    } catch (error) {
      if (error instanceof NoAnswerError) await this.#dropPool(pool);
      throw error;
    } finally {
      this.#inFlight--;
      signal.removeEventListener("abort", cancel);
    }
  }

  /**
   * Forgets `pool` if it is still the sink's, so the next statement
   * connects again, and destroys its connections: the statements still on
   * it fail as connection errors, and are tried again on the new one.
   */
  async #dropPool(pool: Sql): Promise<void> {
    if (this.#sql === pool) {
      this.#sql = undefined;
      this.#ready = undefined;
      this.#vectorCheck = undefined;
    }
    await pool.end({ timeout: 0 });
  }
}

/**
 * An error of opening (again) the pool, in the sink's words: one whose
 * connection failed (refused while Postgres restarts, a server gone silent)
 * keeps the failure's code, so #run tries the statement again and the
 * stage runner then waits Postgres out (RetryHint.away). In plain words
 * only, a write after a silent server dropped the pool failed as any other:
 * retried and split, a review's restart sent good merge updates to dead
 * letters. The cause is not kept: postgres.js's error quotes the query.
 */
function reconnectable(message: string, error: unknown): Error & RetryHint {
  const lost = connectionLost(error) || error instanceof NoAnswerError;
  const wrapped: Error & RetryHint & { code?: unknown } = new Error(message);
  if (lost) {
    wrapped.code = (error as { code?: unknown })?.code ?? "CONNECTION_SILENT";
    wrapped.away = true;
  }
  return wrapped;
}

/**
 * SQLSTATEs of a table that no write can reach, whatever its rows:
 * undefined_table, invalid_schema_name and undefined_column (a lifted
 * column dropped). Not insufficient_privilege (42501): a row-level security
 * policy refuses single rows with it, an item's own fault.
 */
const TABLE_GONE = new Set(["42P01", "3F000", "42703"]);

/** How long past `timeout` the client waits: the server's statement_timeout fires first on a server that answers. */
const GRACE_MS = 5_000;

/** The deadline of opening when `timeout` is `0s` (no statement timeout). */
const OPEN_TIMEOUT_MS = 30_000;

/**
 * When a statement whose server-side limit is `timeout` is given up: the
 * grace past it, or never for `0s`, no statement timeout. The server runs
 * such a statement to its end, so giving up on it at the grace sent rows it
 * wrote to dead letters.
 */
function silentAfter(timeout: number): number {
  return timeout === 0 ? Number.POSITIVE_INFINITY : timeout + GRACE_MS;
}

/** The server took the statement and never answered, past its own timeout. */
class NoAnswerError extends Error {
  /** RetryHint.service: the server's failure, whatever the rows. */
  readonly service = true;
  constructor(ms: number) {
    super(`no answer within ${ms}ms (the server took the connection and went silent)`);
    this.name = "NoAnswerError";
  }
}

/** `what`, or NoAnswerError after `ms` (never for Infinity). */
async function answered<T>(what: PromiseLike<T>, ms: number): Promise<T> {
  if (ms === Number.POSITIVE_INFINITY) return await what;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const silent = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NoAnswerError(ms)), ms);
  });
  try {
    return await Promise.race([what, silent]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * ```yaml
 * - publish:
 *     - postgres:
 *         url: ${DATABASE_URL}
 *         table: public.trends
 *         columns: [title, url, publishedAt, language, { wordCount: integer }]
 *         vector: auto
 *         index: hnsw
 *         timeout: 30s
 *         maxConnections: 4
 * ```
 */
export const postgresSink: SinkSpec<PostgresSinkConfig> = {
  kind: "postgres",
  summary: "Upserts items into a Postgres table by item id, vectors in pgvector or float8[].",
  schema: postgresSinkSchema,
  // Its lines start with the flow's name, as every other line of a run does.
  create: (config, env) =>
    new PostgresSink(config, withPrefix(env.log, `${env.flow}: `), env.vectors),
};

function revisionOf(item: Envelope<RawItem>): number {
  return typeof item.payload.revision === "number" ? item.payload.revision : 0;
}

/**
 * The lock_timeout of a sink whose statement_timeout is `timeout` (above
 * 0, which is none, for both): a little shorter, so a statement that
 * waited on a lock the whole time fails as locked out (lockedOut), not as
 * slow.
 */
function lockTimeout(timeout: number): number {
  return Math.max(1, Math.floor(timeout * 0.9));
}

/**
 * Whether a statement waited out its lock_timeout on a lock another session
 * holds: no row is to blame, and splitting the batch sent good items to
 * dead letters while a 60 s table lock lasted (5 of 60,000 in a review).
 */
export function lockedOut(error: unknown): boolean {
  return (error as { code?: unknown })?.code === "55P03";
}

/**
 * Whether a statement lost a race with another session's and may run again
 * as it is: a serialization failure (40001; the sink's writes are
 * serializable) or a deadlock (40P01). A delete and an upsert of one id by
 * two processes at the same moment, each reading before the other
 * committed, would leave the deleted item in the table; Postgres fails one
 * of them instead, and the retry's new snapshot sees what the other wrote.
 * Postgres tracks what a statement read by index page, not by id, so
 * writes of different ids by several processes can fail this way too,
 * mostly where deletes are among them: such a statement runs again at once.
 */
export function serializationFailure(error: unknown): boolean {
  const code = String((error as { code?: unknown })?.code ?? "");
  return code === "40001" || code === "40P01";
}

/**
 * Whether a statement failed because its connection did (postgres.js's
 * connection codes, SQLSTATE class 08, an administrator's or a crash's
 * shutdown of the backend: 57P01-57P03, or the socket's own: a server that
 * refuses connections while it restarts, or is unreachable), not because
 * of what it said.
 */
export function connectionLost(error: unknown): boolean {
  const code = String((error as { code?: unknown })?.code ?? "");
  return /^CONNECTION_|^CONNECT_TIMEOUT$|^08|^57P0[123]$|^E(CONNREFUSED|CONNRESET|PIPE|HOSTUNREACH|NETUNREACH|TIMEDOUT)$/
    .test(code);
}
