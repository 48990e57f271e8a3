/**
 * Compares what a flow did with what a test expects, field by field, and
 * says where they differ. Expected values may be placeholders for fields a
 * test cannot know in advance (ids, dates, vectors): `"{any}"`, `"{string}"`,
 * `"{number}"`, `"{integer}"`, `"{boolean}"`, `"{url}"`, `"{iso-date}"`,
 * `"{vector:256}"` (a list of 256 numbers) and `"{/regex/}"` (a string the
 * regular expression finds a match in).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { differences } from "./expect.ts";
 *
 * const found = differences(
 *   { title: "A", url: "{url}", keywords: ["a", "b"] },
 *   { title: "B", url: "https://example.com/", keywords: ["a"], domain: "example.com" },
 * );
 * assert.deepEqual(found.map((d) => d.path), [["title"], ["keywords"]]);
 * ```
 * @module
 */
import { formatPath } from "../engine/flow_error.ts";

/** One place where the actual value is not what was expected. */
export interface Difference {
  /** Where, from the root of the compared values (`["keywords", 1]`). */
  path: PropertyKey[];
  /** Absent when the expected side has nothing there (an unexpected item). */
  expected?: unknown;
  /** Absent when the actual side has nothing there (a missing field or item). */
  actual?: unknown;
  /** Why, when "expected X, got Y" would not say it: a length, a missing item. */
  note?: string;
}

type Check = (value: unknown) => boolean;

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

const SIMPLE: Record<string, Check> = {
  any: () => true,
  string: (v) => typeof v === "string",
  number: (v) => typeof v === "number",
  integer: (v) => Number.isInteger(v),
  boolean: (v) => typeof v === "boolean",
  url: (v) => typeof v === "string" && URL.canParse(v),
  "iso-date": (v) => typeof v === "string" && ISO_DATE.test(v) && !isNaN(Date.parse(v)),
};

/** The placeholder names, as a test file's error lists them. */
export const PLACEHOLDERS = [
  ...Object.keys(SIMPLE).map((k) => `{${k}}`),
  "{vector:N}",
  "{/regex/}",
];

/**
 * What a placeholder string checks, `undefined` for a string that is no
 * placeholder (compared as it is), or an error message for one that looks
 * like a placeholder but is none (`"{strnig}"`), so a typo is not taken for
 * the literal text.
 */
export function placeholder(text: string): Check | string | undefined {
  if (text.startsWith("{/") && text.endsWith("/}") && text.length > 4) {
    try {
      const re = new RegExp(text.slice(2, -2));
      return (v) => typeof v === "string" && re.test(v);
    } catch (e) {
      return `bad regular expression in ${text}: ${(e as Error).message}`;
    }
  }
  const m = /^\{([a-z][a-z-]*)(?::([^}]*))?\}$/.exec(text);
  if (!m) return undefined;
  const [, name, arg] = m;
  if (name === "vector") {
    const n = Number(arg);
    if (!(Number.isInteger(n) && n > 0)) {
      return `{vector:N} needs the number of dimensions, e.g. {vector:256}; got ${text}`;
    }
    return (v) => Array.isArray(v) && v.length === n && v.every((x) => typeof x === "number");
  }
  if (SIMPLE[name] && arg === undefined) return SIMPLE[name];
  return `unknown placeholder ${text}; known: ${PLACEHOLDERS.join(", ")}`;
}

/**
 * Where `actual` differs from `expected`. A map expected matches a map
 * holding at least its fields (others are not compared) unless `exact`; a
 * list must have the same length and match item by item, in order.
 */
export function differences(
  expected: unknown,
  actual: unknown,
  opts: { exact?: boolean } = {},
  path: PropertyKey[] = [],
): Difference[] {
  if (typeof expected === "string") {
    const check = placeholder(expected);
    if (typeof check === "function") return check(actual) ? [] : [{ path, expected, actual }];
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return [{ path, expected, actual }];
    if (expected.length !== actual.length) {
      return [{
        path,
        expected,
        actual,
        note: `expected ${expected.length} items, got ${actual.length}`,
      }];
    }
    return expected.flatMap((e, i) => differences(e, actual[i], opts, [...path, i]));
  }
  if (isMap(expected)) {
    if (!isMap(actual)) return [{ path, expected, actual }];
    const found = Object.entries(expected).flatMap(([k, e]) =>
      k in actual
        ? differences(e, actual[k], opts, [...path, k])
        // "{any}" is a part not checked: whether it is there at all included.
        : e === "{any}"
        ? []
        : [{ path: [...path, k], expected: e, note: "missing" }]
    );
    if (!opts.exact) return found;
    const extra = Object.keys(actual).filter((k) => !(k in expected));
    return [...found, ...extra.map((k) => ({ path: [...path, k], actual: actual[k] }))];
  }
  return Object.is(expected, actual) ? [] : [{ path, expected, actual }];
}

/**
 * Matches two lists whose order the flow does not fix (items written by
 * concurrent batches), one to one, as many pairs as can be (a maximum
 * bipartite matching, by augmenting paths): taking the first actual item
 * each expected one matches would let `{title: "{string}"}` take the item
 * a later, stricter entry needed, and fail a test that can pass. One left
 * unmatched is shown against the closest unclaimed actual item, then any
 * actual item still unclaimed is reported as unexpected.
 */
export function listDifferences(
  expected: readonly unknown[],
  actual: readonly unknown[],
  path: PropertyKey[],
): Difference[] {
  const fits = expected.map((e) =>
    actual.flatMap((a, j) => differences(e, a).length === 0 ? [j] : [])
  );
  /** The expected item holding each actual one. */
  const holder = new Map<number, number>();
  const place = (i: number, tried: Set<number>): boolean => {
    for (const j of fits[i]) {
      if (tried.has(j)) continue;
      tried.add(j);
      const other = holder.get(j);
      if (other === undefined || place(other, tried)) {
        holder.set(j, i);
        return true;
      }
    }
    return false;
  };
  const unmatched: number[] = [];
  expected.forEach((_, i) => {
    if (!place(i, new Set())) unmatched.push(i);
  });
  const claimed = new Set(holder.keys());
  const found: Difference[] = [];
  for (const i of unmatched) {
    let best: { j: number; diffs: Difference[] } | undefined;
    actual.forEach((a, j) => {
      if (claimed.has(j)) return;
      const diffs = differences(expected[i], a, {}, [...path, i]);
      if (!best || diffs.length < best.diffs.length) best = { j, diffs };
    });
    if (best) {
      claimed.add(best.j);
      found.push(...best.diffs);
    } else found.push({ path: [...path, i], expected: expected[i], note: "not found" });
  }
  actual.forEach((a, j) => {
    if (!claimed.has(j)) found.push({ path, actual: a, note: "not expected" });
  });
  return found;
}

function isMap(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** How a difference's expected and actual lines are coloured (a terminal's green and red). */
export interface Paint {
  red(s: string): string;
  green(s: string): string;
}

const PLAIN: Paint = { red: (s) => s, green: (s) => s };

/** One difference, as a person reads it: the field's path, then expected and actual. */
export function showDifference(d: Difference, paint: Paint = PLAIN): string {
  const at = formatPath(d.path) || "(result)";
  const expected = "expected" in d ? paint.green(`    expected: ${show(d.expected)}`) : "";
  const actual = "actual" in d ? paint.red(`    actual:   ${show(d.actual)}`) : "";
  return [`  ${at}${d.note ? `: ${d.note}` : ""}`, expected, actual].filter(Boolean).join("\n");
}

/** JSON on one line, with long number lists (vectors) and long texts cut short. */
function show(value: unknown): string {
  if (value === undefined) return "nothing";
  return JSON.stringify(value, (_key, v) => {
    if (Array.isArray(v) && v.length > 8 && v.every((x) => typeof x === "number")) {
      return `[${v.slice(0, 3).map((x) => +x.toFixed(4)).join(", ")}, … ${v.length} numbers]`;
    }
    if (typeof v === "string" && v.length > 200) return `${v.slice(0, 200)}… (${v.length} chars)`;
    return v;
  });
}
