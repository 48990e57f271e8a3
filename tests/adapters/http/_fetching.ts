/** A test source that fetches through the run's HTTP client, and a site for it to fetch. */
import { z } from "zod";
import { httpOf } from "../../../adapters/http/http_client.ts";
import { politeHttp } from "../../../adapters/http/polite_http.ts";
import type { HttpContext, HttpOptions, PerHost } from "../../../engine/http.ts";
import type { Registry } from "../../../engine/registry.ts";
import { testRegistry } from "../../../testing.ts";

/** What the HTTP factory was given, and the per-source limits its clients were asked for. */
export interface Made {
  options?: HttpOptions;
  ctx?: HttpContext;
  clients: (Partial<PerHost> | undefined)[];
}

const fetchSchema = z.strictObject({
  url: z.string().describe("URL to GET. Required."),
  times: z.int().positive().default(1).describe("GETs, one item each. Default 1."),
});

/** A registry with source `fetch` (GETs `url` `times` times) whose HTTP factory is recorded. */
export function fetchingRegistry(made: Made[]): Registry {
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

export const flowYaml = (origin: string, extra = "") => `
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

export function site(seen: { path: string; ua: string | null }[]) {
  return (req: Request) => {
    const path = new URL(req.url).pathname;
    seen.push({ path, ua: req.headers.get("user-agent") });
    if (path === "/robots.txt") return new Response("User-agent: flowbot\nDisallow: /private\n");
    return new Response("a page");
  };
}
