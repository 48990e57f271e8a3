import assert from "node:assert/strict";
import { countHttpRequests } from "../../cli/counted_http.ts";
import { builtinRegistry } from "../../builtins.ts";
import { DEFAULT_HTTP } from "../../adapters/http/http_config.ts";
import { memoryLogger } from "../../engine/log.ts";
import { Registry } from "../../engine/registry.ts";
import { HostPausedError, RobotsDisallowedError } from "../../adapters/http/polite_http.ts";

Deno.test("a counted client keeps the per-host limits its source paces itself by", () => {
  // A run's clients are counted (the metrics): the html source reads perHost.concurrency off
  // its client, and a wrapper that dropped it let one held host take every place.
  const registry = builtinRegistry();
  countHttpRequests(registry, () => {});
  const pool = registry.http!(DEFAULT_HTTP, { flow: "t", log: memoryLogger() });
  assert.deepEqual(pool.client().perHost, DEFAULT_HTTP.perHost);
  assert.equal(pool.client({ concurrency: 5 }).perHost?.concurrency, 5);
});

Deno.test("a request not sent because its host pauses is not counted as a request", async () => {
  const registry = new Registry().httpClient(() => ({
    client: () => ({
      get: () => Promise.reject(new HostPausedError("not sent", "a.example", 5000)),
    }),
  }));
  const counted: unknown[] = [];
  countHttpRequests(registry, (host, status) => counted.push([host, status]));
  const client = registry.http!(DEFAULT_HTTP, { flow: "t", log: memoryLogger() }).client();
  await assert.rejects(client.get("https://a.example/x"), HostPausedError);
  assert.deepEqual(counted, []);
});

Deno.test("a request robots.txt keeps from being sent counts as robots, its rules read or not", async () => {
  // Before: refused because robots.txt could not be read (the host taken to disallow all),
  // each poll's request, never sent, counted as status "error": 9 errors for 1 request made.
  const refusals = [
    new RobotsDisallowedError("ruled out", "https://a.example/x", true),
    new RobotsDisallowedError("could not be read (HTTP 500)", "https://a.example/y", false),
  ];
  let next = 0;
  const registry = new Registry().httpClient(() => ({
    client: () => ({ get: () => Promise.reject(refusals[next++]) }),
  }));
  const counted: unknown[] = [];
  countHttpRequests(registry, (host, status) => counted.push([host, status]));
  const client = registry.http!(DEFAULT_HTTP, { flow: "t", log: memoryLogger() }).client();
  await assert.rejects(client.get("https://a.example/x"), RobotsDisallowedError);
  await assert.rejects(client.get("https://a.example/y"), RobotsDisallowedError);
  assert.deepEqual(counted, [["a.example", "robots"], ["a.example", "robots"]]);
});
