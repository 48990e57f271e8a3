import { z } from "zod";

/**
 * The Postgres types a lifted column may have, by the name a flow file uses,
 * each mapped to the name `format_type()` reports, so the same string both
 * creates a column and checks an existing one. This map is the only way a
 * type name reaches SQL: a flow file picks a key, never writes SQL.
 */
export const COLUMN_TYPES = {
  text: "text",
  integer: "integer",
  bigint: "bigint",
  float8: "double precision",
  boolean: "boolean",
  timestamptz: "timestamp with time zone",
  jsonb: "jsonb",
  "text[]": "text[]",
} as const;

export type ColumnType = keyof typeof COLUMN_TYPES;

/** Types of the fields engine/item.ts declares; any other field is text unless the flow says. */
const KNOWN_FIELDS: Record<string, ColumnType> = {
  title: "text",
  url: "text",
  text: "text",
  author: "text",
  publishedAt: "timestamptz",
  guid: "text",
  tags: "text[]",
  engagement: "jsonb",
  deleted: "boolean",
  canonicalUrl: "text",
  domain: "text",
  wordCount: "integer",
  language: "text",
  keywords: "text[]",
  // A merged story's fields (engine/item.ts MergedFields): revision sorts as a number.
  sources: "jsonb",
  revision: "integer",
  lastSeenAt: "timestamptz",
};

/**
 * What most queries filter or show: a ValidItem's title and url, the date,
 * and the Enricher's language (null when the flow has no enrich stage).
 * Everything else stays queryable in `payload`.
 */
/** Epoch ms of 0000-01-01 and 10000-01-01 (UTC): the years an ISO date writes in four digits. */
const YEAR_0 = -62167219200000;
const YEAR_10000 = 253402300800000;

export const DEFAULT_COLUMNS = ["title", "url", "publishedAt", "language"];

/** Columns the sink itself writes; a lifted field may not take one of these names. */
export const RESERVED_COLUMNS = ["id", "payload", "vector", "source", "seen_at", "updated_at"];

/** A payload field with a column of its own. */
export interface LiftedColumn {
  field: string;
  /** snake_case of the field: publishedAt -> published_at. */
  column: string;
  type: ColumnType;
}

/** publishedAt -> published_at, canonicalUrl -> canonical_url; other names stay as they are. */
export function columnName(field: string): string {
  return field.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}

/** Postgres cuts longer identifiers short without an error, so a longer name is refused. */
export const MAX_IDENTIFIER_BYTES = 63;

const typeNames = Object.keys(COLUMN_TYPES) as ColumnType[];
const ENTRY_HELP = `a field name, or { field: type } with a type of ${typeNames.join(", ")}`;

/** `title` (typed from the item types, else text) or `{ score: float8 }`: a field and its type. */
const columnEntry = z.unknown().transform((entry, ctx): [string, ColumnType | undefined] => {
  const fail = (message: string) => {
    ctx.issues.push({ code: "custom", message, input: entry });
    return z.NEVER;
  };
  let field: unknown = entry;
  let type: unknown;
  if (entry !== null && typeof entry === "object" && !Array.isArray(entry)) {
    const pairs = Object.entries(entry);
    if (pairs.length !== 1) return fail(`expected ${ENTRY_HELP}; got ${pairs.length} fields`);
    [[field, type]] = pairs;
    if (!typeNames.includes(type as ColumnType)) {
      return fail(`unknown column type ${JSON.stringify(type)}; types: ${typeNames.join(", ")}`);
    }
  }
  if (typeof field !== "string" || field === "") return fail(`expected ${ENTRY_HELP}`);
  if (field.includes(".")) {
    return fail("a field name cannot contain a dot (nested fields are not lifted)");
  }
  return [field, type as ColumnType | undefined];
});

export const columnsSchema = z.array(columnEntry)
  .transform((entries, ctx): LiftedColumn[] => {
    const out: LiftedColumn[] = [];
    for (const [i, entry] of entries.entries()) {
      const [field, given] = entry;
      const type = given ?? KNOWN_FIELDS[field] ?? "text";
      const column = columnName(field);
      const issue = (message: string) =>
        ctx.issues.push({ code: "custom", message, input: entry, path: [i] });
      if (RESERVED_COLUMNS.includes(column)) {
        issue(`field ${JSON.stringify(field)} would take the sink's own column "${column}"`);
      } else if (out.some((c) => c.column === column)) {
        issue(`two fields map to the column "${column}"`);
      } else if (new TextEncoder().encode(column).length > MAX_IDENTIFIER_BYTES) {
        issue(`column "${column}" is longer than Postgres's ${MAX_IDENTIFIER_BYTES} bytes`);
      } else {
        out.push({ field, column, type });
      }
    }
    return out;
  });

/**
 * A payload value as its column takes it (as JSON, read by
 * json_to_recordset): a value that does not fit the type is stored as null
 * rather than failing the batch, since the payload keeps the original.
 */
export function columnValue(type: ColumnType, value: unknown): unknown {
  if (value === undefined || value === null) return null;
  switch (type) {
    case "text":
      return typeof value === "string" ? value : JSON.stringify(value);
    case "integer":
    case "bigint": {
      const n = Math.round(toNumber(value));
      return Math.abs(n) < (type === "integer" ? 2 ** 31 : 2 ** 53) ? n : null;
    }
    case "float8": {
      const n = toNumber(value);
      return Number.isFinite(n) ? n : null;
    }
    case "boolean":
      return typeof value === "boolean" ? value : null;
    case "timestamptz": {
      if (typeof value !== "string" && typeof value !== "number") return null;
      const ms = typeof value === "number" ? value : Date.parse(value);
      // Years 0 to 9999 only: toISOString writes others as +0YYYYY or -0YYYYY, which
      // Postgres refuses, and the item was dead-lettered for a column it may leave null.
      return Number.isFinite(ms) && ms >= YEAR_0 && ms < YEAR_10000
        ? new Date(ms).toISOString()
        : null;
    }
    case "jsonb":
      return value;
    case "text[]":
      return Array.isArray(value)
        ? value.map((v) => v === null || v === undefined ? null : String(v))
        : null;
  }
}

/** A number or a numeric string as a number; anything else as NaN (which no check passes). */
function toNumber(value: unknown): number {
  if (typeof value === "number") return value;
  return typeof value === "string" && value.trim() !== "" ? Number(value) : NaN;
}
