import assert from "node:assert/strict";
import { builtinRegistry } from "../../builtins.ts";
import { parseFlow } from "../../config/load_flow.ts";
import { unreachableUrls } from "../../cli/unreachable_urls.ts";

const flowOf = (sources: string, http = "") =>
  parseFlow(
    `name: t\n${http}sources:\n${sources}pipeline:\n  - publish: [ { jsonl: { path: a.jsonl } } ]\n`,
    "t.yaml",
    builtinRegistry(),
    {},
  );

Deno.test("check names the source URLs at addresses the flow does not allow, by field", () => {
  const flow = flowOf(
    `  s: { kind: html, url: ["http://127.0.0.1:8701/x", "https://example.com/a", "http://localhost:9/y"] }\n` +
      `  f: { kind: rss, url: "http://u:pw@[::1]:8080/feed" }\n` +
      `  m: { kind: html, sitemap: "http://192.168.1.4/sitemap.xml" }\n` +
      `  g: { kind: rss, url: "http://10.1.2.3/feed" }\n`,
    `http: { allow: ["10.1.2.3"] }\n`,
  );
  const found = unreachableUrls(flow).map((p) => `${p.line}:${p.column}: ${p.message}`);
  assert.deepEqual(found.map((p) => p.split(": refused")[0]), [
    // Where the flow file writes each: line and column, as an error names them.
    "4:26: sources.s.url: http://127.0.0.1:8701/x",
    "4:78: sources.s.url: http://localhost:9/y",
    "5:24: sources.f.url: http://u:***@[::1]:8080/feed",
    "6:29: sources.m.sitemap: http://192.168.1.4/sitemap.xml",
  ]);
  assert.match(found[0], /http: \{ allow: \["127\.0\.0\.1:8701"\] \}/);
  assert.ok(!found.some((p) => p.includes("pw")), "no password in what check prints");
});

Deno.test("check says nothing of allowed addresses, host names and files", () => {
  const flow = flowOf(
    `  s: { kind: html, url: "http://127.0.0.1:8701/x" }\n` +
      `  n: { kind: rss, url: "https://news.example/feed" }\n` +
      `  p: { kind: rss, path: feed.xml }\n`,
    `http: { allow: ["127.0.0.1:8701"] }\n`,
  );
  assert.deepEqual(unreachableUrls(flow), []);
});
