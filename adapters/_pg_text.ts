/**
 * A connection URL fit for logs and errors: the password, in the user part
 * or as a `password=` parameter, becomes `***`.
 *
 * @example
 * ```ts
 * import { maskUrl } from "./_pg_text.ts";
 * const masked = maskUrl("postgres://app:s3cret@db:5432/news");
 * if (masked !== "postgres://app:***@db:5432/news") throw new Error(masked);
 * ```
 */
export function maskUrl(url: string): string {
  let out = url;
  const start = url.indexOf("://");
  if (start >= 0) {
    // The user part ends at the last "@" before the path.
    const slash = url.indexOf("/", start + 3);
    const authority = url.slice(start + 3, slash < 0 ? url.length : slash);
    const at = authority.lastIndexOf("@");
    const colon = authority.indexOf(":");
    if (at >= 0 && colon >= 0 && colon < at) {
      out = url.slice(0, start + 3) + authority.slice(0, colon) + ":***" +
        authority.slice(at) + url.slice(start + 3 + authority.length);
    }
  }
  return out.replace(/([?&]password=)[^&#]*/gi, "$1***");
}

/** Every form of the URL's password that may appear in a message, longest first. */
function passwordsOf(url: string): string[] {
  const found = new Set<string>();
  const start = url.indexOf("://");
  if (start >= 0) {
    const slash = url.indexOf("/", start + 3);
    const authority = url.slice(start + 3, slash < 0 ? url.length : slash);
    const at = authority.lastIndexOf("@");
    const colon = authority.indexOf(":");
    if (at >= 0 && colon >= 0 && colon < at) found.add(authority.slice(colon + 1, at));
  }
  for (const m of url.matchAll(/[?&]password=([^&#]*)/gi)) found.add(m[1]);
  for (const p of [...found]) {
    try {
      found.add(decodeURIComponent(p));
    } catch {
      // not percent-encoded: the raw form is enough
    }
  }
  return [...found].filter((p) => p.length > 0).sort((a, b) => b.length - a.length);
}

/** Replaces the URL's password wherever a driver message repeats it. */
export function scrubber(url: string): (text: string) => string {
  const passwords = passwordsOf(url);
  return (text) => passwords.reduce((t, p) => t.replaceAll(p, "***"), text);
}

/** One line for any error a driver throws (a refused connection may carry only a code). */
export function errorText(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length) {
    return error.errors.map(errorText).join("; ");
  }
  if (error instanceof Error) {
    const e = error as Error & { code?: string; detail?: string };
    const text = e.message || e.code || e.name;
    return (e.detail ? `${text} (${e.detail})` : text).replaceAll("\n", " ");
  }
  return String(error);
}

/**
 * Rows as the JSON text Postgres reads. Postgres refuses two things
 * JSON.stringify writes: the NUL character (\u0000) and a lone surrogate
 * (half of an emoji cut by a truncation upstream). When either may be there
 * (a cheap look at the text), strings are cleaned and the rows written
 * again: NUL dropped, lone surrogates replaced by U+FFFD.
 */
export function jsonRows(rows: unknown[]): string {
  const text = JSON.stringify(rows);
  if (!text.includes("\\u0000") && !text.includes("\\ud")) return text;
  return JSON.stringify(
    rows,
    (_key, value) =>
      typeof value === "string" ? value.replaceAll("\u0000", "").toWellFormed() : value,
  );
}
