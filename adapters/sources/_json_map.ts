import type { RawItem } from "../../engine/item.ts";
import { isoDate, isoFromUnixSeconds } from "./_parse_date.ts";

/** The value at a dot path ("data.children", "author.name"); "" is the value itself. */
export function atPath(value: unknown, path: string): unknown {
  if (!path) return value;
  let v = value;
  for (const key of path.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/**
 * Items of an arbitrary JSON document: the objects of the array at `items`,
 * each copied with the fields in `map` renamed (target field: source dot
 * path). A numeric `publishedAt` is read as Unix seconds (or milliseconds
 * past 1e11), a string one as a date; an unreadable date is dropped.
 */
export function mapJsonItems(
  doc: unknown,
  options: { items?: string; map?: Record<string, string> },
  name: string,
): RawItem[] {
  const list = atPath(doc, options.items ?? "");
  const where = options.items ? `"${options.items}"` : "the document";
  if (!Array.isArray(list)) {
    throw new Error(
      `${name}: ${where} is not an array of items (set items: to the dot path of one)`,
    );
  }
  const objects = list.filter((v) => v !== null && typeof v === "object" && !Array.isArray(v));
  if (list.length && !objects.length) {
    throw new Error(
      `${name}: ${where} holds no objects (items: should point at an array of objects)`,
    );
  }
  return objects.map((o) => mapObject(o as Record<string, unknown>, options.map ?? {}));
}

function mapObject(source: Record<string, unknown>, map: Record<string, string>): RawItem {
  const item: RawItem = { ...source };
  for (const from of Object.values(map)) if (!from.includes(".")) delete item[from];
  for (const [to, from] of Object.entries(map)) {
    const value = atPath(source, from);
    if (value !== undefined) item[to] = value;
  }
  if ("publishedAt" in item) {
    const v = item.publishedAt;
    const at = typeof v === "number" ? isoFromUnixSeconds(v < 1e11 ? v : v / 1000) : isoDate(v);
    if (at) item.publishedAt = at;
    else delete item.publishedAt;
  }
  return item;
}
