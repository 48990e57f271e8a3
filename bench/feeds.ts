/**
 * Feed parsing: every fixture feed, bytes to items (decode, strict parse,
 * mapping, dates, HTML to text), next to the bare XML parser underneath
 * (xml2js over sax, as rss-parser calls it) on the same bytes in the same
 * run, so the ratio says what the mapping costs on top of reading the XML.
 * A third figure is the lenient pass: the same feeds with one bare `&`
 * added to the first link, which the strict parser refuses.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Parser from "rss-parser";
import { decodeXml } from "../adapters/sources/_decode_xml.ts";
import { parseFeed } from "../adapters/sources/feed_source.ts";

/** The shared fixtures beside the checkout (MILLRACE_FIXTURES to point elsewhere). */
export const FIXTURES: string = Deno.env.get("MILLRACE_FIXTURES") ??
  fileURLToPath(new URL("../../shared/fixtures", import.meta.url));

interface Feed {
  name: string;
  bytes: Uint8Array;
}

function loadFeeds(): Feed[] {
  const dir = join(FIXTURES, "feeds");
  return [...Deno.readDirSync(dir)]
    .map((e) => e.name)
    .filter((n) => !n.endsWith(".html"))
    .sort()
    .map((name) => ({ name, bytes: Deno.readFileSync(join(dir, name)) }));
}

/** The first `<link>` or `<link href="` of the document gets a bare `&`; bytes kept as they are. */
function withBareAmpersand(feed: Feed): Feed {
  // latin1 here is windows-1252, which maps 0x80-0x9F elsewhere: search the ASCII view only.
  const text = new TextDecoder("latin1").decode(feed.bytes);
  const at = text.search(/<link>https?:\/\/|<link [^>]*href="https?:\/\//);
  const cut = text.indexOf("//", at) + 2;
  const bytes = new Uint8Array(feed.bytes.length + 5);
  bytes.set(feed.bytes.subarray(0, cut));
  bytes.set(new TextEncoder().encode("x&y=1"), cut);
  bytes.set(feed.bytes.subarray(cut), cut + 5);
  return { name: feed.name, bytes };
}

/** xml2js as rss-parser configures it: the parse rss-parser does before it maps anything. */
function bareParser(): (xml: string) => Promise<unknown> {
  const inner = (new Parser() as unknown as {
    xmlParser: { parseString(xml: string, cb: (err: unknown, out: unknown) => void): void };
  }).xmlParser;
  return (xml) =>
    new Promise((resolve, reject) =>
      inner.parseString(xml, (err, out) => (err ? reject(err) : resolve(out)))
    );
}

async function timeFull(feeds: Feed[]): Promise<{ items: number; secs: number }> {
  const started = performance.now();
  let items = 0;
  for (const f of feeds) items += (await parseFeed(f.bytes, { name: f.name })).length;
  return { items, secs: (performance.now() - started) / 1000 };
}

async function timeBare(feeds: Feed[]): Promise<number> {
  const parse = bareParser();
  const started = performance.now();
  for (const f of feeds) await parse(decodeXml(f.bytes));
  return (performance.now() - started) / 1000;
}

export async function printFeedSection(rounds: number): Promise<void> {
  const feeds = loadFeeds();
  const broken = feeds.map(withBareAmpersand);
  const mb = feeds.reduce((n, f) => n + f.bytes.length, 0) / 1e6;
  console.log(
    `## feed parsing: ${feeds.length} fixture feeds, ${
      mb.toFixed(2)
    } MB per pass, best of ${rounds}`,
  );
  let full = Infinity, bare = Infinity, lenient = Infinity, items = 0, lenientItems = 0;
  // One untimed pass first: JIT warm-up would otherwise land on whichever side runs first.
  await timeFull(feeds);
  await timeBare(feeds);
  for (let r = 0; r < rounds; r++) {
    // Interleaved, so a noisy neighbour hurts each side alike.
    const f = await timeFull(feeds);
    bare = Math.min(bare, await timeBare(feeds));
    const l = await timeFull(broken);
    items = f.items;
    lenientItems = l.items;
    full = Math.min(full, f.secs);
    lenient = Math.min(lenient, l.secs);
  }
  if (lenientItems !== items) throw new Error(`lenient pass kept ${lenientItems} of ${items}`);
  const line = (label: string, secs: number, withItems: boolean) =>
    console.log(
      `${label.padEnd(44)} ${(mb / secs).toFixed(2).padStart(6)} MB/s` +
        (withItems ? `, ${Math.round(items / secs).toLocaleString("en-US")} items/s` : ""),
    );
  line("parseFeed (bytes to items):", full, true);
  line("bare xml2js parse of the same text (baseline):", bare, false);
  line("parseFeed, each feed with one bare & (lenient):", lenient, true);
  console.log(
    `ratio parseFeed / bare parser: ${(bare / full).toFixed(2)}x the throughput; ` +
      `lenient / strict: ${(full / lenient).toFixed(2)}x; ${items} items per pass\n`,
  );
}
