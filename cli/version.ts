import config from "../deno.json" with { type: "json" };

/** What `--version` prints: millrace's version as deno.json gives it, and Deno's. */
export function versionText(): string {
  return `millrace ${config.version} (${config.name}, deno ${Deno.version.deno})`;
}
