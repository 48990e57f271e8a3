import assert from "node:assert/strict";
import { countHttpRequests } from "../../cli/counted_http.ts";
import { builtinRegistry } from "../../builtins.ts";
import { DEFAULT_HTTP } from "../../adapters/http/http_config.ts";
import { memoryLogger } from "../../engine/log.ts";

Deno.test("a counted client keeps the per-host limits its source paces itself by", () => {
  // A run's clients are counted (the metrics): the html source reads perHost.concurrency off
  // its client, and a wrapper that dropped it let one held host take every place.
  const registry = builtinRegistry();
  countHttpRequests(registry, () => {});
  const pool = registry.http!(DEFAULT_HTTP, { flow: "t", log: memoryLogger() });
  assert.deepEqual(pool.client().perHost, DEFAULT_HTTP.perHost);
  assert.equal(pool.client({ concurrency: 5 }).perHost?.concurrency, 5);
});
