import type postgres from "postgres";
import type { RawItem } from "../../engine/item.ts";
import { parseTableName, tableSql } from "./_pg_table.ts";

type Sql = postgres.Sql;

/** One neighbour: the row's id, its payload, and its cosine distance (1 - cosine) to the query. */
export interface Neighbour {
  id: string;
  distance: number;
  payload: RawItem;
}

/**
 * The `k` rows whose vectors are closest to `vector` by cosine distance:
 * with pgvector its `<=>` operator (which an HNSW or IVFFlat index serves),
 * with a double precision[] column the cosine computed in SQL (a scan of
 * the table, fine for checks and small tables). Proves what the sink
 * stored is usable for search.
 *
 * @example
 * ```ts ignore
 * const [best] = await nearest(sql, "public.trends", queryVector, 5);
 * console.log(best.payload.title, best.distance);
 * ```
 */
export async function nearest(
  sql: Sql,
  table: string,
  vector: readonly number[],
  k: number,
): Promise<Neighbour[]> {
  const parsed = parseTableName(table);
  if ("error" in parsed) throw new Error(parsed.error);
  const [found] = await sql<{ schema: string; type: string }[]>`
    select n.nspname as schema, format_type(a.atttypid, a.atttypmod) as type
    from pg_attribute a join pg_class c on c.oid = a.attrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = coalesce(${parsed.schema ?? null}, current_schema())
      and c.relname = ${parsed.name} and a.attname = 'vector' and not a.attisdropped`;
  if (!found) throw new Error(`table ${table} has no vector column`);
  const t = tableSql(sql, { schema: found.schema, name: parsed.name });
  if (found.type.startsWith("vector")) {
    // Exactly the shape pgvector's HNSW index serves: ORDER BY distance LIMIT k.
    const distance = sql`vector <=> ${`[${vector.join(",")}]`}::text::vector`;
    return await sql<Neighbour[]>`
      select id, payload, ${distance} as distance from ${t}
      where vector is not null order by ${distance} limit ${k}`;
  }
  const distance = sql`1 - (select sum(a * b) / nullif(sqrt(sum(a * a)) * sqrt(sum(b * b)), 0)
          from unnest(vector, ${vector as number[]}::float8[]) as u(a, b))`;
  return await sql<Neighbour[]>`
    select id, payload, ${distance} as distance from ${t}
    where vector is not null order by ${distance} nulls last, id limit ${k}`;
}
