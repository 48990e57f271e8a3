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
  "contentEncoding",
  "contentMediaType",
  "$ref",
  "$schema",
  "$id",
  "$comment",
]);

/** A misspelt word of a schema: where (keys from the schema down) and what. */
export interface SchemaWordProblem {
  path: (string | number)[];
  message: string;
}

/**
 * The first misspelt word of a JSON Schema written in a flow file, or
 * undefined: a keyword JSON Schema does not have (`maxLenght`) or a `type`
 * that names no type (`strin`). zod's converter ignores both where it can
 * (an unknown keyword, a type beside an `enum`), so the stage would check
 * less than the file says, and the server be sent the misspelling. The
 * path lets a flow file's error point at the word's own line.
 *
 * @example
 * ```ts
 * import { schemaWordProblem } from "./_schema_words.ts";
 *
 * const schema = { type: "object", properties: { topic: { type: "strin", enum: ["ai"] } } };
 * const found = schemaWordProblem(schema);
 * if (found?.path.join(".") !== "properties.topic.type") throw new Error("not caught");
 * ```
 */
export function schemaWordProblem(
  schema: unknown,
  path: (string | number)[] = [],
): SchemaWordProblem | undefined {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) return undefined;
  const node = schema as Record<string, unknown>;
  for (const key of Object.keys(node)) {
    if (key === "nullable") {
      // OpenAPI's word: the check ignored it and refused the model's null, every time.
      return {
        path: [...path, key],
        message: '"nullable" is OpenAPI\'s, not JSON Schema\'s: write the type with "null", ' +
          'e.g. type: [string, "null"]',
      };
    }
    if (!KEYWORDS.has(key)) {
      return {
        path: [...path, key],
        message: `${JSON.stringify(key)} is not a JSON Schema keyword${didYouMean(key, KEYWORDS)}`,
      };
    }
  }
  const types = Array.isArray(node.type) ? node.type : node.type === undefined ? [] : [node.type];
  for (const type of types) {
    if (typeof type !== "string" || !TYPES.includes(type)) {
      return {
        path: [...path, "type"],
        message: `${JSON.stringify(type)} is not a JSON Schema type (${TYPES.join(", ")})` +
          (typeof type === "string" ? didYouMean(type, TYPES) : ""),
      };
    }
  }
  const properties = node.properties;
  if (Array.isArray(node.required) && typeof properties === "object" && properties !== null) {
    const names = Object.keys(properties);
    for (const [i, name] of node.required.entries()) {
      if (typeof name === "string" && !names.includes(name)) {
        // The check does not hold an output to a name properties lacks: { } passed.
        return {
          path: [...path, "required", i],
          message: `required names ${JSON.stringify(name)}, which properties does not list` +
            didYouMean(name, names),
        };
      }
    }
  }
  for (const key of ONE) {
    const found = schemaWordProblem(node[key], [...path, key]);
    if (found) return found;
  }
  for (const key of LIST) {
    const list = node[key];
    if (!Array.isArray(list)) continue;
    for (const [i, sub] of list.entries()) {
      const found = schemaWordProblem(sub, [...path, key, i]);
      if (found) return found;
    }
  }
  for (const key of MAP) {
    const map = node[key];
    if (typeof map !== "object" || map === null) continue;
    for (const [name, sub] of Object.entries(map)) {
      const found = schemaWordProblem(sub, [...path, key, name]);
      if (found) return found;
    }
  }
  return undefined;
}
