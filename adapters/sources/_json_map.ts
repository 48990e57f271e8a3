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
 * path). A target may be a dot path too (`engagement.score: points`), which
 * builds the objects on the way: the Deduper merges `engagement`'s fields.
 * A numeric `publishedAt` is read as Unix seconds (or milliseconds past
 * 1e11), a string one as a date; an unreadable date is dropped.
 */
export function mapJsonItems(
  doc: unknown,
  options: { items?: string; map?: Record<string, string> },
  name: string,
  warn?: (name: string, message: string) => void,
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
  if (objects.length < list.length && warn) {
    // Said, not dropped unsaid: "accounts for every item" holds for what a source reads too.
    const at = list.findIndex((v) => v === null || typeof v !== "object" || Array.isArray(v));
    const shown = JSON.stringify(list[at]) ?? String(list[at]);
    warn(
      name,
      `${name}: ${list.length - objects.length} of the ${list.length} elements of ${where} are ` +
        `not objects, so not items: skipped (the first, at index ${at}: ${
          shown.length > 60 ? shown.slice(0, 60) + "…" : shown
        })`,
    );
  }
  return objects.map((o) => mapObject(o as Record<string, unknown>, options.map ?? {}));
}

/** Sets `path` (dot path) of `item` to `value`, making the objects on the way (copies of shared ones). */
function setAtPath(item: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let at = item;
  for (const key of keys.slice(0, -1)) {
    const next = at[key];
    // A copy: the source object is the document's, and other items may share its parts.
    at = at[key] = next !== null && typeof next === "object" && !Array.isArray(next)
      ? { ...next as Record<string, unknown> }
      : {};
  }
  at[keys[keys.length - 1]] = value;
}

/** One object as an item: the fields in `map` renamed (see mapJsonItems). */
export function mapObject(source: Record<string, unknown>, map: Record<string, string>): RawItem {
  const item: RawItem = { ...source };
  for (const from of Object.values(map)) if (!from.includes(".")) delete item[from];
  for (const [to, from] of Object.entries(map)) {
    const value = atPath(source, from);
    if (value !== undefined) setAtPath(item, to, value);
  }
  if ("publishedAt" in item) {
    const v = item.publishedAt;
    const at = typeof v === "number" ? isoFromUnixSeconds(v < 1e11 ? v : v / 1000) : isoDate(v);
    if (at) item.publishedAt = at;
    else delete item.publishedAt;
  }
  return item;
}
