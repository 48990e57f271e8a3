import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The shared fixtures (real feeds, API responses and pages written by
 * others), read where they are, beside the checkout: they are never copied
 * into the repository. MILLRACE_FIXTURES points elsewhere when needed.
 */
export const FIXTURES: string = Deno.env.get("MILLRACE_FIXTURES") ??
  fileURLToPath(new URL("../../shared/fixtures", import.meta.url));

/**
 * Why the fixtures cannot be used, or undefined when they can. A clone
 * without ../shared beside it has none: its fixture tests are ignored with
 * this reason printed once, except in CI (CI=true), where they fail, since
 * a CI run that silently skipped them would prove nothing.
 */
export const fixturesMissing: string | undefined = existsSync(FIXTURES)
  ? undefined
  : `the shared fixtures are not at ${FIXTURES} (set MILLRACE_FIXTURES to where they are)`;
const inCI = Deno.env.get("CI") === "true";
if (fixturesMissing !== undefined && !inCI) {
  console.warn(`${fixturesMissing}: tests that read them are ignored`);
}

/** A Deno.test that reads the shared fixtures (see fixturesMissing). */
export function fixtureTest(name: string, fn: () => void | Promise<void>): void {
  Deno.test({
    name,
    ignore: fixturesMissing !== undefined && !inCI,
    fn: () => {
      if (fixturesMissing !== undefined) {
        throw new Error(`${fixturesMissing}, and CI=true requires them`);
      }
      return fn();
    },
  });
}
