/**
 * The HTML extraction benchmark: the `html` source reading Readability's 8
 * fixture pages (1.5 MB of real news, wiki and blog pages) from files, next
 * to bare Readability over linkedom on the same bytes, read beforehand, in
 * the same run. The source also sniffs the charset, checks
 * isProbablyReaderable, reads the canonical link, and turns the article
 * HTML into text; the ratio is what those cost on top of the library.
 *
 *   deno run -A bench/html.ts [--rounds N]   this section alone (default 5 rounds)
 *   deno task bench --only html              the same through bench/main.ts
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { Readability } from "@mozilla/readability";
import { DOMParser } from "linkedom";
import { htmlConfig, htmlSource } from "../adapters/sources/html_source.ts";
import { FIXTURES } from "./feeds.ts";
import { memoryLogger } from "../engine/log.ts";
import { Registry } from "../engine/registry.ts";

const HTML = join(FIXTURES, "html");

interface Run {
  items: number;
  bytes: number;
  secs: number;
}

async function runSource(pages: string[], bytes: number): Promise<Run> {
  const log = memoryLogger();
  const env = { flow: "bench", baseDir: HTML, outDir: HTML, log, registry: new Registry() };
  const source = await htmlSource.create(htmlConfig.parse({ path: pages }), env);
  const start = performance.now();
  let items = 0;
  for await (const batch of source.read(new AbortController().signal)) items += batch.length;
  return { items, bytes, secs: (performance.now() - start) / 1000 };
}

function runBare(bodies: Uint8Array[], bytes: number): Run {
  const decoder = new TextDecoder();
  const start = performance.now();
  let items = 0;
  for (const body of bodies) {
    const doc = new DOMParser().parseFromString(decoder.decode(body), "text/html");
    // deno-lint-ignore no-explicit-any
    if (new Readability(doc as any).parse()) items++;
  }
  return { items, bytes, secs: (performance.now() - start) / 1000 };
}

export async function printHtmlSection(rounds = 5): Promise<void> {
  const pages = [...Deno.readDirSync(HTML)].filter((e) => e.isDirectory).map((e) =>
    `${e.name}/source.html`
  ).sort();
  const bodies = pages.map((p) => Deno.readFileSync(join(HTML, p)));
  const bytes = bodies.reduce((n, b) => n + b.byteLength, 0);
  const mb = (bytes / 1e6).toFixed(2);
  console.log(
    `## html extraction, ${pages.length} Readability fixture pages (${mb} MB), best of ${rounds}`,
  );
  let best = { source: 0, bare: 0 };
  for (let r = 0; r < rounds; r++) {
    // Interleaved, first one then the other first, so neither noise nor warm-up favours a side.
    let bare: Run, source: Run;
    if (r % 2 === 0) {
      bare = runBare(bodies, bytes);
      source = await runSource(pages, bytes);
    } else {
      source = await runSource(pages, bytes);
      bare = runBare(bodies, bytes);
    }
    if (source.items !== pages.length || bare.items !== pages.length) {
      throw new Error(`a page gave no article (source ${source.items}, bare ${bare.items})`);
    }
    best = {
      source: Math.max(best.source, source.items / source.secs),
      bare: Math.max(best.bare, bare.items / bare.secs),
    };
  }
  const perSec = (itemsPerSec: number) =>
    `${itemsPerSec.toFixed(1)} items/s, ${
      (itemsPerSec * bytes / pages.length / 1e6).toFixed(2)
    } MB/s`;
  console.log(`html source (path:):            ${perSec(best.source)}`);
  console.log(`bare Readability + linkedom:    ${perSec(best.bare)} (baseline, same run)`);
  console.log(`ratio source / baseline:        ${(best.source / best.bare).toFixed(2)}x\n`);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { rounds: { type: "string", default: "5" } },
  });
  await printHtmlSection(Number(values.rounds));
}
