/** Fills a template such as "{title}\n{text}" from an item's payload. */
export type Template = (payload: Record<string, unknown>) => string;

const FIELD = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Compiles a template once so rendering a batch is a loop over parts, not a
 * regex per item. A missing or null field renders as "" (an item without
 * `text` still embeds its title); a list renders space-separated (tags,
 * keywords); anything else that is not text renders as JSON. Braces that do
 * not wrap a field name stay as they are.
 *
 * @example
 * ```ts
 * import { compileTemplate } from "./_template.ts";
 *
 * const render = compileTemplate("{title}\n{text}");
 * if (render({ title: "Hi" }) !== "Hi\n") throw new Error("missing fields render empty");
 * ```
 */
export function compileTemplate(template: string): Template {
  const literals: string[] = [];
  const fields: string[] = [];
  let last = 0;
  for (const match of template.matchAll(FIELD)) {
    literals.push(template.slice(last, match.index));
    fields.push(match[1]);
    last = match.index + match[0].length;
  }
  literals.push(template.slice(last));
  return (payload) => {
    let out = literals[0];
    for (let i = 0; i < fields.length; i++) out += show(payload[fields[i]]) + literals[i + 1];
    return out;
  };
}

/** The field names a template reads, in order. */
export function templateFields(template: string): string[] {
  return [...template.matchAll(FIELD)].map((m) => m[1]);
}

function show(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.map(show).join(" ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
