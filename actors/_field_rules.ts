import { z } from "zod";
import type { RawItem } from "../engine/item.ts";
import { maskUrlsIn } from "../engine/mask_url.ts";

const FIELD_TYPES = ["string", "number", "integer", "boolean", "array", "object"] as const;
type FieldType = (typeof FIELD_TYPES)[number];

/**
 * The rules of one field. `defaultType` is the type min/max lengths are
 * checked against when the rule gives none (`title` and `text` are strings).
 */
export const fieldRule = (defaultType?: FieldType) =>
  z.strictObject({
    type: z.enum(FIELD_TYPES).optional()
      .describe("The JSON type the value must have; default: any (string when `pattern` is set)."),
    min: z.number().optional()
      .describe(
        "Least length of a string (characters), entries of an array, or value of a number; default none.",
      ),
    max: z.number().optional()
      .describe(
        "Greatest length of a string (characters), entries of an array, or value of a number; default none.",
      ),
    enum: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1).optional()
      .describe("The only values allowed; default any."),
    pattern: z.string().refine(isRegExp, { message: "pattern is not a valid regular expression" })
      .optional().describe(
        "A regular expression (Unicode mode) a string value must match; default none.",
      ),
  }).refine((r) => r.min === undefined || r.max === undefined || r.min <= r.max, {
    message: "min must not be greater than max",
  }).superRefine((r, ctx) => {
    // A length is never negative: such a bound is a typo that would pass every value.
    const type = r.type ?? (r.pattern !== undefined ? "string" : defaultType);
    if (type !== "string" && type !== "array") return;
    for (const key of ["min", "max"] as const) {
      const n = r[key];
      if (n !== undefined && n < 0) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `a length cannot be negative, got ${n}; give 0 or more` +
            (r.type === undefined && r.pattern === undefined
              ? " (or type: number to bound a number's value)"
              : ""),
        });
      }
    }
  }).describe("Rules for one payload field; they apply only when the field is present.");

export const fieldRuleSchema = fieldRule();

export type FieldRule = z.output<typeof fieldRuleSchema>;

/** One rule over a payload: the reason it fails, or undefined when it holds. */
export type Check = (payload: RawItem) => string | undefined;

/** Absent, null, blank or an empty list: what `require` refuses and field rules skip. */
export function isEmpty(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (typeof value === "string") return value.trim() === "";
  return Array.isArray(value) && value.length === 0;
}

/**
 * The checks of one field's rule, in the order type, enum, pattern, min/max;
 * each passes an absent or empty value (presence is `require`'s business).
 */
export function fieldChecks(field: string, rule: FieldRule): Check[] {
  const checks: Check[] = [];
  const type: FieldType | undefined = rule.type ??
    (rule.pattern !== undefined ? "string" : undefined);
  const value = (payload: RawItem) => payload[field];
  const present = (check: (v: unknown) => string | undefined): Check => (payload) => {
    const v = value(payload);
    return isEmpty(v) ? undefined : check(v);
  };
  if (type) {
    checks.push(
      present((v) =>
        hasType(v, type) ? undefined : `${field}: expected ${article(type)}, got ${typeName(v)}`
      ),
    );
  }
  if (rule.enum) {
    const allowed = new Set<unknown>(rule.enum);
    const list = rule.enum.join(", ");
    checks.push(
      present((v) => allowed.has(v) ? undefined : `${field}: ${show(v)} is not one of ${list}`),
    );
  }
  if (rule.pattern !== undefined) {
    const re = new RegExp(rule.pattern, "u");
    checks.push(
      present((v) =>
        re.test(v as string) ? undefined : `${field}: ${show(v)} does not match /${rule.pattern}/`
      ),
    );
  }
  if (rule.min !== undefined || rule.max !== undefined) {
    checks.push(present(sizeCheck(field, rule.min ?? -Infinity, rule.max ?? Infinity)));
  }
  return checks;
}

/** Length of a string, entries of an array, value of a number: whichever the value is. */
function sizeCheck(field: string, min: number, max: number): (v: unknown) => string | undefined {
  return (v) => {
    if (typeof v === "string") {
      // n UTF-16 units hold between n/2 and n characters: skip the count when that settles it.
      if (v.length <= max && v.length >= 2 * min) return undefined;
      return bounds(field, codePoints(v), min, max, "character");
    }
    if (Array.isArray(v)) return bounds(field, v.length, min, max, "entry");
    if (typeof v === "number") {
      if (v < min) return `${field}: ${v}, less than the minimum ${min}`;
      if (v > max) return `${field}: ${v}, more than the maximum ${max}`;
      return undefined;
    }
    return `${field}: expected a string, array or number for min/max, got ${typeName(v)}`;
  };
}

function bounds(
  field: string,
  n: number,
  min: number,
  max: number,
  unit: string,
): string | undefined {
  const units = n === 1 ? unit : unit === "entry" ? "entries" : unit + "s";
  if (n < min) return `${field}: ${n} ${units}, fewer than the minimum ${min}`;
  if (n > max) return `${field}: ${n} ${units}, more than the maximum ${max}`;
  return undefined;
}

function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xdc00 && c <= 0xdfff) n--;
  }
  return n;
}

function hasType(v: unknown, type: FieldType): boolean {
  switch (type) {
    case "string":
      return typeof v === "string";
    case "number":
      return typeof v === "number" && Number.isFinite(v);
    case "integer":
      return Number.isInteger(v);
    case "boolean":
      return typeof v === "boolean";
    case "array":
      return Array.isArray(v);
    case "object":
      return typeof v === "object" && v !== null && !Array.isArray(v);
  }
}

export function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  return typeof v;
}

const article = (type: string) => (/^[aeiou]/.test(type) ? "an " : "a ") + type;

/** A value quoted for a reason line, cut so one bad item cannot flood the dead letters. */
export function show(v: unknown): string {
  // Masked before it is cut: a URL cut short may no longer read as one.
  const s = maskUrlsIn(JSON.stringify(v) ?? String(v));
  return s.length > 80 ? s.slice(0, 77) + "..." : s;
}

function isRegExp(pattern: string): boolean {
  try {
    new RegExp(pattern, "u");
    return true;
  } catch {
    return false;
  }
}
