/**
 * Walks a sitemap of the protocol's largest size (50,000 URLs, about 50 MB;
 * gzipped with `gz`) served from 127.0.0.1, through the sitemap source, and
 * prints the time and how far RSS grew past the served body: the body fetched
 * (capped by maxBytes) plus what parsing holds, which must not grow with the
 * number of URLs. Run it with a small heap to show the walk fits in it:
 * `deno run -A --v8-flags=--max-old-space-size=24 bench/sitemap_probe.ts gz`.
 * Usage: sitemap_probe.ts [gz|plain]
 */
import { gzipSync } from "node:zlib";
import { fetchLimited } from "../adapters/http/http_fetch.ts";
import { sitemapConfig, sitemapSource } from "../adapters/sources/sitemap_source.ts";
import { memoryLogger } from "../engine/log.ts";
import { Registry } from "../engine/registry.ts";

const gzip = Deno.args[0] === "gz";
const pad = "x".repeat(900);
// Written straight into one buffer (outside the JS heap), so the heap holds only what the walk does.
const head = '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n';
const entry = (i: number) =>
  `<url><loc>https://example.com/articles/${i}/${pad}</loc><lastmod>2026-05-01T10:00:00Z</lastmod></url>\n`;
const encoder = new TextEncoder();
const buffer = new Uint8Array(head.length + 50_000 * (entry(49_999).length + 1) + 16);
let at = encoder.encodeInto(head, buffer).written;
for (let i = 0; i < 50_000; i++) at += encoder.encodeInto(entry(i), buffer.subarray(at)).written;
at += encoder.encodeInto("</urlset>\n", buffer.subarray(at)).written;
const xml = buffer.subarray(0, at);
const body = gzip ? gzipSync(xml) : xml;
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  () => new Response(body),
);
const base = Deno.memoryUsage().rss;
let peak = base;
const sample = () => peak = Math.max(peak, Deno.memoryUsage().rss);
const timer = setInterval(sample, 5);
const source = sitemapSource.create(
  sitemapConfig.parse({
    url: `http://127.0.0.1:${server.addr.port}/sitemap.xml${gzip ? ".gz" : ""}`,
    maxBytes: "60MB",
  }),
  {
    flow: "probe",
    baseDir: ".",
    outDir: ".",
    log: memoryLogger(),
    registry: new Registry(),
    http: { get: (u, r) => fetchLimited(u, { ...r, allow: ["127.0.0.1"] }) },
  },
);
const start = performance.now();
let urls = 0;
let largestBatch = 0;
for await (const batch of (await source).read(new AbortController().signal)) {
  urls += batch.length;
  largestBatch = Math.max(largestBatch, batch.length);
  sample();
}
clearInterval(timer);
console.log(JSON.stringify({
  gzip,
  xmlBytes: xml.length,
  servedBytes: body.length,
  urls,
  largestBatch,
  ms: Math.round(performance.now() - start),
  rssGrowthMB: Math.round((peak - base) / 1e6),
}));
await server.shutdown();
