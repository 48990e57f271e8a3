import { fileURLToPath } from "node:url";

/**
 * The shared fixtures (real feeds, API responses and pages written by
 * others), read where they are, beside the checkout: they are never copied
 * into the repository. MILLRACE_FIXTURES points elsewhere when needed.
 */
export const FIXTURES: string = Deno.env.get("MILLRACE_FIXTURES") ??
  fileURLToPath(new URL("../../shared/fixtures", import.meta.url));
