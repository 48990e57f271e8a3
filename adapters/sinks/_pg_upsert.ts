import type postgres from "postgres";
import { type Envelope, MERGED_FIELDS, type RawItem } from "../../engine/item.ts";
import { COLUMN_TYPES, type LiftedColumn } from "./_pg_columns.ts";
import { commaList, deletedSql, type Table, tableSql } from "./_pg_table.ts";

type Sql = postgres.Sql;
type Fragment = postgres.PendingQuery<postgres.Row[]>;

/**
 * A payload's merge revision; 0 when it has none (no merge, or an older row)
 * or when it is not a number: an item's own field of that name (a wiki
 * edit's id past 2^31, "v2") failed the cast to int, and with it every write
 * of that id after its first.
 */
function revision(sql: Sql, payload: Fragment): Fragment {
  return sql`(case when jsonb_typeof(${payload}->'revision') = 'number'
    then (${payload}->>'revision')::numeric else 0 end)`;
}

/**
 * The merged fields of `from` as a jsonb object to lay over a payload;
 * engagement is `base`'s and `from`'s together, each count at its maximum
 * (as the Deduper merges them), so fields the merge does not track stay and
 * a count grown since is kept.
 */
function mergedOf(sql: Sql, from: Fragment, base: Fragment): Fragment {
  const counts = (payload: Fragment) =>
    sql`case when jsonb_typeof(${payload}->'engagement') = 'object'
      then ${payload}->'engagement' else '{}'::jsonb end`;
  return sql`jsonb_build_object(
    'sources', ${from}->'sources',
    'engagement', (select coalesce(jsonb_object_agg(key, case
        when jsonb_typeof(f.value) = 'number' and jsonb_typeof(b.value) = 'number'
          and (b.value)::numeric > (f.value)::numeric then b.value
        else coalesce(f.value, b.value) end), '{}'::jsonb)
      from jsonb_each(${counts(from)}) f full join jsonb_each(${counts(base)}) b using (key)),
    'lastSeenAt', ${from}->'lastSeenAt',
    'revision', ${from}->'revision')`;
}

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
  // A merged story's row (it holds its sightings) keeps its merged fields against a copy of
  // a lower revision (a merge update travels faster than its story's first copy) or of the
  // same one (a memory flow run again sends each first copy at revision 1, stamped now,
  // perhaps from another source: it rewrote every row on every run). An item's own field
  // named revision is content like any other, and its latest copy wins.
  const mine = revision(sql, sql`cur.payload`), theirs = revision(sql, sql`excluded.payload`);
  const merged = (payload: Fragment) => sql`jsonb_typeof(${payload}->'sources') = 'array'`;
  const theirsOlder = sql`(${merged(sql`cur.payload`)} and (${mine} > ${theirs} or
    (${mine} = ${theirs} and ${mine} > 0 and ${merged(sql`excluded.payload`)})))`;
  // What the row becomes, written once: the update sets it, and runs only when it differs
  // from what the row holds (comparing with the incoming row instead rewrote a story whose
  // merged fields it kept, and moved its updated_at, on every re-run).
  const payload = sql`case when ${theirsOlder} then excluded.payload || ${
    mergedOf(sql, sql`cur.payload`, sql`excluded.payload`)
  } else excluded.payload end`;
  const next = [
    ...ids.map((id, i) => {
      const { field, type } = lifted[i];
      if (!MERGED_FIELDS.includes(field)) return sql`excluded.${id}`;
      // Engagement is merged count by count: its column follows the payload's.
      if (field === "engagement" && type === "jsonb") {
        return sql`case when ${theirsOlder} then (${payload})->'engagement' else excluded.${id} end`;
      }
      return sql`case when ${theirsOlder} then cur.${id} else excluded.${id} end`;
    }),
    payload,
    // The source of the sighting seen_at keeps (the first): a re-run whose copy of a story came
    // from another source first rewrote the row (updated_at and all) to name that source.
    sql`case when excluded.seen_at < cur.seen_at then excluded.source else cur.source end`,
  ];
  const set = commaList(sql, [
    ...ids.map((id, i) => sql`${id} = ${next[i]}`),
    sql`payload = ${next[ids.length]}`,
    ...(withVector ? [sql`vector = coalesce(excluded.vector, cur.vector)`] : []),
    sql`source = ${next[ids.length + 1]}`,
    sql`seen_at = least(cur.seen_at, excluded.seen_at)`,
    sql`updated_at = now()`,
  ]);
  const held = commaList(sql, [
    ...ids.map((id) => sql`cur.${id}`),
    sql`cur.payload`,
    sql`cur.source`,
  ]);
  const vectorChanged = withVector
    ? sql`or (excluded.vector is not null and cur.vector is distinct from excluded.vector)`
    : sql``;
  return sql`
    insert into ${tableSql(sql, table)} as cur (${columns})
    select ${values} from json_to_recordset(${json}::text::json) as x(${record})
    where ${notDeleted(sql, table)}
    on conflict (id) do update set ${set}
    where row(${held}) is distinct from row(${commaList(sql, next)})
      or cur.seen_at is distinct from least(cur.seen_at, excluded.seen_at)
      ${vectorChanged}`;
}

/**
 * Applies merge updates (Envelope.update): each row's payload gets the
 * update's merged fields when the update's revision is higher than the
 * row's, so updates applied late, twice, or by several processes in any
 * order leave the highest revision, which holds every sighting. An update
 * whose story has no row yet inserts one holding only the merged fields
 * (lifted columns null), which the story's first copy then fills in
 * (upsertSql keeps the higher revision's merged fields).
 */
export function mergeSql(
  sql: Sql,
  table: Table,
  lifted: LiftedColumn[],
  json: string,
): Fragment {
  const merged = lifted.filter((c) => MERGED_FIELDS.includes(c.field));
  const ids = merged.map((c) => sql(c.column));
  const columns = commaList(sql, [
    sql`id`,
    ...ids.map((id) => sql`${id}`),
    sql`payload`,
    sql`source`,
    sql`seen_at`,
  ]);
  const values = commaList(sql, [
    sql`x.id`,
    ...ids.map((id) => sql`x.${id}`),
    sql`x.payload`,
    sql`x.source`,
    sql`x.seen_at`,
  ]);
  const record = commaList(sql, [
    sql`id text`,
    ...merged.map((c, i) => sql`${ids[i]} ${sql.unsafe(COLUMN_TYPES[c.type])}`),
    sql`payload jsonb`,
    sql`source text`,
    sql`seen_at timestamptz`,
  ]);
  const payload = sql`cur.payload || ${mergedOf(sql, sql`excluded.payload`, sql`cur.payload`)}`;
  const set = commaList(sql, [
    ...ids.map((id, i) =>
      // Engagement is the payload's, count by count at its maximum, keeping the keys the update
      // does not carry (a first copy's comments); sources come whole, the union, and `||` of
      // two arrays would append one to the other.
      merged[i].type === "jsonb" && merged[i].field === "engagement"
        ? sql`${id} = (${payload})->'engagement'`
        : sql`${id} = excluded.${id}`
    ),
    sql`payload = ${payload}`,
    sql`seen_at = least(cur.seen_at, excluded.seen_at)`,
    sql`updated_at = now()`,
  ]);
  return sql`
    insert into ${tableSql(sql, table)} as cur (${columns})
    select ${values} from json_to_recordset(${json}::text::json) as x(${record})
    where ${notDeleted(sql, table)} and ${heldOrNeverDeleted(sql, table)}
    on conflict (id) do update set ${set}
    where ${revision(sql, sql`cur.payload`)} < ${revision(sql, sql`excluded.payload`)}`;
}

/**
 * Updates `x` whose id has a row, or was never deleted: an update of a
 * deleted story (another source's copy, seen after the delete) would insert
 * a row of merged fields alone, which no first copy comes to fill in. Once
 * the item itself is seen again its row is back, and updates apply to it.
 */
function heldOrNeverDeleted(sql: Sql, table: Table): Fragment {
  if (!table.deletes) return sql`true`;
  return sql`(exists (select 1 from ${tableSql(sql, table)} r where r.id = x.id)
    or not exists (select 1 from ${deletedSql(sql, table)} d
      where d.tbl = ${table.name} and d.id = x.id))`;
}

/** Rows `x` whose id was not deleted at or after their seen_at (see deletedSql). */
function notDeleted(sql: Sql, table: Table): Fragment {
  if (!table.deletes) return sql`true`;
  return sql`not exists (select 1 from ${deletedSql(sql, table)} d
    where d.tbl = ${table.name} and d.id = x.id and d.seen_at >= x.seen_at)`;
}

/**
 * Deletes the rows of `json`'s ids (`[{id, seen_at}]`) first seen at or
 * before their delete, and records each delete (the latest per id), so an
 * upsert that comes after it with an older seen_at is skipped. A row first
 * seen after its delete is the item coming back, and stays.
 */
export function deleteSql(sql: Sql, table: Table, json: string): Fragment {
  if (!table.deletes) {
    return sql`
      delete from ${tableSql(sql, table)} as t
      using json_to_recordset(${json}::text::json) as d(id text, seen_at timestamptz)
      where t.id = d.id`;
  }
  return sql`
    with d as (
      select id, max(seen_at) as seen_at
      from json_to_recordset(${json}::text::json) as x(id text, seen_at timestamptz)
      group by id
    ), recorded as (
      insert into ${deletedSql(sql, table)} as cur (tbl, id, seen_at)
      select ${table.name}, id, seen_at from d
      on conflict (tbl, id) do update set seen_at = greatest(cur.seen_at, excluded.seen_at)
    )
    delete from ${tableSql(sql, table)} as t using d where t.id = d.id and t.seen_at <= d.seen_at`;
}
