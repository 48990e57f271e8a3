import { didYouMean } from "../config/suggest.ts";

/** JSON Schema's types: what `type` may name. */
const TYPES = ["string", "number", "integer", "boolean", "object", "array", "null"];

/** Keywords of one schema whose value is a schema. */
const ONE = ["not", "items", "additionalProperties", "contains", "if", "then", "else"];
/** Keywords whose value is a list of schemas. */
const LIST = ["anyOf", "oneOf", "allOf", "prefixItems"];
/** Keywords whose value maps names to schemas. */
const MAP = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];

/** Every keyword of JSON Schema (2020-12) a result's schema may use. */
const KEYWORDS = new Set([
  ...ONE,
  ...LIST,
  ...MAP,
  "type",
  "enum",
  "const",
  "required",
  "minItems",
  "maxItems",
  "uniqueItems",
  "minContains",
  "maxContains",
  "minLength",
  "maxLength",
  "pattern",
  "format",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "minProperties",
  "maxProperties",
  "propertyNames",
  "dependentRequired",
  "unevaluatedProperties",
  "unevaluatedItems",
  "title",
  "description",
  "default",
  "examples",
  "deprecated",
  "readOnly",
  "writeOnly",
  "nullable",
  "contentEncoding",
  "contentMediaType",
  "$ref",
  "$schema",
  "$id",
  "$comment",
]);

/**
 * The first misspelt word of a JSON Schema written in a flow file, or
 * undefined: a keyword JSON Schema does not have (`maxLenght`) or a `type`
 * that names no type (`strin`). zod's converter ignores both where it can
 * (an unknown keyword, a type beside an `enum`), so the stage would check
 * less than the file says, and the server be sent the misspelling.
 *
 * @example
 * ```ts
 * import { schemaWordProblem } from "./_schema_words.ts";
 *
 * const schema = { type: "object", properties: { topic: { type: "strin", enum: ["ai"] } } };
 * if (!schemaWordProblem(schema)?.includes('"strin"')) throw new Error("not caught");
 * ```
 */
export function schemaWordProblem(schema: unknown, at = ""): string | undefined {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) return undefined;
  const node = schema as Record<string, unknown>;
  for (const key of Object.keys(node)) {
    if (!KEYWORDS.has(key)) {
      return `${prefix(at)}${JSON.stringify(key)} is no JSON Schema keyword${
        didYouMean(key, KEYWORDS)
      }`;
    }
  }
  const types = Array.isArray(node.type) ? node.type : node.type === undefined ? [] : [node.type];
  for (const type of types) {
    if (typeof type !== "string" || !TYPES.includes(type)) {
      return `${prefix(join(at, "type"))}${JSON.stringify(type)} is no JSON Schema type ` +
        `(${TYPES.join(", ")})` +
        (typeof type === "string" ? didYouMean(type, TYPES) : "");
    }
  }
  for (const key of ONE) {
    const found = schemaWordProblem(node[key], join(at, key));
    if (found) return found;
  }
  for (const key of LIST) {
    const list = node[key];
    if (!Array.isArray(list)) continue;
    for (const [i, sub] of list.entries()) {
      const found = schemaWordProblem(sub, `${join(at, key)}[${i}]`);
      if (found) return found;
    }
  }
  for (const key of MAP) {
    const map = node[key];
    if (typeof map !== "object" || map === null) continue;
    for (const [name, sub] of Object.entries(map)) {
      const found = schemaWordProblem(sub, join(join(at, key), name));
      if (found) return found;
    }
  }
  return undefined;
}

/** `a.b`, or `b` at the top. */
function join(at: string, key: string): string {
  return at ? `${at}.${key}` : key;
}

/** `at: `, or nothing at the top (the flow error names the schema field already). */
function prefix(at: string): string {
  return at ? `${at}: ` : "";
}
