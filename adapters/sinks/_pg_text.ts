import { jsonWithVector } from "../../engine/vector_json.ts";
import { urlSecrets } from "../../engine/mask_url.ts";

/** Replaces the URL's password wherever a driver message repeats it. */
export function scrubber(url: string): (text: string) => string {
  const passwords = urlSecrets(url);
  return (text) => passwords.reduce((t, p) => t.replaceAll(p, "***"), text);
}

/**
 * SQLSTATEs whose detail is the refused row: not_null_violation,
 * check_violation, and a row-level security refusal (42501, which has none
 * otherwise).
 */
const ROW_DETAIL = new Set(["23502", "23514", "42501"]);

/** One line for any error a driver throws (a refused connection may carry only a code). */
export function errorText(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length) {
    return error.errors.map(errorText).join("; ");
  }
  if (error instanceof Error) {
    const e = error as Error & { code?: string; detail?: string };
    const text = e.message || e.code || e.name;
    // "Failing row contains (…)" is the row: the item, which a dead letter holds, with the
    // times of this run, so a re-run's letter never matched the one the file held. Known by
    // the error's code, whatever the server's language.
    const row = ROW_DETAIL.has(e.code ?? "") || e.detail?.startsWith("Failing row contains");
    const detail = row ? undefined : e.detail;
    return (detail ? `${text} (${detail})` : text).replaceAll("\n", " ");
  }
  return String(error);
}

/**
 * Rows as the JSON text Postgres reads. Postgres refuses two things
 * JSON.stringify writes: the NUL character (\u0000) and a lone surrogate
 * (half of an emoji cut by a truncation upstream). When either may be there
 * (a cheap look at the text), strings are cleaned and the rows written
 * again: NUL dropped, lone surrogates replaced by U+FFFD, in values and in
 * keys alike.
 */
export function jsonRows(rows: { vector?: unknown }[]): string {
  const text = `[${rows.map(jsonWithVector).join(",")}]`;
  if (!text.includes("\\u0000") && !text.includes("\\ud")) return text;
  return JSON.stringify(rows, (_key, value) => {
    if (typeof value === "string") return clean(value);
    if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
    const keys = Object.keys(value);
    if (keys.every((k) => clean(k) === k)) return value;
    return Object.fromEntries(keys.map((k) => [clean(k), (value as Record<string, unknown>)[k]]));
  });
}

function clean(text: string): string {
  return text.replaceAll("\u0000", "").toWellFormed();
}
