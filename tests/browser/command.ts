/**
 * The commands tests/browser/drive.ts takes, one JSON line each: a module
 * of its own, with no imports, so the tests' side (tests/cli/_chromium.ts)
 * names them without loading playwright-core, which only the driver's
 * deno.json names.
 */
/** What the tests ask of the page; every selector is a playwright selector. */
export type Command =
  | { op: "goto"; url: string }
  | { op: "text"; selector: string }
  | { op: "count"; selector: string }
  | { op: "attribute"; selector: string; name: string }
  | { op: "attributes"; selector: string; name: string }
  | { op: "waitFor"; selector: string }
  | { op: "fill"; selector: string; value: string }
  | { op: "click"; selector: string }
  | { op: "screenshot"; path: string; fullPage?: boolean };
