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
    // Where the arrays are, when there are some: "set items: to the dot path of one" could not
    // be followed for a document that holds none (one object, as an API's single-item answer).
    const arrays = arrayPaths(doc, "", 4).slice(0, 3);
    throw new Error(
      `${name}: ${where} is not an array of items (it is ${shape(list)}; ${
        Array.isArray(doc) && hasObjects(doc)
          ? "the document itself is an array of them: leave items: out"
          : arrays.length
          ? `set items: to the dot path of an array of them: ${arrays.join(", ")}`
          : "the document holds no array of objects that a dot path reaches, which a json " +
            "source reads its items from"
      })`,
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
  if (warn && options.map) {
    const check = new MapCheck(options.map);
    for (const o of objects) check.saw(o as Record<string, unknown>);
    check.say(objects.length, `${name}: `, `of ${where}`, warn);
  }
  return objects.map((o) => mapObject(o as Record<string, unknown>, options.map ?? {}));
}

/**
 * Which fields a source's `map` reads no item has: a misspelt name
 * (`title: headlin`) left every item without the field, to be refused by
 * validate one by one with no word of why, where a dedupe key or an input
 * template that names no field is said once.
 */
export class MapCheck {
  /** The map's entries whose source path no item seen so far has. */
  readonly #unseen: Map<string, string>;
  #items = 0;

  constructor(map: Record<string, string>) {
    this.#unseen = new Map(Object.entries(map));
  }

  /** Notes the fields `source` has (the object before it is mapped). */
  saw(source: Record<string, unknown>): void {
    this.#items++;
    for (const [to, from] of this.#unseen) {
      if (atPath(source, from) !== undefined) this.#unseen.delete(to);
    }
  }

  /**
   * Says, once per entry (`warn` is keyed by its first argument), each entry
   * none of the `items` seen so far had, when there were some.
   */
  say(
    items: number,
    prefix: string,
    where: string,
    warn: (key: string, message: string) => void,
  ): void {
    if (this.#items === 0 || items === 0) return;
    for (const [to, from] of this.#unseen) {
      warn(
        `map ${to}`,
        `${prefix}map: { ${to}: ${from} } reads "${from}", which none of the ${items} items ` +
          `${where} has: ${to} is left as the item has it (check the field name)`,
      );
    }
  }
}

/**
 * The dot paths of the arrays of objects in `value` (items, unlike an HN
 * story's `kids`, a list of ids) down to `depth` levels, `at` its own path.
 */
function arrayPaths(value: unknown, at: string, depth: number): string[] {
  if (depth === 0 || value === null || typeof value !== "object" || Array.isArray(value)) return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([key, v]) => {
    if (key.includes(".") || key === "") return []; // no dot path reaches it
    const path = at ? `${at}.${key}` : key;
    if (!Array.isArray(v)) return arrayPaths(v, path, depth - 1);
    return hasObjects(v) ? [path] : [];
  });
}

function hasObjects(list: unknown[]): boolean {
  return list.some((e) => e !== null && typeof e === "object" && !Array.isArray(e));
}

/** What a JSON value is, in words. */
function shape(value: unknown): string {
  if (value === undefined) return "not there";
  if (value === null) return "null";
  return typeof value === "object" ? "one object" : `a ${typeof value}`;
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
