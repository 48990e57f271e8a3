/**
 * `deno task screenshot`: runs a flow with its dashboard, opens it in
 * headless chromium (the browser tests' harness, tests/cli/_chromium.ts) and saves
 * docs/dashboard.png. Needs chromium (`apt-get install chromium`).
 */
import { fileURLToPath } from "node:url";
import { Page } from "../tests/cli/_chromium.ts";
import { startWatched } from "../tests/cli/_watched_flow.ts";

const FLOW = `name: newsroom
sources:
  wire: { kind: generator, count: 400, seed: 42, every: 400ms }
  blogs: { kind: generator, count: 60, seed: 7, every: 2s }
pipeline:
  - validate: { require: [title, url], title: { min: 5, max: 500 }, spam: [casino] }
  - dedupe: { key: [url], ttl: 1h, near: { threshold: 0.8 } }
  - enrich: { steps: [canonical-url, domain, word-count, language, keywords] }
  - embed: { provider: local, dimensions: 64, batch: { size: 128, maxWait: 100ms } }
  - publish:
      - jsonl: { path: items.jsonl }
`;

const out = fileURLToPath(new URL("./dashboard.png", import.meta.url));
const seconds = Number(Deno.args[0] ?? 8);
const w = await startWatched(FLOW, { eventsEveryMs: 500 });
try {
  const page = await Page.open({ width: 1280, height: 900 });
  try {
    await page.goto(w.url + "/");
    await new Promise((r) => setTimeout(r, seconds * 1000));
    await page.screenshot(out, { fullPage: true });
    console.log(`saved ${out}`);
  } finally {
    await page.close();
  }
} finally {
  await w.close();
}
