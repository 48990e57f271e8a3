import type postgres from "postgres";
import type { Envelope, RawItem } from "../../engine/item.ts";
import { COLUMN_TYPES, type LiftedColumn } from "./_pg_columns.ts";
import { commaList, type Table, tableSql } from "./_pg_table.ts";

type Sql = postgres.Sql;

/**
 * The length of the batch's vectors; throws naming the first item whose
 * vector is of another length or holds a non-number (the runner then
 * splits the batch so only that item goes to dead letters).
 */
export function vectorLength(items: Envelope<RawItem>[]): number | undefined {
  let length: number | undefined;
  for (const item of items) {
    const v = item.vector;
    if (v === undefined) continue;
    length ??= v.length;
    if (v.length !== length || v.length === 0) {
      throw new Error(
        `postgres sink: item ${item.id} has a vector of ${v.length} dimensions, the batch's are ${length}`,
      );
    }
    for (const x of v) {
      if (!Number.isFinite(x)) {
        throw new Error(`postgres sink: item ${item.id} has a vector holding ${x}`);
      }
    }
  }
  return length;
}

/**
 * INSERT … SELECT FROM json_to_recordset($1) … ON CONFLICT (id) DO UPDATE,
 * skipping rows whose columns would not change.
 */
export function upsertSql(
  sql: Sql,
  table: Table,
  lifted: LiftedColumn[],
  json: string,
): postgres.PendingQuery<postgres.Row[]> {
  const withVector = table.vectorColumn;
  const ids = lifted.map((c) => sql(c.column));
  const vectorValue = table.vector === "pgvector" ? sql`x.vector::vector` : sql`x.vector`;
  const columns = commaList(sql, [
    sql`id`,
    ...ids.map((id) => sql`${id}`),
    sql`payload`,
    ...(withVector ? [sql`vector`] : []),
    sql`source`,
    sql`seen_at`,
  ]);
  const values = commaList(sql, [
    sql`x.id`,
    ...ids.map((id) => sql`x.${id}`),
    sql`x.payload`,
    ...(withVector ? [vectorValue] : []),
    sql`x.source`,
    sql`x.seen_at`,
  ]);
  const record = commaList(sql, [
    sql`id text`,
    ...lifted.map((c, i) => sql`${ids[i]} ${sql.unsafe(COLUMN_TYPES[c.type])}`),
    sql`payload jsonb`,
    ...(withVector ? [sql`vector double precision[]`] : []),
    sql`source text`,
    sql`seen_at timestamptz`,
  ]);
  const set = commaList(sql, [
    ...ids.map((id) => sql`${id} = excluded.${id}`),
    sql`payload = excluded.payload`,
    ...(withVector ? [sql`vector = coalesce(excluded.vector, cur.vector)`] : []),
    sql`source = excluded.source`,
    sql`seen_at = least(cur.seen_at, excluded.seen_at)`,
    sql`updated_at = now()`,
  ]);
  const mine = commaList(sql, [
    ...ids.map((id) => sql`cur.${id}`),
    sql`cur.payload`,
    sql`cur.source`,
  ]);
  const theirs = commaList(sql, [
    ...ids.map((id) => sql`excluded.${id}`),
    sql`excluded.payload`,
    sql`excluded.source`,
  ]);
  const vectorChanged = withVector
    ? sql`or (excluded.vector is not null and cur.vector is distinct from excluded.vector)`
    : sql``;
  return sql`
    insert into ${tableSql(sql, table)} as cur (${columns})
    select ${values} from json_to_recordset(${json}::text::json) as x(${record})
    on conflict (id) do update set ${set}
    where row(${mine}) is distinct from row(${theirs})
      or cur.seen_at is distinct from least(cur.seen_at, excluded.seen_at)
      ${vectorChanged}`;
}
