/**
 * A crawl of several hosts through the html source and the flow's polite
 * HTTP client: 4 local hosts of 10 articles each, every answer 100 ms late,
 * at `perHost: { rps: 2, burst: 1 }`, next to the floor those limits set
 * (each host's 10 requests spaced 1/rps apart, plus one answer's delay):
 *
 *   deno run -A bench/crawl.ts [--hosts N] [--pages N] [--rps R] [--concurrency C]
 *
 * Without `--concurrency` the source's default applies (8), and the flow
 * sets none, so this file also runs in a worktree of a commit from before
 * the source had `concurrency` (0e6365b): copy it there and run it.
 *
 * On 2026-12-06 on a 2-core machine: 5.7 s against a floor of 5.0; 7.7 s
 * with `--concurrency 1` (one page at a time, the hosts in turn); and 22.5 s
 * at 0e6365b, which fetched one page at a time, each host's pages after the
 * last host's, waiting out its rate alone.
 */
import { parseArgs } from "node:util";
import { htmlConfig, htmlSource } from "../adapters/sources/html_source.ts";
import { PoliteHttp } from "../adapters/http/polite_http.ts";
import { DEFAULT_HTTP } from "../adapters/http/http_config.ts";
import { memoryLogger } from "../engine/log.ts";
import { Registry } from "../engine/registry.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    hosts: { type: "string", default: "4" },
    pages: { type: "string", default: "10" },
    rps: { type: "string", default: "2" },
    concurrency: { type: "string" },
  },
});
const [hosts, pages, rps] = [Number(values.hosts), Number(values.pages), Number(values.rps)];
const DELAY_MS = 100;
const paragraph = "<p>" +
  "Words of a paragraph that runs long enough to be read as prose. ".repeat(12);
const article = (i: number) =>
  `<html><head><title>Story ${i} of the day</title></head><body><article><h1>Story ${i}</h1>` +
  `${paragraph}</p>${paragraph}</p></article></body></html>`;
const servers = Array.from(
  { length: hosts },
  () =>
    Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/robots.txt") return new Response("", { status: 404 });
      await new Promise((r) => setTimeout(r, DELAY_MS));
      return new Response(article(Number(path.slice(3))), {
        headers: { "content-type": "text/html" },
      });
    }),
);
try {
  const urls = servers.flatMap((s) =>
    Array.from({ length: pages }, (_, i) => `http://127.0.0.1:${s.addr.port}/a-${i}`)
  );
  const log = memoryLogger();
  const perHost = { ...DEFAULT_HTTP.perHost, rps, burst: 1 };
  const http = new PoliteHttp({ ...DEFAULT_HTTP, allow: ["127.0.0.1"], perHost }, {
    log,
    flow: "bench",
  }).client();
  const env = { flow: "bench", baseDir: ".", outDir: ".", log, registry: new Registry(), http };
  const config = {
    url: urls,
    maxPages: urls.length,
    ...(values.concurrency === undefined ? {} : { concurrency: Number(values.concurrency) }),
  };
  const source = await htmlSource.create(htmlConfig.parse(config), env);
  const started = performance.now();
  let items = 0;
  for await (const batch of source.read(new AbortController().signal)) items += batch.length;
  const secs = (performance.now() - started) / 1000;
  // Requests are spaced 10% wider than 1/rps (README, "Politeness").
  const floor = (pages - 1) * 1.1 / rps + DELAY_MS / 1000;
  console.log(
    `html crawl, ${hosts} hosts x ${pages} articles at rps ${rps}, concurrency ${
      values.concurrency ?? "(the default)"
    }: ` +
      `${items} items in ${secs.toFixed(1)} s; the hosts' limits allow ${floor.toFixed(1)} s ` +
      `(${(secs / floor).toFixed(2)}x that)`,
  );
} finally {
  for (const s of servers) await s.shutdown();
}
