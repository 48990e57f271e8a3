/**
 * A sitemap of the protocol's largest size (50,000 URLs, ~50 MB of XML) is
 * walked in a process whose JS heap is capped at 24 MB, plain and gzipped
 * (231 KB that inflate to 50 MB): the walk holds a batch and a chunk, never
 * the document, so it fits. Before gzip bodies were inflated a slice at a
 * time, the gzipped one ran out of heap; and a walk that kept its 50,000
 * items runs out of it too (measured), so the cap tells the two apart. (The
 * cap was 16 MB with Deno's fetch; the guarded node:http client takes about
 * 8 MB of heap of its own while a 50 MB body streams in.)
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const PROBE = fileURLToPath(new URL("../../../bench/sitemap_probe.ts", import.meta.url));

for (const kind of ["gz", "plain"]) {
  Deno.test(`a 50,000-URL ${kind} sitemap is walked within a 24 MB heap`, async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--v8-flags=--max-old-space-size=24", PROBE, kind],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr.slice(-2000));
    const report = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
    assert.equal(report.urls, 50_000);
    assert.equal(report.largestBatch, 1000);
    assert.equal(report.xmlBytes > 49_000_000, true);
  });
}
