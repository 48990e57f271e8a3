/**
 * Tests against a real Postgres: TEST_DATABASE_URL, by default the local
 * server (postgres://postgres@127.0.0.1:5432/test). Each test gets a fresh
 * schema of its own, dropped with everything in it afterwards, and a URL
 * whose search_path starts with that schema, so an unqualified table lands
 * there too. Tests never touch tables they did not make, and can run beside
 * each other and beside real data.
 *
 * When the server cannot be reached, tests declared with `pgTest` are
 * ignored with a printed reason, except in CI (CI=true), where they fail:
 * a CI run that silently skipped them would prove nothing.
 *
 * `withPglite` serves an in-process Postgres with pgvector for the tests
 * of the pgvector paths, which need no server at all.
 */
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { maskUrl } from "../adapters/sinks/postgres_sink.ts";

export const PG_URL = Deno.env.get("TEST_DATABASE_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";

/** Options for test connections: quiet, and small. */
export const PG_OPTIONS = { max: 2, onnotice: () => {}, connect_timeout: 5 } as const;

async function probe(): Promise<string | undefined> {
  const sql = postgres(PG_URL, { ...PG_OPTIONS, max: 1, connect_timeout: 2 });
  try {
    await sql`select 1`;
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message || String(error) : String(error);
  } finally {
    await sql.end({ timeout: 0 });
  }
}

/** Why Postgres cannot be used here, or undefined when it can. */
export const pgUnreachable: string | undefined = await probe();
const inCI = Deno.env.get("CI") === "true";
if (pgUnreachable !== undefined && !inCI) {
  console.warn(
    `Postgres at ${
      maskUrl(PG_URL)
    } is not reachable (${pgUnreachable}): tests that need it are ignored`,
  );
}

/** What a test gets: its own schema, a connection, and a URL to hand a sink. */
export interface PgScope {
  readonly schema: string;
  /**
   * The server's URL; on the real server with search_path=<schema>,public
   * (PGlite ignores startup parameters, so tests qualify their tables).
   */
  readonly url: string;
  readonly sql: postgres.Sql;
  /** `<schema>.<name>`, for a sink's `table`. */
  table(name: string): string;
  /** The table as SQL: `"<schema>"."<name>"`. */
  ident(name: string): postgres.Fragment;
  /** Rows in a table of the schema. */
  count(name: string): Promise<number>;
}

/**
 * Runs `fn` in a fresh schema of the server at `baseUrl` (default PG_URL),
 * dropped afterwards (with everything in it) whatever happens.
 */
export async function withPgSchema<T>(
  fn: (pg: PgScope) => Promise<T>,
  baseUrl = PG_URL,
): Promise<T> {
  const schema = `millrace_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const url = `${baseUrl}${baseUrl.includes("?") ? "&" : "?"}search_path=${schema},public`;
  const admin = postgres(baseUrl, PG_OPTIONS);
  await admin`create schema ${admin(schema)}`;
  const sql = postgres(url, PG_OPTIONS);
  const ident = (name: string) => sql`${sql(schema)}.${sql(name)}`;
  const scope: PgScope = {
    schema,
    url,
    sql,
    table: (name) => `${schema}.${name}`,
    ident,
    count: async (name) => {
      const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from ${ident(name)}`;
      return n;
    },
  };
  try {
    return await fn(scope);
  } finally {
    await sql.end({ timeout: 5 });
    await admin`drop schema ${admin(schema)} cascade`;
    await admin.end({ timeout: 5 });
  }
}

/** A Deno.test that needs Postgres, run in a fresh schema (see the module comment). */
export function pgTest(name: string, fn: (pg: PgScope) => Promise<void>): void {
  Deno.test({
    name,
    ignore: pgUnreachable !== undefined && !inCI,
    fn: async () => {
      if (pgUnreachable !== undefined) {
        throw new Error(
          `Postgres at ${
            maskUrl(PG_URL)
          } is not reachable (${pgUnreachable}), and CI=true requires it`,
        );
      }
      await withPgSchema(fn);
    },
  });
}

/**
 * Runs `fn` against PGlite (Postgres compiled to WASM, from npm) with the
 * pgvector extension, served over the wire protocol on a free port, so
 * postgres.js talks to it as to any server. It is how the pgvector paths
 * are tested where the real server has no pgvector (Debian's package is not
 * in every repository). One session shared by all connections: startup
 * parameters (search_path, statement_timeout) are ignored. Takes a few
 * seconds to start, so share one between cases.
 *
 * PGlite runs in a child process with a deno.json and lock file of its own
 * (tests/pglite/): test-only packages must stay out of the project's lock
 * file, whose every package Deno downloads on the first `deno task run`.
 */
export async function withPglite<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const dir = new URL("./pglite/", import.meta.url);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--config",
      fileURLToPath(new URL("deno.json", dir)),
      "--lock",
      fileURLToPath(new URL("deno.lock", dir)),
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-env",
      fileURLToPath(new URL("serve.ts", dir)),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const output = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await output.read();
      if (done) throw new Error("PGlite (tests/pglite/serve.ts) exited before it listened");
      text += value;
    }
    const address = text.slice(0, text.indexOf("\n")).trim();
    return await fn(`postgres://postgres@${address}/postgres`);
  } finally {
    await child.stdin.close();
    await output.cancel();
    await child.status;
  }
}
