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

/**
 * Says once per field when no item of a batch has a field the template
 * reads: it renders empty, so a misspelt `{titel}` would pass unnoticed
 * (the other fields still make an input). A field some sources lack is
 * said once too, which is the price of catching the misspelling.
 */
export function absentFieldWarner(
  template: string,
  warn: (message: string) => void,
): (batch: readonly { payload: Record<string, unknown> }[]) => void {
  const left = new Set(templateFields(template));
  return (all) => {
    // A delete ({url, deleted: true}) is rendered for no one: it says nothing of the names.
    const batch = all.filter((item) => item.payload.deleted !== true);
    if (left.size === 0 || batch.length === 0) return;
    for (const field of left) {
      if (batch.some((item) => item.payload[field] !== undefined && item.payload[field] !== null)) {
        continue;
      }
      left.delete(field);
      warn(
        `no item of a batch of ${batch.length} has "${field}", which the input's {${field}} ` +
          "reads: it stands empty (said once; check the field name)",
      );
    }
  };
}
