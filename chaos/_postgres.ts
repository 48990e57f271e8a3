/**
 * A scenario's own schema on the local Postgres (the one the tests use:
 * TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test),
 * dropped when the cluster closes, and the faults Postgres can be given:
 * a sleep in every insert into the sink's table, a lock that stalls it,
 * and killing the backends that are inserting.
 */
import postgres from "postgres";
import type { Cluster } from "./_cluster.ts";

export const PG_URL = Deno.env.get("TEST_DATABASE_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";

/** Why Postgres cannot be used, or undefined when it can. */
export async function pgUnreachable(): Promise<string | undefined> {
  const sql = postgres(PG_URL, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    await sql`select 1`;
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    await sql.end({ timeout: 0 });
  }
}

export class ChaosSchema {
  readonly schema = `millrace_chaos_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  readonly sql = postgres(PG_URL, { max: 3, onnotice: () => {}, connect_timeout: 5 });

  /** The sink's `table`. */
  get table(): string {
    return `${this.schema}.items`;
  }

  /** Creates the schema; it is dropped (with the sink's table) when `c` closes. */
  static async create(c: Cluster): Promise<ChaosSchema> {
    const s = new ChaosSchema();
    await s.sql`create schema ${s.sql(s.schema)}`;
    c.onClose(async () => {
      await s.sql`drop schema ${s.sql(s.schema)} cascade`.catch(() => {});
      await s.sql.end({ timeout: 5 });
    });
    return s;
  }

  /** Waits for the sink to create its table, then makes every insert statement sleep. */
  async slowInserts(c: Cluster, seconds: number): Promise<void> {
    await c.until(async () => {
      const [{ n }] = await this.sql<{ n: number }[]>`
        select count(*)::int as n from information_schema.tables
        where table_schema = ${this.schema} and table_name = 'items'`;
      return n > 0;
    }, 100);
    const fn = this.sql`${this.sql(this.schema)}.slow`;
    await this.sql`
      create function ${fn}() returns trigger language plpgsql as
      ${this.sql.unsafe(`$$ begin perform pg_sleep(${seconds}); return null; end $$`)}`;
    await this.sql`
      create trigger slow before insert on ${this.sql(this.schema)}.items
      for each statement execute function ${fn}()`;
  }

  /** Holds an exclusive lock on the table for `ms`: every write waits. */
  async stall(ms: number): Promise<void> {
    await this.sql.begin(async (tx) => {
      await tx`lock table ${tx(this.schema)}.items in exclusive mode`;
      await tx`select pg_sleep(${ms / 1000})`;
    });
  }

  /** Terminates the backends running an insert into the table; returns how many. */
  async killInserts(): Promise<number> {
    const rows = await this.sql`
      select pg_terminate_backend(pid) from pg_stat_activity
      where state = 'active' and pid <> pg_backend_pid()
        and query ilike ${"%insert into%" + this.schema + "%"}`;
    return rows.length;
  }

  /** Ids in the sink's table. */
  async ids(): Promise<Set<string>> {
    const rows = await this.sql<{ id: string }[]>`
      select id from ${this.sql(this.schema)}.items`;
    return new Set(rows.map((r) => r.id));
  }
}
