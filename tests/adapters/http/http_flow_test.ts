/**
 * The flow's `http:` block end to end: parsed with its defaults, handed by
 * the runtime (memory here; Redis in shared_bucket_test.ts) to the registry's HTTP factory, and the
 * client it makes is what sources get, with a source's own `perHost`.
 */
import assert from "node:assert/strict";
import { DEFAULT_HTTP } from "../../../adapters/http/http_config.ts";
import { parseFlow } from "../../../config/load_flow.ts";
import { FlowError } from "../../../config/load_flow.ts";
import { runTestFlow, testRegistry } from "../../../testing.ts";
import { withServer } from "../../_http_server.ts";
import { fetchingRegistry, flowYaml, type Made, site } from "./_fetching.ts";

Deno.test("no http: block gives every default", () => {
  const flow = parseFlow(
    "name: d\nsources: { a: { kind: memory } }\npipeline: [ { publish: [ { collect: {} } ] } ]\n",
    "flows/d.yaml",
    testRegistry(),
    {},
  );
  assert.deepEqual(flow.http, DEFAULT_HTTP);
  assert.deepEqual(DEFAULT_HTTP.perHost, { rps: 1, burst: 5, concurrency: 2 });
  assert.equal(flow.sources[0].perHost, undefined);
});

Deno.test("http: and a source's perHost are checked, each bad field named", () => {
  const text = "name: d\n" +
    "sources:\n" +
    "  a: { kind: memory, perHost: { rps: 0, burst: 1.5 } }\n" +
    "pipeline: [ { publish: [ { collect: {} } ] } ]\n" +
    "http:\n" +
    "  perHost: { rps: -1, concurency: 2 }\n" +
    "  robots: yes please\n";
  let error: FlowError | undefined;
  try {
    parseFlow(text, "flows/d.yaml", testRegistry(), {});
  } catch (e) {
    error = e as FlowError;
  }
  assert.ok(error instanceof FlowError);
  const lines = error.message.split("\n");
  for (
    const want of [
      /sources\.a\.perHost\.rps: expected a number above 0, got 0/,
      /sources\.a\.perHost\.burst: expected a positive integer, got 1\.5/,
      /http\.perHost\.rps: expected a number above 0, got -1/,
      /http\.perHost\.concurency: .*concurrency/,
      /http\.robots: /,
    ]
  ) assert.ok(lines.some((l) => want.test(l)), `${want} in:\n${error.message}`);
});

Deno.test("a memory flow's sources fetch through the polite client: user agent, robots.txt, perHost", async () => {
  const seen: { path: string; ua: string | null }[] = [];
  const made: Made[] = [];
  await withServer(site(seen), async (origin) => {
    const { report, published } = await runTestFlow(flowYaml(origin, ", perHost: { rps: 500 }"), {
      registry: fetchingRegistry(made),
    });
    assert.equal(published.get("out")!.length, 3);
    const blocked = report.sources.find((s) => s.name === "blocked")!;
    assert.equal(blocked.errors, 1);
    assert.equal(
      blocked.lastError,
      `GET ${origin}/private/x?0: robots.txt of ${origin} disallows it for user agent "flowbot"`,
    );
  });
  assert.equal(made.length, 1, "one client state per run");
  assert.equal(made[0].ctx?.durable, undefined, "buckets in this process");
  assert.deepEqual(made[0].options?.perHost, { rps: 1000, burst: 10, concurrency: 2 });
  assert.deepEqual(made[0].options?.allow, ["127.0.0.1"]);
  assert.deepEqual(made[0].clients, [undefined, { rps: 500 }], "the flow's, then site's own");
  assert.equal(
    seen.filter((s) => s.path === "/robots.txt").length,
    1,
    "read once for both sources",
  );
  assert.ok(!seen.some((s) => s.path.startsWith("/private")), "the disallowed URL was never asked");
  assert.ok(seen.every((s) => s.ua === "flowbot/1.0"));
});
