/**
 * The flow's `http:` block end to end: parsed with its defaults, handed by
 * the runtime (memory and Redis) to the registry's HTTP factory, and the
 * client it makes is what sources get, with a source's own `perHost`.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { DEFAULT_HTTP } from "../../../adapters/http/http_config.ts";
import { httpOf } from "../../../adapters/http/http_client.ts";
import { politeHttp } from "../../../adapters/http/polite_http.ts";
import { parseFlow } from "../../../config/load_flow.ts";
import { FlowError } from "../../../config/load_flow.ts";
import type { HttpContext, HttpOptions, PerHost } from "../../../engine/http.ts";
import type { Registry } from "../../../engine/registry.ts";
import { runTestFlow, testRegistry } from "../../../testing.ts";
import { withServer } from "../../_http_server.ts";
import { redisTest, withRedis } from "../../_redis_server.ts";

/** What the HTTP factory was given, and the per-source limits its clients were asked for. */
interface Made {
  options?: HttpOptions;
  ctx?: HttpContext;
  clients: (Partial<PerHost> | undefined)[];
}

const fetchSchema = z.strictObject({
  url: z.string().describe("URL to GET. Required."),
  times: z.int().positive().default(1).describe("GETs, one item each. Default 1."),
});

/** A registry with source `fetch` (GETs `url` `times` times) whose HTTP factory is recorded. */
function fetchingRegistry(made: Made[]): Registry {
  return testRegistry()
    .httpClient((options, ctx) => {
      const pool = politeHttp(options, ctx);
      const record: Made = { options, ctx, clients: [] };
      made.push(record);
      return {
        client(perHost) {
          record.clients.push(perHost);
          return pool.client(perHost);
        },
      };
    })
    .source({
      kind: "fetch",
      summary: "GETs a URL (tests)",
      schema: fetchSchema,
      create: (config: z.output<typeof fetchSchema>, env) => ({
        async *read(signal) {
          for (let i = 0; i < config.times; i++) {
            const res = await httpOf(env).get(`${config.url}?${i}`, { signal });
            yield [{ title: new TextDecoder().decode(res.body), url: `${config.url}?${i}` }];
          }
        },
      }),
    });
}

const flowYaml = (origin: string, extra = "") => `
name: polite
sources:
  site: { kind: fetch, url: "${origin}/page", times: 3${extra} }
  blocked: { kind: fetch, url: "${origin}/private/x" }
pipeline:
  - publish: [ { collect: { name: out } } ]
http:
  userAgent: flowbot/1.0
  allow: [127.0.0.1]
  perHost: { rps: 1000, burst: 10 }
`;

function site(seen: { path: string; ua: string | null }[]) {
  return (req: Request) => {
    const path = new URL(req.url).pathname;
    seen.push({ path, ua: req.headers.get("user-agent") });
    if (path === "/robots.txt") return new Response("User-agent: flowbot\nDisallow: /private\n");
    return new Response("a page");
  };
}

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

redisTest(
  "a durable flow's HTTP client keeps its buckets in Redis, under the flow's keys",
  async () => {
    await withRedis(async (server) => {
      const seen: { path: string; ua: string | null }[] = [];
      const made: Made[] = [];
      await withServer(site(seen), async (origin) => {
        const { published } = await runTestFlow(
          flowYaml(origin).replace("name: polite\n", "name: polite\ndurability: redis\n"),
          { registry: fetchingRegistry(made), redis: server.url },
        );
        assert.equal(published.get("out")!.length, 3);
      });
      assert.equal(made.length, 1);
      const durable = made[0].ctx?.durable;
      assert.ok(durable, "the factory was given the flow's Redis");
      assert.match(durable.keys.host("127.0.0.1:80"), /:\{polite\}:host:127\.0\.0\.1:80$/);
      assert.ok(seen.every((s) => s.ua === "flowbot/1.0"));
    });
  },
);
