import type { z } from "zod";
import { maskUrl, maskUrlsIn } from "../engine/mask_url.ts";
import { didYouMean, nearest } from "./suggest.ts";

/** A problem found by validation, placed by its path in the flow's data. */
export interface PathProblem {
  path: PropertyKey[];
  /** Point at the key (an unknown field) or at the value (everything else). */
  at: "key" | "value";
  message: string;
  /** Already placed (an unset variable points at its `${`); otherwise placed by path. */
  pos?: { line: number; column: number };
}

export type Checked<T> = { ok: true; value: T } | { ok: false; problems: PathProblem[] };

/**
 * Parses `input` with `schema` and turns zod's issues into problems under
 * `base` (the component's place in the flow). `extraKeys` are fields the
 * loader took out of the block before validating it (`kind`, `concurrency`),
 * so a typo of one of them is still suggested.
 */
export function check<T>(
  schema: z.ZodType<T>,
  input: unknown,
  base: PropertyKey[] = [],
  extraKeys: readonly string[] = [],
): Checked<T> {
  const accepted = new WeakMap<object, string[]>();
  const result = schema.safeParse(input, {
    reportInput: true,
    error: (iss) => readable(iss as unknown as RawIssue, accepted),
  });
  if (result.success) return { ok: true, value: result.data };
  const ctx: Context = { accepted, input, extraKeys, suggested: new Set() };
  const problems = result.error.issues
    .flatMap((iss) => toProblems(iss as unknown as Issue, [], ctx))
    // "ttl is missing" says nothing new next to `unknown field "tll"; did you mean "ttl"?`.
    .filter((p) => !(p.message === MISSING && ctx.suggested.has(pathKey(p.path))));
  return {
    ok: false,
    problems: problems.map((p) => {
      const path = [...base, ...p.path];
      return { ...p, path, message: flowWide(path, unquoted(p)) };
    }),
  };
}

/**
 * An unknown field of a source that is a field of the flow's `http:` block
 * (`allow`, `userAgent`, `robots`) says where it goes, instead of listing
 * the source's fields, among which it is not.
 */
function flowWide(path: readonly PropertyKey[], message: string): string {
  const key = path[2];
  if (
    path.length !== 3 || path[0] !== "sources" || typeof key !== "string" ||
    !FLOW_HTTP_ONLY.includes(key) || !message.startsWith("unknown field")
  ) return message;
  return `unknown field ${JSON.stringify(key)} here: it is set for every source in the flow's ` +
    `http: block (http: { ${key}: … }); a source may set only its perHost`;
}

/** Fields whose value is a secret: an error says what was expected of it, never what it was. */
const SECRET_FIELD = /^(?:.*api_?key|.*token|.*secret|.*password)$/i;

function unquoted(p: PathProblem): string {
  const field = p.path[p.path.length - 1];
  if (typeof field !== "string" || !SECRET_FIELD.test(field)) return p.message;
  return p.message.replace(/, got .*$/s, "");
}

/** The fields of zod's issues this file reads; zod's own types are a wide union. */
interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  input?: unknown;
  keys?: string[];
  errors?: Issue[][];
  expected?: string;
  values?: unknown[];
  /** A custom issue's own data: `at: "key"` points it at a field's name. */
  params?: { at?: string };
}

interface RawIssue extends Omit<Issue, "path" | "message"> {
  origin?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  inclusive?: boolean;
  format?: string;
  pattern?: string;
  divisor?: number;
  inst?: unknown;
  schema?: unknown;
}

interface Context {
  accepted: WeakMap<object, string[]>;
  input: unknown;
  extraKeys: readonly string[];
  /** Paths of the fields suggested for unknown ones. */
  suggested: Set<string>;
}

const MISSING = "required field is missing";

/** What a YAML merge key (`<<: *anchor`), which the yaml library keeps as a field, is told. */
export const MERGE_KEY = "a merge key (<<: *anchor) is not read as a merge in a flow file: write " +
  "the fields out, or give the whole value an alias (field: *anchor)";

/** Fields of the flow's `http:` block that a source cannot set on its own (perHost it can). */
const FLOW_HTTP_ONLY = ["allow", "userAgent", "robots"];

const pathKey = (path: readonly PropertyKey[]) => JSON.stringify(path.map(String));

function toProblems(iss: Issue, prefix: PropertyKey[], ctx: Context): PathProblem[] {
  const path = [...prefix, ...iss.path];
  if (iss.code === "unrecognized_keys") {
    const accepted = (iss.input !== null && typeof iss.input === "object" &&
      ctx.accepted.get(iss.input)) || [];
    const candidates = iss.input === ctx.input ? [...accepted, ...ctx.extraKeys] : accepted;
    return (iss.keys ?? []).map((key) => {
      if (key === "<<") {
        // A YAML merge key, which the yaml library keeps as a field: say what it is.
        return {
          path: [...path, key],
          at: "key" as const,
          message: MERGE_KEY,
        };
      }
      const best = nearest(key, candidates);
      if (best !== undefined) ctx.suggested.add(pathKey([...path, best]));
      const hint = best !== undefined
        ? `; did you mean ${JSON.stringify(best)}?`
        : candidates.length > 0
        ? `; valid fields: ${unique(candidates).join(", ")}`
        : "";
      return {
        path: [...path, key],
        at: "key" as const,
        message: `unknown field ${JSON.stringify(key)}${hint}`,
      };
    });
  }
  if (iss.code === "invalid_union" && iss.errors) return unionProblems(iss, path, ctx);
  // A custom issue may say where it points (a nested check's unknown field: the key).
  const at = iss.params?.at === "key" ? "key" : "value";
  return [{ path, at, message: iss.message }];
}

/**
 * A union's issues are one list per branch. Report the branch the value came
 * closest to (right type, fewest unknown fields, fewest issues); when the
 * value fits no branch's type at all, say which types would do.
 */
function unionProblems(iss: Issue, path: PropertyKey[], ctx: Context): PathProblem[] {
  const branches = iss.errors ?? [];
  const atRoot = (b: Issue[], code: string) =>
    b.filter((e) => e.path.length === 0 && e.code === code);
  const typeMiss = (b: Issue[]) =>
    atRoot(b, "invalid_type").length + atRoot(b, "invalid_value").length > 0 ? 1 : 0;
  const score = (b: Issue[]) => [typeMiss(b), atRoot(b, "unrecognized_keys").length, b.length];
  const ranked = [...branches].sort((a, b) => {
    const [x, y] = [score(a), score(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  });
  const best = ranked[0];
  if (best && typeMiss(best) === 0) return best.flatMap((e) => toProblems(e, path, ctx));
  const expected = unique(
    branches.flatMap((b) =>
      b.filter((e) => e.path.length === 0).map((e) =>
        e.code === "invalid_type"
          ? typeName(e.expected ?? "")
          : (e.values ?? []).map((v) => JSON.stringify(v)).join(" or ")
      )
    ),
  ).filter((x) => x !== "");
  if (expected.length === 0) return [{ path, at: "value", message: iss.message }];
  // A word a branch would take, misspelt (`fuse: al`): the nearest such word.
  const words = branches.flatMap((b) =>
    b.filter((e) => e.path.length === 0 && e.code === "invalid_value")
      .flatMap((e) => (e.values ?? []).filter((v): v is string => typeof v === "string"))
  );
  const hint = typeof iss.input === "string" ? didYouMean(iss.input, words) : "";
  return [{
    path,
    at: "value",
    message: `expected ${expected.join(" or ")}, got ${show(iss.input)}${hint}`,
  }];
}

/**
 * zod's default messages, said the way a person editing a YAML file thinks:
 * "expected a positive integer, got -5". A schema's own `error` wins over these.
 */
function readable(iss: RawIssue, accepted: WeakMap<object, string[]>): string | undefined {
  const got = `, got ${show(iss.input)}`;
  switch (iss.code) {
    case "invalid_type":
      if (iss.input === undefined) return MISSING;
      return `expected ${typeName(iss.expected ?? "")}${got}`;
    case "too_small":
    case "too_big":
      return sizeMessage(iss, got);
    case "invalid_value": {
      const values = iss.values ?? [];
      const list = values.map((v) => JSON.stringify(v)).join(", ");
      const hint = typeof iss.input === "string"
        ? didYouMean(iss.input, values.filter((v): v is string => typeof v === "string"))
        : "";
      return `expected ${values.length === 1 ? list : `one of ${list}`}${got}${hint}`;
    }
    case "invalid_format":
      if (iss.format === "regex") return `expected text matching ${iss.pattern}${got}`;
      return `expected ${article(iss.format === "url" ? "URL" : iss.format ?? "value")}${got}`;
    case "not_multiple_of":
      return `expected a multiple of ${iss.divisor}${got}`;
    case "unrecognized_keys": {
      const shape = defOf(iss.inst)?.shape;
      if (iss.input && typeof iss.input === "object" && shape && typeof shape === "object") {
        accepted.set(iss.input, Object.keys(shape));
      }
      return `unknown field ${(iss.keys ?? []).map((k) => JSON.stringify(k)).join(", ")}`;
    }
  }
  return undefined;
}

function sizeMessage(iss: RawIssue, got: string): string | undefined {
  const small = iss.code === "too_small";
  const limit = Number(small ? iss.minimum : iss.maximum);
  const inclusive = iss.inclusive !== false;
  switch (iss.origin) {
    case "number":
    case "int":
    case "bigint": {
      const noun = isInteger(iss.schema) ? "integer" : "number";
      if (small && limit === 0) {
        return inclusive
          ? `expected zero or a positive ${noun}${got}`
          : `expected a positive ${noun}${got}`;
      }
      const rel = small
        ? (inclusive ? "at least" : "greater than")
        : (inclusive ? "at most" : "less than");
      return `expected ${article(noun)} ${rel} ${limit}${got}`;
    }
    case "string":
      if (small && limit === 1) return `expected a non-empty string${got}`;
      return `expected ${small ? "at least" : "at most"} ${limit} characters${got}`;
    case "array":
    case "set": {
      const n = Array.isArray(iss.input) ? iss.input.length : undefined;
      const have = n === undefined ? "" : n === 0 ? ", got an empty list" : `, got ${n}`;
      if (small && limit === 1) return `expected at least one item${have}`;
      return `expected ${small ? "at least" : "at most"} ${limit} items${have}`;
    }
  }
  return undefined;
}

function defOf(schema: unknown): Record<string, unknown> | undefined {
  const zod = (schema as { _zod?: { def?: Record<string, unknown> } } | undefined)?._zod;
  return zod?.def;
}

/** Whether a number schema is an integer (`z.int()`, `.int()`), to say "integer" not "number". */
function isInteger(schema: unknown): boolean {
  const def = defOf(schema);
  const isInt = (d?: Record<string, unknown>) => String(d?.format ?? "").includes("int");
  return isInt(def) || (Array.isArray(def?.checks) && def.checks.some((c) => isInt(defOf(c))));
}

const TYPE_NAMES: Record<string, string> = {
  object: "a map",
  array: "a list",
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  null: "null",
  record: "a map",
  map: "a map",
  tuple: "a list",
};

export function typeName(expected: string): string {
  return TYPE_NAMES[expected] ?? article(expected);
}

/** A value as the error shows it: short strings quoted, collections by their kind. */
export function show(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (typeof value === "string") {
    // A URL's password (set through ${VAR}, say) is not repeated back, nor one of a URL
    // spelt too badly to be found as one (`http//user:pw@host`).
    let text = maskUrlsIn(value);
    if (text === value && /:[^\s@/]*@/.test(value)) text = maskUrl(value);
    return JSON.stringify(text.length > 60 ? text.slice(0, 57) + "..." : text);
  }
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : "a list";
  if (typeof value === "object") return "a map";
  return String(value);
}

function article(noun: string): string {
  return (/^(?:[aeio]|un)/i.test(noun) ? "an " : "a ") + noun;
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}
