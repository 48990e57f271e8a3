import assert from "node:assert/strict";
import { FieldError } from "../../../engine/flow_error.ts";
import { FIXTURES, fixtureTest } from "../../_fixtures_dir.ts";
import { withServer } from "../../_http_server.ts";
import { localHttp } from "../../_local_http.ts";
import { join } from "node:path";
import { feedConfig, feedSource, parseFeed } from "../../../adapters/sources/feed_source.ts";
import { decodeXmlWithEvidence } from "../../../adapters/sources/_decode_xml.ts";
import { envelope, type RawItem, type ValidItem } from "../../../engine/item.ts";
import { validateStage } from "../../../actors/validator.ts";
import { createStage, run } from "../../_outcome.ts";
import { type Logger, memoryLogger } from "../../../engine/log.ts";
import { type BuildEnv, Registry } from "../../../engine/registry.ts";
import type { Source } from "../../../engine/source.ts";

const FEEDS = join(FIXTURES, "feeds");

function testEnv(baseDir = FEEDS, log: Logger = memoryLogger()): BuildEnv {
  return {
    flow: "test",
    baseDir,
    outDir: baseDir,
    log,
    registry: new Registry(),
    http: localHttp,
  };
}

async function source(config: Record<string, unknown>, log?: Logger): Promise<Source> {
  return await feedSource.create(feedConfig.parse(config), testEnv(FEEDS, log));
}

async function readAll(src: Source): Promise<RawItem[][]> {
  const batches: RawItem[][] = [];
  for await (const batch of src.read(new AbortController().signal)) batches.push(batch);
  return batches;
}

async function parseFixture(file: string, baseUrl?: string): Promise<RawItem[]> {
  return await parseFeed(await Deno.readFile(join(FEEDS, file)), { name: file, baseUrl });
}

/** Entries per feed file, from the fixtures' MANIFEST.md. */
const EXPECTED_COUNTS: Record<string, number> = {
  "feedparser__intertwingly.atom": 20,
  "feedparser__rss-with-relative-urls.xml": 2,
  "feedparser__rss2sample.xml": 4,
  "rss-parser__craigslist.rss": 25,
  "rss-parser__encoding.rss": 40,
  "rss-parser__giantbomb-podcast.rss": 730,
  "rss-parser__guardian.rss": 55,
  "rss-parser__heise.atom": 15,
  "rss-parser__incomplete-fields.atom": 1,
  "rss-parser__narro.rss": 1,
  "rss-parser__reddit.rss": 24,
  "rss-parser__rss-1.rss": 69,
};

fixtureTest("every fixture feed parses to the number of entries it holds", async () => {
  const files = [...Deno.readDirSync(FEEDS)].map((e) => e.name).sort();
  assert.deepEqual(files, [...Object.keys(EXPECTED_COUNTS), "feedparser__notafeed.html"].sort());
  for (const [file, count] of Object.entries(EXPECTED_COUNTS)) {
    const items = await parseFixture(file);
    assert.equal(items.length, count, file);
    for (const item of items) {
      for (const value of Object.values(item)) assert.notEqual(value, undefined, file);
      if (item.text !== undefined) assert.doesNotMatch(item.text, /<\/?(p|a|div|br|img)\b/i, file);
      if (item.publishedAt !== undefined) {
        assert.match(item.publishedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, file);
      }
    }
  }
});

fixtureTest(
  "a document that is not a feed fails with the file name, not with zero items",
  async () => {
    await assert.rejects(
      parseFixture("feedparser__notafeed.html"),
      /^Error: feedparser__notafeed\.html: not an RSS or Atom feed/,
    );
    const src = await source({ path: "feedparser__notafeed.html" });
    await assert.rejects(readAll(src), /feedparser__notafeed\.html: not an RSS or Atom feed/);
    await assert.rejects(
      parseFeed(`<?xml version="1.0"?><!-- x --><catalog><book/></catalog>`, { name: "books.xml" }),
      /books\.xml: not an RSS or Atom feed \(root element <catalog>\)/,
    );
  },
);

fixtureTest("a bad file in a list does not stop the files after it", async () => {
  const src = await source({ path: ["feedparser__notafeed.html", "feedparser__rss2sample.xml"] });
  const batches: RawItem[][] = [];
  await assert.rejects(async () => {
    for await (const batch of src.read(new AbortController().signal)) batches.push(batch);
  }, /feedparser__notafeed\.html: not an RSS or Atom feed/);
  assert.deepEqual(batches.map((b) => b.length), [4]);
});

fixtureTest("guardian RSS 2.0: titles, authors, dates, categories and plain text", async () => {
  const items = await parseFixture("rss-parser__guardian.rss");
  assert.equal(items.length, 55);
  const first = items[0];
  assert.equal(
    first.title,
    "Trump State of the Union address promised unity but emphasized discord",
  );
  assert.equal(
    first.url,
    "https://www.theguardian.com/us-news/2018/jan/31/donald-trump-state-of-the-union-address-unity-discord",
  );
  assert.equal(first.author, "David Smith in Washington");
  assert.equal(first.publishedAt, "2018-01-31T07:26:05.000Z");
  assert.equal(first.guid, first.url);
  assert.ok(first.tags?.includes("Donald Trump"));
  assert.ok(first.text?.startsWith("The president’s ‘new American moment’ speech stirred"));
  assert.ok(items.every((i) => !i.text?.includes("&amp;") && !i.text?.includes("&lt;")));
});

fixtureTest("heise Atom: umlauts stay intact", async () => {
  const items = await parseFixture("rss-parser__heise.atom");
  assert.equal(items.length, 15);
  assert.equal(
    items[2].title,
    "Microsoft veröffentlicht Cordova-Erweiterung für Visual Studio Code",
  );
  assert.equal(items[1].title, "Scrum Day 2016: Bewerbungen für Vorträge und Workshops");
  assert.ok(items[0].text?.includes("das dritte größere Release"));
  assert.equal(items[0].publishedAt, "2016-02-01T16:22:00.000Z");
  assert.ok(items.every((i) => !JSON.stringify(i).includes("\uFFFD")));
  // An entry without <author> has the feed's (RFC 4287 4.2.1).
  assert.ok(items.every((i) => i.author === "heise online"), items[0].author);
});

fixtureTest("RSS 1.0 (RDF): items outside the channel, dc:creator and dc:date", async () => {
  const items = await parseFixture("rss-parser__rss-1.rss");
  assert.equal(items.length, 69);
  assert.equal(items[0].title, "Food for fungi");
  assert.equal(items[0].author, "Hines, P. J.");
  assert.equal(items[0].publishedAt, "2017-06-15T17:29:47.000Z");
  // dc:subject is the RDF feed's category.
  assert.equal(items.filter((i) => i.tags?.length).length, 46);
  assert.equal(
    items[0].url,
    "http://science.sciencemag.org/cgi/content/short/356/6343/1134-a?rss=1",
  );
  assert.ok(items.every((i) => i.url?.startsWith("http://science.sciencemag.org/")));
});

fixtureTest(
  "craigslist: the entity inside CDATA titles is decoded, inline markup read as text",
  async () => {
    const items = await parseFixture("rss-parser__craigslist.rss");
    assert.equal(items.length, 25);
    assert.equal(
      items[0].title,
      "Bright, Spacious Beautiful Victorian (oakland north / temescal) $4300 3bd 1930ft2",
    );
    assert.equal(
      items[1].title,
      "Beautifully Remodeled 1 BR with Garage Parking (Pacific Heights) $3449",
    );
    assert.ok(items.every((i) => !i.title?.includes("&#x0024;")));
    assert.equal(items[0].publishedAt, "2017-06-21T17:33:10.000Z");
    // RSS 1.0's <enc:enclosure resource=… type=…/> is kept as RSS 2.0's enclosure is (before:
    // 0 of its 24 were).
    assert.equal(items.filter((i) => i.enclosure).length, 24);
    assert.deepEqual(items[0].enclosure, {
      url: "https://images.craigslist.org/00l0l_fbVZikCjEKO_300x300.jpg",
      type: "image/jpeg",
    });
  },
);

fixtureTest(
  "a Latin-1 feed decodes by its XML declaration: Portuguese accents intact",
  async () => {
    const items = await parseFixture("rss-parser__encoding.rss");
    assert.equal(items.length, 40);
    assert.equal(items[0].title, "Mãe de utente é a nova presidente da Raríssimas");
    assert.equal(items[1].title, "Reações dos partidos ao veto de Marcelo");
    assert.ok(items[0].text?.includes("criança de três anos"));
    assert.equal(items[0].publishedAt, "2018-01-03T13:47:00.000Z"); // pubDate ends in CRLF and spaces
    assert.deepEqual(items[0].tags, ["Nacional"]);
    // Feedburner's <link> is its own redirect; <feedburner:origLink> is the article.
    assert.ok(items.every((i) => i.url?.startsWith("https://www.jn.pt/")), items[0].url);
    assert.equal(
      items[39].url,
      "https://www.jn.pt/economia/interior/lisboa-quer-passes-sociais-com-acesso-a-taxis-e-bicicletas-9020740.html",
    );
    assert.ok(items.every((i) => !JSON.stringify(i).includes("\uFFFD")));
  },
);

fixtureTest(
  "reddit RSS: one-line document, double-encoded descriptions become plain text",
  async () => {
    const items = await parseFixture("rss-parser__reddit.rss");
    assert.equal(items.length, 24);
    assert.equal(items[0].title, "The water is too deep, so he improvises");
    assert.deepEqual(items[0].tags, ["funny"]);
    assert.equal(items[0].text, "submitted by cakebeerandmorebeer to funny\n[link] [275 comments]");
    assert.ok(items.every((i) => !/&#\d+;|&quot;|<td>/.test(i.text ?? "")));
  },
);

fixtureTest("giantbomb: 730 episodes, PST dates read as UTC-8 even in summer", async () => {
  const items = await parseFixture("rss-parser__giantbomb-podcast.rss");
  assert.equal(items.length, 730);
  assert.equal(items[0].title, "Giant Bombcast 603: Call of Tuesday");
  assert.equal(items[0].publishedAt, "2019-10-01T22:30:00.000Z"); // Tue, 01 Oct 2019 14:30:00 PST
  assert.equal(items[0].author, "Giant Bomb");
  assert.ok(items.every((i) => i.publishedAt !== undefined && i.url?.startsWith("https://")));
});

fixtureTest("intertwingly: relative entry links resolve against the feed URL", async () => {
  const items = await parseFixture(
    "feedparser__intertwingly.atom",
    "http://intertwingly.net/blog/index.atom",
  );
  assert.equal(items.length, 20);
  assert.equal(items[0].url, "http://intertwingly.net/blog/2012/07/16/Inhibiting-Suspend");
  assert.ok(items.every((i) => i.url?.startsWith("http://intertwingly.net/blog/")));
  // xhtml content keeps inline words that xml2js would separate from their sentence
  assert.ok(items[0].text?.startsWith("The interface is a bit low level, but workable:"));
  assert.equal(items[0].guid, "tag:intertwingly.net,2004:3299");
  // Without a baseUrl the feed's own absolute link serves as base.
  assert.deepEqual(
    (await parseFixture("feedparser__intertwingly.atom")).map((i) => i.url),
    items.map((i) => i.url),
  );
});

fixtureTest(
  "rss2sample: the entry without title and link is yielded, its permalink guid its url",
  async () => {
    const src = await source({ path: "feedparser__rss2sample.xml" });
    const [items] = await readAll(src);
    assert.equal(items.length, 4);
    assert.equal(items[0].title, "Star City");
    assert.equal(items[0].author, "Writer"); // from "writer@example.com (Writer)"
    assert.equal(items[1].title, undefined);
    // RSS 2.0: a guid is a permalink unless isPermaLink="false" (before: no url, a dead letter).
    assert.equal(items[1].url, "http://liftoff.msfc.nasa.gov/2003/05/30.html#item572");
    assert.equal(items[1].guid, "http://liftoff.msfc.nasa.gov/2003/05/30.html#item572");
    assert.ok(items[1].text?.startsWith("Sky watchers in Europe, Asia, and parts of Alaska"));
    assert.equal(items[1].publishedAt, "2003-05-30T11:06:42.000Z");
  },
);

Deno.test("a polled feed file's warning is said once, whatever its first example is at each read", async () => {
  // Before: the relative-links warning quoted the first link, so a file rewritten with new
  // items said it again at every poll.
  const dir = await Deno.makeTempDir({ prefix: "millrace-feed-warn-" });
  try {
    const feed = (slug: string) =>
      `<rss version="2.0"><channel><title>t</title><link>/</link>` +
      `<item><title>${slug}</title><link>/story/${slug}</link></item></channel></rss>`;
    const log = memoryLogger();
    const src = await feedSource.create(
      feedConfig.parse({ path: "f.rss" }),
      { ...testEnv(dir, log), polled: true },
    );
    for (const slug of ["alpha", "bravo", "charlie"]) {
      await Deno.writeTextFile(join(dir, "f.rss"), feed(slug));
      await readAll(src);
    }
    const said = log.lines.filter((l) => l.includes("relative"));
    assert.equal(said.length, 1, log.lines.join("\n"));
    // Each file of a list says its own, names differing by a digit too (before: feed2's folded
    // into feed1's).
    await Deno.writeTextFile(join(dir, "feed1.rss"), feed("one"));
    await Deno.writeTextFile(join(dir, "feed2.rss"), feed("two"));
    const both = memoryLogger();
    await readAll(
      await feedSource.create(feedConfig.parse({ path: ["feed1.rss", "feed2.rss"] }), {
        ...testEnv(dir, both),
        polled: true,
      }),
    );
    assert.deepEqual(
      both.lines.filter((l) => l.includes("relative")).map((l) => /feed\d\.rss/.exec(l)?.[0]),
      ["feed1.rss", "feed2.rss"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

fixtureTest("relative links and two-digit years: resolved against baseUrl", async () => {
  const src = await source({
    path: "feedparser__rss-with-relative-urls.xml",
    baseUrl: "http://www.arcgames.com",
  });
  const [items] = await readAll(src);
  assert.equal(items.length, 2);
  assert.equal(
    items[0].url,
    "http://www.arcgames.com/en/games/neverwinter/news/detail/10743874-neverwinter-%26-jingle-jam-humble-bundle%21",
  );
  assert.ok(items.every((i) => i.url?.startsWith("http://www.arcgames.com/en/games/neverwinter/")));
  assert.equal(items[0].publishedAt, "2017-12-07T18:00:29.000Z"); // Thu, 07 Dec 17 10:00:29 -0800
  // With no baseUrl and only a relative channel link, links stay as written, and the fix is
  // said (before: nothing, and each item went to dead letters as "not an absolute URL").
  const log = memoryLogger();
  const [bare] = await readAll(
    await source({ path: "feedparser__rss-with-relative-urls.xml" }, log),
  );
  assert.match(bare[0].url ?? "", /^\/en\/games\/neverwinter\/news\/detail\//);
  const said = log.lines.filter((l) => l.includes("relative"));
  assert.equal(said.length, 1, log.lines.join("\n"));
  assert.match(
    said[0],
    /feedparser__rss-with-relative-urls\.xml: 2 of 2 item links are relative \(first: "\/en\/games\/neverwinter\/news\/detail\/.*"\) and the feed names no absolute address of its own to resolve them against: give the source the site's address as baseUrl/,
  );
  // Resolved, nothing is said.
  const quiet = memoryLogger();
  await readAll(
    await source({
      path: "feedparser__rss-with-relative-urls.xml",
      baseUrl: "http://www.arcgames.com",
    }, quiet),
  );
  assert.deepEqual(quiet.lines.filter((l) => l.includes("relative")), []);
});

fixtureTest("odd and broken dates: UTC zone parses, unreadable ones are left out", async () => {
  const [narro] = await parseFixture("rss-parser__narro.rss");
  assert.equal(narro.publishedAt, "2015-02-20T09:51:15.000Z"); // Fri, 20 Feb 2015 09:51:15 UTC
  const rss = `<rss version="2.0"><channel><title>t</title>
    <item><title>bad date</title><link>https://example.com/a</link><pubDate>someday soon</pubDate></item>
    <item><title>cest</title><link>https://example.com/b</link><pubDate>Mon, 06 Jul 2020 10:00:00 CEST</pubDate></item>
    </channel></rss>`;
  const items = await parseFeed(rss, { name: "dates.rss" });
  assert.equal(items[0].publishedAt, undefined);
  assert.equal(items[1].publishedAt, "2020-07-06T08:00:00.000Z");
  const atom = `<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
    <entry><title>bad</title><link href="https://example.com/c"/><published>yesterday</published></entry>
    <entry><title>good</title><link href="https://example.com/d"/><updated>2020-01-02T03:04:05Z</updated></entry>
    </feed>`;
  const entries = await parseFeed(atom, { name: "dates.atom" });
  assert.deepEqual(entries.map((e) => [e.title, e.publishedAt]), [
    ["bad", undefined],
    ["good", "2020-01-02T03:04:05.000Z"],
  ]);
});

fixtureTest("an Atom entry with no fields yields an empty item and no crash", async () => {
  const [items] = await readAll(await source({ path: "rss-parser__incomplete-fields.atom" }));
  assert.deepEqual(items, [{}]);
});

Deno.test("bytes are decoded by BOM, declaration, or HTTP charset", async () => {
  const rss = (title: string) =>
    `<rss version="2.0"><channel><title>c</title><item><title>${title}</title></item></channel></rss>`;
  const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(rss("Grüße"))]);
  assert.equal((await parseFeed(bom, { name: "bom" }))[0].title, "Grüße");
  const cp1252 = latin1Bytes(
    `<?xml version="1.0" encoding="windows-1252"?>${rss("\x93quoted\x94")}`,
  );
  assert.equal((await parseFeed(cp1252, { name: "cp1252" }))[0].title, "“quoted”");
  const noDecl = latin1Bytes(rss("S\xE3o Paulo"));
  assert.equal(
    (await parseFeed(noDecl, { name: "http", charset: "iso-8859-1" }))[0].title,
    "São Paulo",
  );
});

function latin1Bytes(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

Deno.test("config needs exactly one of path and url, and parses durations and sizes", () => {
  assert.throws(() => feedConfig.parse({}), /give either path/);
  assert.throws(
    () => feedConfig.parse({ path: "a.rss", url: "https://example.com/feed" }),
    /give either path/,
  );
  assert.throws(() => feedConfig.parse({ url: "ftp://example.com/feed" }));
  assert.throws(() => feedConfig.parse({ path: "a.rss", tiemout: "2s" }), /tiemout/);
  const c = feedConfig.parse({ url: "https://example.com/feed", timeout: "2s", maxBytes: "512kb" });
  assert.equal(c.timeout, 2_000);
  assert.equal(c.maxBytes, 512_000);
  assert.deepEqual(feedConfig.parse({ path: "a.rss" }), {
    path: "a.rss",
    timeout: 10_000,
    maxBytes: 10 * 1024 * 1024,
  });
});

fixtureTest("url mode: a poll answered 304 (ETag, Last-Modified) yields nothing", async () => {
  const body = await Deno.readFile(join(FEEDS, "feedparser__rss2sample.xml"));
  const seen: { inm: string | null; ims: string | null; ua: string | null }[] = [];
  await withServer((req) => {
    seen.push({
      inm: req.headers.get("if-none-match"),
      ims: req.headers.get("if-modified-since"),
      ua: req.headers.get("user-agent"),
    });
    if (req.headers.get("if-none-match") === `"v1"`) return new Response(null, { status: 304 });
    return new Response(body, {
      headers: {
        "content-type": "application/rss+xml",
        etag: `"v1"`,
        "last-modified": "Tue, 10 Jun 2003 04:00:00 GMT",
      },
    });
  }, async (origin) => {
    const src = await source({ url: `${origin}/rss.xml` });
    const first = await readAll(src);
    assert.deepEqual(first.map((b) => b.length), [4]);
    assert.equal(first[0][0].title, "Star City");
    assert.deepEqual(await readAll(src), []);
  });
  assert.equal(seen.length, 2);
  assert.deepEqual([seen[0].inm, seen[0].ims], [null, null]);
  assert.deepEqual([seen[1].inm, seen[1].ims], [`"v1"`, "Tue, 10 Jun 2003 04:00:00 GMT"]);
  assert.match(seen[0].ua ?? "", /^millrace\//);
});

fixtureTest(
  "url mode: a restarted source resumes with the validators and asks conditionally at once",
  async () => {
    const body = await Deno.readFile(join(FEEDS, "feedparser__rss2sample.xml"));
    const seen: [string | null, string | null][] = [];
    await withServer((req) => {
      const inm = req.headers.get("if-none-match"), ims = req.headers.get("if-modified-since");
      seen.push([inm, ims]);
      if (inm === `"v1"`) return new Response(null, { status: 304 });
      return new Response(body, {
        headers: { etag: `"v1"`, "last-modified": "Tue, 10 Jun 2003 04:00:00 GMT" },
      });
    }, async (origin) => {
      const first = await source({ url: `${origin}/rss.xml` });
      assert.equal(first.checkpoint!(), undefined, "nothing fetched yet: no position");
      assert.deepEqual((await readAll(first)).map((b) => b.length), [4]);
      const position = JSON.parse(JSON.stringify(first.checkpoint!()));
      assert.deepEqual(
        { ...position, seen: position.seen.length },
        { etag: `"v1"`, lastModified: "Tue, 10 Jun 2003 04:00:00 GMT", seen: 4 },
      );

      const second = await source({ url: `${origin}/rss.xml` });
      second.resume!(position);
      assert.deepEqual(await readAll(second), [], "the first poll after the restart is a 304");
      assert.throws(() => second.resume!({ etag: 1 }), /cannot resume from \{"etag":1\}/);
    });
    assert.deepEqual(seen, [
      [null, null],
      [`"v1"`, "Tue, 10 Jun 2003 04:00:00 GMT"],
    ]);
  },
);

fixtureTest("path mode needs no position", async () => {
  const src = await source({ path: "feedparser__rss2sample.xml" });
  src.resume!({ etag: "ignored" });
  assert.deepEqual((await readAll(src)).map((b) => b.length), [4]);
  assert.equal(src.checkpoint!(), undefined);
});

fixtureTest(
  "path mode, polled: an item is emitted once, not again at every poll, and that survives a restart",
  async () => {
    const dir = await Deno.makeTempDir();
    const feed = join(dir, "feed.xml");
    const sample = await Deno.readTextFile(join(FEEDS, "feedparser__rss2sample.xml"));
    await Deno.writeTextFile(feed, sample);
    const polled = async () =>
      await feedSource.create(feedConfig.parse({ path: "feed.xml" }), {
        ...testEnv(dir),
        polled: true,
      });
    const src = await polled();
    assert.deepEqual((await readAll(src)).map((b) => b.length), [4]);
    assert.deepEqual(await readAll(src), [], "the second poll of the same file sends nothing");
    // One more item at the top, as a feed grows.
    await Deno.writeTextFile(
      feed,
      sample.replace(
        "<item>",
        "<item><title>New</title><link>https://example.com/new</link></item><item>",
      ),
    );
    const [[added], ...rest] = await readAll(src);
    assert.deepEqual([added.title, rest.length], ["New", 0]);

    const position = JSON.parse(JSON.stringify(src.checkpoint!()));
    assert.equal(position.seen.length, 5);
    const restarted = await polled();
    restarted.resume!(position);
    assert.deepEqual(await readAll(restarted), [], "a restarted source remembers what it sent");
    await Deno.remove(dir, { recursive: true });
  },
);

fixtureTest("url mode: relative links resolve against the feed URL by default", async () => {
  const body = await Deno.readFile(join(FEEDS, "feedparser__rss-with-relative-urls.xml"));
  await withServer(() => new Response(body), async (origin) => {
    const [items] = await readAll(await source({ url: `${origin}/en/feed.xml` }));
    assert.equal(items.length, 2);
    assert.ok(items.every((i) => i.url?.startsWith(`${origin}/en/games/neverwinter/news/detail/`)));
  });
});

fixtureTest("url mode: a body larger than maxBytes aborts with a clear error", async () => {
  const body = await Deno.readFile(join(FEEDS, "rss-parser__giantbomb-podcast.rss"));
  await withServer((req) => {
    if (new URL(req.url).pathname === "/declared") return new Response(body);
    // Streamed without Content-Length: the cap must hold while reading.
    return new Response(ReadableStream.from([body.subarray(0, 600_000), body.subarray(600_000)]));
  }, async (origin) => {
    for (const path of ["/declared", "/streamed"]) {
      const src = await source({ url: origin + path, maxBytes: "500kb" });
      await assert.rejects(
        readAll(src),
        new RegExp(`GET ${origin}${path}: response is larger than the limit of 500000 bytes`),
      );
    }
  });
});

Deno.test("url mode: a server slower than the timeout fails the poll", async () => {
  const pending = new Set<() => void>();
  await withServer(async () => {
    // Answers only when the test lets it, long after the client gave up.
    await new Promise<void>((resolve) => pending.add(resolve));
    return new Response("<rss/>");
  }, async (origin) => {
    const src = await source({ url: `${origin}/slow.xml`, timeout: "200ms" });
    try {
      await assert.rejects(readAll(src), /slow\.xml: no complete response within 200 ms/);
    } finally {
      for (const answer of pending) answer();
    }
  });
});

Deno.test("url mode: an HTTP error status fails the poll with the status", async () => {
  await withServer(() => new Response("nope", { status: 503 }), async (origin) => {
    await assert.rejects(readAll(await source({ url: `${origin}/feed` })), /feed: HTTP 503/);
  });
});

fixtureTest("check() fails before the flow starts when a feed file is missing", async () => {
  const src = await source({ path: ["feedparser__rss2sample.xml", "nope.xml"] });
  await assert.rejects(
    async () => await src.check?.(),
    (e: unknown) => {
      assert.ok(e instanceof FieldError, String(e));
      assert.equal(e.message, `nope.xml: no such file (${join(FEEDS, "nope.xml")})`);
      assert.deepEqual(e.field, ["path", 1], "points at the bad entry of the list");
      return true;
    },
  );
  await (await source({ path: "feedparser__rss2sample.xml" })).check?.();
  await (await source({ url: "http://127.0.0.1:9/never-fetched-by-check.xml" })).check?.();
});

/** The bytes of a fixture with its `<?xml ...?>` declaration cut off. */
async function withoutDeclaration(file: string): Promise<Uint8Array<ArrayBuffer>> {
  const bytes = await Deno.readFile(join(FEEDS, file));
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, 200));
  assert.match(head, /^<\?xml[^>]*\?>/);
  return bytes.slice(head.indexOf("?>") + 2);
}

fixtureTest(
  "a Latin-1 feed with no XML declaration reads as windows-1252, with one warning",
  async () => {
    const bytes = await withoutDeclaration("rss-parser__encoding.rss");
    const warnings: string[] = [];
    const items = await parseFeed(bytes, {
      name: "latin1.rss",
      onWarning: (w) => warnings.push(w),
    });
    assert.equal(items.length, 40);
    assert.equal(items[0].title, "Mãe de utente é a nova presidente da Raríssimas");
    assert.equal(items[1].title, "Reações dos partidos ao veto de Marcelo");
    assert.ok(items.every((i) => !JSON.stringify(i).includes("\uFFFD")));
    assert.deepEqual(warnings, [
      "latin1.rss: no encoding declared and not valid UTF-8: read as windows-1252 (Latin-1); set charset: to choose",
    ]);
    // An HTTP charset of utf-8 (a server default) is checked the same way.
    const viaHttp: string[] = [];
    const again = await parseFeed(bytes, {
      name: "h",
      charset: "utf-8",
      onWarning: (w) => viaHttp.push(w),
    });
    assert.equal(again[0].title, items[0].title);
    assert.match(viaHttp[0], /^h: declared UTF-8 by the HTTP Content-Type and not valid UTF-8/);
  },
);

fixtureTest("url mode: the encoding warning is logged once per feed, its URL masked", async () => {
  const bytes = await withoutDeclaration("rss-parser__encoding.rss");
  const log = memoryLogger();
  await withServer(
    () => new Response(bytes, { headers: { "content-type": "text/xml" } }),
    async (origin) => {
      const url = origin.replace("http://", "http://reader:s3cret-pw@") + "/latin1.xml";
      const src = await source({ url }, log);
      for (let poll = 0; poll < 3; poll++) {
        const batches = await readAll(src);
        if (poll > 0) {
          assert.deepEqual(batches, [], "the same items again: emitted once");
          continue;
        }
        const [items] = batches;
        assert.equal(items[0].title, "Mãe de utente é a nova presidente da Raríssimas");
        assert.ok(items.every((i) => !i.url?.includes("s3cret")), "no password in item links");
      }
    },
  );
  const warnings = log.lines.filter((l) => l.startsWith("warn"));
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0], /reader:\*\*\*@127\.0\.0\.1:\d+\/latin1\.xml: no encoding declared/);
  assert.ok(!log.lines.join("\n").includes("s3cret"));
});

Deno.test("charset: forces an encoding over everything; unknown labels fail the config", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-charset-" });
  // UTF-8 bytes under a declaration that says Latin-1: read as UTF-8 (they were read as
  // labelled, every accent two characters, unsaid), unless the flow forces a charset.
  await Deno.writeTextFile(
    join(dir, "lies.rss"),
    `<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><title>c</title>` +
      `<item><title>Grüße aus Köln</title><link>https://example.com/a</link></item></channel></rss>`,
  );
  const read = async (config: Record<string, unknown>) => {
    const src = await feedSource.create(
      feedConfig.parse({ path: "lies.rss", ...config }),
      testEnv(dir),
    );
    return (await readAll(src))[0][0].title;
  };
  assert.equal(await read({}), "Grüße aus Köln");
  assert.equal(await read({ charset: "iso-8859-1" }), "GrÃ¼ÃŸe aus KÃ¶ln");
  assert.equal(await read({ charset: "utf-8" }), "Grüße aus Köln");
  assert.equal(await read({ charset: "UTF8" }), "Grüße aus Köln");
  assert.throws(() => feedConfig.parse({ path: "a.rss", charset: "klingon" }), /encoding label/);
});

Deno.test("UTF-8 with a few stray bytes stays UTF-8 and counts them in a warning", async () => {
  const good = new TextEncoder().encode(
    `<rss version="2.0"><channel><title>c</title><item><title>Grüße `,
  );
  const rest = new TextEncoder().encode(`</title></item></channel></rss>`);
  const bytes = new Uint8Array([...good, 0xe9, ...rest]);
  const warnings: string[] = [];
  const [item] = await parseFeed(bytes, { name: "mixed", onWarning: (w) => warnings.push(w) });
  assert.equal(item.title, "Grüße \uFFFD");
  assert.match(warnings[0], /^mixed: no encoding declared, but 1 byte sequence\(s\) are not UTF-8/);
});

Deno.test("dates with day and month names in other languages are read", async () => {
  const dates: [string, string][] = [
    ["Seg, 24 Set 2018 19:42:40 -0300", "2018-09-24T22:42:40.000Z"], // Portuguese
    ["Sáb, 01 Dez 2018 08:00:00 -0300", "2018-12-01T11:00:00.000Z"],
    ["Mié, 05 Dic 2018 10:00:00 +0100", "2018-12-05T09:00:00.000Z"], // Spanish
    ["Mar, 04 Sep 2018 10:00:00 +0200", "2018-09-04T08:00:00.000Z"], // martes, not March
    ["mar., 24 juil. 2018 10:00:00 +0200", "2018-07-24T08:00:00.000Z"], // French
    ["Lun, 18 Juin 2018 10:00:00 GMT", "2018-06-18T10:00:00.000Z"],
    ["jeu., 15 févr. 2018 10:00:00 +0100", "2018-02-15T09:00:00.000Z"],
    ["Di, 24 Mai 2018 19:42:40 +0200", "2018-05-24T17:42:40.000Z"], // German
    ["Do, 25 Okt 18 10:00:00 MESZ", "2018-10-25T08:00:00.000Z"], // and a two-digit year
    ["Fr, 23. März 2018 10:00:00 MEZ", "2018-03-23T09:00:00.000Z"],
    ["gio, 21 giu 2018 10:00:00 +0200", "2018-06-21T08:00:00.000Z"], // Italian
    ["Ven, 12 Ott 2018 10:00:00 +0200", "2018-10-12T08:00:00.000Z"],
    ["wo, 28 mrt 2018 10:00:00 +0100", "2018-03-28T09:00:00.000Z"], // Dutch
    ["Sat, 24 Jul 2018 19:42:40 PST", "2018-07-25T03:42:40.000Z"], // PST in summer: as written
    ["Tue, 24 Jul 2018 19:42:40 UTC", "2018-07-24T19:42:40.000Z"],
  ];
  const rss = `<rss version="2.0"><channel><title>c</title>${
    dates.map(([d], i) =>
      `<item><title>t${i}</title><link>https://example.com/${i}</link><pubDate>${d}</pubDate></item>`
    ).join("")
  }</channel></rss>`;
  const warnings: string[] = [];
  const items = await parseFeed(rss, { name: "intl.rss", onWarning: (w) => warnings.push(w) });
  assert.deepEqual(
    items.map((i) => [i.title, i.publishedAt]),
    dates.map(([, iso], i) => [`t${i}`, iso]),
  );
  assert.deepEqual(warnings, []);
  const atom = `<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
    <entry><title>a</title><link href="https://example.com/a"/><published>Seg, 24 Set 2018 19:42:40 -0300</published></entry>
    </feed>`;
  const [entry] = await parseFeed(atom, { name: "intl.atom" });
  assert.equal(entry.publishedAt, "2018-09-24T22:42:40.000Z");
});

Deno.test("unreadable dates are counted in one warning and the items go on without a date", async () => {
  const rss = `<rss version="2.0"><channel><title>c</title>
    <item><title>a</title><link>https://example.com/a</link><pubDate>someday soon</pubDate></item>
    <item><title>b</title><link>https://example.com/b</link><pubDate>Mon, 06 Jul 2020 10:00:00 CEST</pubDate></item>
    <item><title>c</title><link>https://example.com/c</link><pubDate>32/13/2020</pubDate></item>
    <item><title>d</title><link>https://example.com/d</link></item>
    </channel></rss>`;
  const warnings: string[] = [];
  const items = await parseFeed(rss, { name: "dates.rss", onWarning: (w) => warnings.push(w) });
  assert.deepEqual(items.map((i) => i.publishedAt), [
    undefined,
    "2020-07-06T08:00:00.000Z",
    undefined,
    undefined,
  ]);
  assert.deepEqual(warnings, [
    `dates.rss: 2 of 4 item dates could not be read (first: "someday soon"); those items go on without publishedAt`,
  ]);
});

const twoGoodOneBad = (bad: string) =>
  `<?xml version="1.0"?>
<rss version="2.0"><channel><title>c</title>
<item><title>one</title><link>https://example.com/1</link></item>
${bad}
<item><title>three</title><link>https://example.com/3</link></item>
</channel></rss>`;

Deno.test("a bare & in a link costs nothing: escaped, every item kept, the line named", async () => {
  const xml = twoGoodOneBad(
    `<item><title>two &amp; more</title><link>https://example.com/2?a=1&b=2</link></item>`,
  );
  const warnings: string[] = [];
  const items = await parseFeed(xml, { name: "amp.rss", onWarning: (w) => warnings.push(w) });
  assert.deepEqual(items.map((i) => [i.title, i.url]), [
    ["one", "https://example.com/1"],
    ["two & more", "https://example.com/2?a=1&b=2"],
    ["three", "https://example.com/3"],
  ]);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0],
    /^amp\.rss: not well-formed XML at line 4: invalid character in entity name near ".*example\.com\/2\?a=1&b=" \(a bare "&" must be written &amp;\); read leniently \(escaped 1 bare "&"\), 3 item\(s\) kept$/,
  );
  const lt = twoGoodOneBad(
    `<item><title>1 < 2 &lt; 3</title><link>https://example.com/2</link></item>`,
  );
  const ltWarnings: string[] = [];
  const three = await parseFeed(lt, { name: "lt.rss", onWarning: (w) => ltWarnings.push(w) });
  assert.deepEqual(three.map((i) => i.title), ["one", "1 < 2 < 3", "three"]);
  assert.match(
    ltWarnings[0],
    /^lt\.rss: not well-formed XML at line 4: unencoded < .*\(escaped 1 bare "<"\), 3 item\(s\) kept$/,
  );
  // CDATA keeps its & as text: not escaped twice.
  const cdata = twoGoodOneBad(
    `<item><title><![CDATA[A & B]]></title><link>https://example.com/2?a=1&b=2</link></item>`,
  );
  assert.equal((await parseFeed(cdata, { name: "c" }))[1].title, "A & B");
});

Deno.test("a broken item is dropped, the items around it kept; a cut-off feed keeps what came before", async () => {
  const warnings: string[] = [];
  const onWarning = (w: string) => warnings.push(w);
  const broken = twoGoodOneBad(`<item><title>two</titel><link>https://example.com/2</link></item>`);
  const items = await parseFeed(broken, { name: "tag.rss", onWarning });
  assert.deepEqual(items.map((i) => i.title), ["one", "three"]);
  assert.match(
    warnings[0],
    /^tag\.rss: not well-formed XML at line 4: unexpected close tag near "<item><title>two<\/titel>"; read leniently \(dropped 1 unreadable item\(s\)\), 2 item\(s\) kept$/,
  );

  const full = twoGoodOneBad(`<item><title>two</title><link>https://example.com/2</link></item>`);
  const cut = full.slice(0, full.indexOf("<item><title>three") + 20);
  const head = await parseFeed(cut, { name: "cut.rss", onWarning });
  assert.deepEqual(head.map((i) => i.title), ["one", "two"]);
  assert.match(
    warnings[1],
    /^cut\.rss: not well-formed XML at line 5: unclosed root tag near .*2 item\(s\) kept$/,
  );

  const atom = `<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><title>a</title><link href="https://example.com/a?x=1&y=2"/></entry>
<entry><title>b</title><link href="https://example.com/b"/></entry>
</feed>`;
  assert.deepEqual((await parseFeed(atom, { name: "a.atom" })).map((e) => e.url), [
    "https://example.com/a?x=1&y=2",
    "https://example.com/b",
  ]);
});

Deno.test("control characters XML forbids are removed, with the line of the first", async () => {
  const atom = `<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><title>a</title><link href="https://example.com/a"/><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">bell\x07 here</div></content></entry>
<entry><title>b\x0B</title><link href="https://example.com/b"/></entry>
</feed>`;
  const warnings: string[] = [];
  const items = await parseFeed(atom, { name: "ctl.atom", onWarning: (w) => warnings.push(w) });
  assert.deepEqual(items.map((i) => [i.title, i.text]), [["a", "bell here"], ["b", undefined]]);
  assert.deepEqual(warnings, [
    "ctl.atom: not well-formed XML at line 2: control character U+0007, which XML forbids; read leniently (removed 2 control character(s)), 2 item(s) kept",
  ]);
});

Deno.test("a feed beyond repair says it is a malformed feed and where, not that it is not a feed", async () => {
  await assert.rejects(
    parseFeed(
      `<rss version="2.0"><channel>\n<title>c</titel><item><title>a</title></item></channel></rss>`,
      {
        name: "junk.rss",
      },
    ),
    /^Error: junk\.rss: malformed <rss> feed, not well-formed XML at line 2: /,
  );
});

fixtureTest("gzip bytes with no Content-Encoding say so instead of 'not a feed'", async () => {
  const body = await Deno.readFile(join(FEEDS, "feedparser__rss2sample.xml"));
  const gz = new Uint8Array(
    await new Response(ReadableStream.from([body]).pipeThrough(new CompressionStream("gzip")))
      .arrayBuffer(),
  );
  await assert.rejects(
    parseFeed(gz, { name: "feed.xml.gz" }),
    /^Error: feed\.xml\.gz: the body is gzip-compressed \(it starts with bytes 1f 8b\) but nothing decompressed it/,
  );
  await withServer(
    () => new Response(gz, { headers: { "content-type": "application/rss+xml" } }),
    async (origin) => {
      await assert.rejects(
        readAll(await source({ url: `${origin}/feed` })),
        /feed: the body is gzip-compressed.*no Content-Encoding: gzip/,
      );
    },
  );
});

Deno.test("url mode: a 304 to a request that was not conditional yields nothing and warns", async () => {
  const log = memoryLogger();
  await withServer(() => new Response(null, { status: 304 }), async (origin) => {
    const src = await source({ url: `${origin}/feed` }, log);
    assert.deepEqual(await readAll(src), []);
  });
  const warnings = log.lines.filter((l) => l.startsWith("warn"));
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0],
    /\/feed: answered 304 Not Modified to a request that was not conditional .*a cache or proxy in between misbehaves/,
  );
});

Deno.test("url mode: a failing feed URL's password is in no error", async () => {
  await withServer((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/html") return new Response("<html><body>login</body></html>");
    return new Response("nope", { status: 503 });
  }, async (origin) => {
    for (const path of ["/html", "/503"]) {
      const url = origin.replace("http://", "http://reader:p%40ss-w0rd@") + path;
      await assert.rejects(readAll(await source({ url })), (e: Error) => {
        assert.ok(!/p%40ss-w0rd|p@ss-w0rd/.test(e.message), e.message);
        assert.match(e.message, /reader:\*\*\*@127\.0\.0\.1/);
        return true;
      });
    }
  });
});

fixtureTest("the incomplete Atom entry is rejected by the Validator with a reason", async () => {
  const [items] = await readAll(await source({ path: "rss-parser__incomplete-fields.atom" }));
  const validator = await createStage<RawItem, ValidItem>(validateStage, {});
  const envelopes = items.map((i) => envelope(i, "test"));
  const outcome = await run(validator, envelopes);
  assert.equal(outcome.emitted.length, 0);
  assert.deepEqual(outcome.rejected.map((r) => r.reason), ['missing required field "title"']);
});

Deno.test("url mode: items a feed repeats across polls are emitted once, across a restart too", async () => {
  const item = (n: number) =>
    `<item><title>Story ${n}</title><link>https://news.example/${n}</link></item>`;
  let version = 1;
  const feed = () =>
    `<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>${
      Array.from({ length: version + 1 }, (_, i) => item(version + 1 - i)).join("")
    }</channel></rss>`;
  await withServer(
    () =>
      new Response(feed(), {
        headers: { "content-type": "application/rss+xml", etag: `"v${version}"` },
      }),
    async (origin) => {
      const src = await source({ url: `${origin}/rss.xml` });
      const titles = async (s: Source) => (await readAll(s)).flat().map((i) => i.title);
      assert.deepEqual(await titles(src), ["Story 2", "Story 1"]);
      version = 2; // Story 3 on top of the two before
      assert.deepEqual(await titles(src), ["Story 3"]);
      version = 3;
      const restarted = await source({ url: `${origin}/rss.xml` });
      restarted.resume!(JSON.parse(JSON.stringify(src.checkpoint!())));
      assert.deepEqual(await titles(restarted), ["Story 4"]);
    },
  );
});

fixtureTest(
  "url mode: a body cut short and read up to its last whole item leaves no ETag: the next poll reads the whole feed",
  async () => {
    const body = await Deno.readFile(join(FEEDS, "feedparser__rss2sample.xml"));
    // The first answer breaks off inside the third item, with no Content-Length to tell.
    const text = new TextDecoder().decode(body);
    const third = text.indexOf("<item>", text.indexOf("<item>", text.indexOf("<item>") + 1) + 1);
    const cut = new TextEncoder().encode(text.slice(0, third + 30));
    const conditional: (string | null)[] = [];
    let answers = 0;
    await withServer((req) => {
      conditional.push(req.headers.get("if-none-match"));
      if (req.headers.get("if-none-match") === `"v1"`) return new Response(null, { status: 304 });
      const whole = answers++ > 0;
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(whole ? body : cut);
          c.close();
        },
      });
      return new Response(stream, {
        headers: { "content-type": "application/rss+xml", etag: `"v1"` },
      });
    }, async (origin) => {
      const src = await source({ url: `${origin}/rss.xml` });
      assert.equal((await readAll(src)).flat().length, 2, "the two whole items of the cut body");
      assert.equal((await readAll(src)).flat().length, 2, "the other two, on the next poll");
    });
    assert.deepEqual(conditional, [null, null]);
  },
);

fixtureTest(
  "url mode: resume(undefined) puts the source back at the start, forgetting what it had read",
  async () => {
    const body = await Deno.readFile(join(FEEDS, "feedparser__rss2sample.xml"));
    await withServer(
      () =>
        new Response(body, { headers: { "content-type": "application/rss+xml", etag: `"v1"` } }),
      async (origin) => {
        const src = await source({ url: `${origin}/rss.xml` });
        assert.equal((await readAll(src)).flat().length, 4);
        // What a durable flow does when Redis kept no position for it (its first sends lost).
        src.resume!(undefined);
        assert.equal(src.checkpoint!(), undefined);
        assert.equal((await readAll(src)).flat().length, 4, "read again, unconditionally");
      },
    );
  },
);

Deno.test("an Atom link with no attribute is skipped, or read as its text, not the whole feed; an <rss> with no channel says so", async () => {
  // rss-parser failed on `<link/>` ("reading 'rel'"), which was said as XML not well-formed, and
  // every item of the feed was lost.
  const atom = `<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><title>Entry one title</title><link href="https://example.com/1"/><link/></entry>
<entry><title>Entry two title</title><link></link><link href="https://example.com/2"/></entry>
<entry><title>Entry three title</title><link> https://example.com/3?a=1&amp;b=2 </link></entry>
<entry><title>Entry four title</title><link><![CDATA[https://example.com/4?a=1&b=2]]></link></entry>
<entry><title>Entry five title</title><link><!-- mirror -->https://example.com/5</link></entry>
</feed>`;
  const warnings: string[] = [];
  const items = await parseFeed(atom, { name: "a", onWarning: (m) => warnings.push(m) });
  assert.deepEqual(items.map((i) => i.url), [
    "https://example.com/1",
    "https://example.com/2",
    "https://example.com/3?a=1&b=2",
    "https://example.com/4?a=1&b=2",
    "https://example.com/5",
  ]);
  assert.deepEqual(warnings, []);
  await assert.rejects(
    parseFeed(`<rss version="2.0"></rss>`, { name: "e" }),
    /^Error: e: an <rss> feed with no <channel>: there is nothing to read$/,
  );
});

Deno.test("what rss-parser reads wrong is read as a reader would: links, titles, dates, guids, enclosures", async () => {
  const atom = `<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><title type="html">Using the &lt;code&gt;&amp;lt;div&amp;gt;&lt;/code&gt; element</title>
  <link rel="edit" href="/api/entries/1"/><link href="/posts/1"/><id>1</id>
  <updated>2024-01-01T00:00:00Z</updated></entry>
<entry><title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">An <em>xhtml</em> title</div></title>
  <link href="/posts/2"/><id>2</id><updated>2024-01-01T00:00:00Z</updated></entry>
<entry><title>Text: &lt;b&gt;not bold&lt;/b&gt;</title><link href="/posts/3"/><id>3</id>
  <published>jeu., 6 déc. 2018 10:00:00 +0100</published></entry>
</feed>`;
  const warnings: string[] = [];
  const a = await parseFeed(atom, {
    name: "a",
    baseUrl: "https://ex.com/feed",
    onWarning: (w) => warnings.push(w),
  });
  assert.deepEqual(a.map((i) => [i.title, i.url]), [
    ["Using the <div> element", "https://ex.com/posts/1"], // a link without rel is the alternate
    ["An xhtml title", "https://ex.com/posts/2"], // was dropped: a dead letter "missing title"
    ["Text: <b>not bold</b>", "https://ex.com/posts/3"], // a text title is text
  ]);
  assert.equal(a[2].publishedAt, "2018-12-06T09:00:00.000Z"); // "déc." read as December

  const rss = `<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>Loft 1930ft&lt;sup&gt;2&lt;/sup&gt;</title><link>/l</link>
  <pubDate>Fr, 23. Mär 2018 10:00:00 +0100</pubDate></item>
<item><title>Using the &lt;div&gt; element</title><guid>https://ex.com/posts/guid-only</guid></item>
<item><title>Guid not a url</title><guid isPermaLink="false">abc-123</guid></item>
<item><title>Why &lt;em&gt; beats &lt;i&gt; (and &lt;i&gt;x&lt;/i&gt;)</title>
  <guid isPermaLink="false">https://cms.internal.example/node/123</guid></item>
<item><title>Podcast</title><enclosure url="/a.mp3" length="1234" type="audio/mpeg"/></item>
</channel></rss>`;
  const r = await parseFeed(rss, {
    name: "r",
    baseUrl: "https://ex.com/feed",
    onWarning: (w) => warnings.push(w),
  });
  assert.deepEqual(r.map((i) => [i.title, i.url]), [
    ["Loft 1930ft2", "https://ex.com/l"],
    ["Using the <div> element", "https://ex.com/posts/guid-only"],
    ["Guid not a url", undefined],
    // A guid that says it is no permalink is not the url, whatever it looks like;
    // tag names in a sentence stay, a pair of inline markup leaves its words.
    ["Why <em> beats <i> (and x)", undefined],
    ["Podcast", "https://ex.com/a.mp3"],
  ]);
  assert.equal(r[0].publishedAt, "2018-03-23T09:00:00.000Z"); // "Mär" read as March
  assert.deepEqual(r[4].enclosure, {
    url: "https://ex.com/a.mp3",
    type: "audio/mpeg",
    length: 1234,
  });
  assert.deepEqual(warnings, [], "every date was read");
});

Deno.test("a single-byte label over UTF-8 bytes is read as UTF-8 and said; real Latin-1 stays Latin-1", () => {
  const utf8 = new TextEncoder().encode(
    `<?xml version="1.0" encoding="ISO-8859-1"?><rss><channel><title>Café com açúcar</title></channel></rss>`,
  );
  const read = decodeXmlWithEvidence(utf8, { httpCharset: "utf-8" });
  assert.match(read.text, /Café com açúcar/);
  assert.equal(read.encoding, "utf-8");
  assert.equal(
    read.warning,
    "the XML declaration says windows-1252 but the bytes are UTF-8: read as UTF-8",
  );
  // The same words in Latin-1 bytes are not UTF-8: the label holds.
  const latin1 = Uint8Array.from(
    `<?xml version="1.0" encoding="ISO-8859-1"?><rss><channel><title>Café com açúcar</title></channel></rss>`,
    (c) => c.charCodeAt(0),
  );
  const kept = decodeXmlWithEvidence(latin1);
  assert.match(kept.text, /Café com açúcar/);
  assert.equal(kept.encoding, "windows-1252");
  assert.equal(kept.warning, undefined);
});

Deno.test("Atom's xml:base, the feed's and an entry's own, resolves relative links", async () => {
  // rss-parser drops xml:base: links were resolved against the feed's URL, /feeds/….
  const atom = `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://example.org/blog/">
  <title>Blog</title><id>urn:x</id><updated>2026-01-01T00:00:00Z</updated>
  <entry><title>One</title><id>urn:1</id><updated>2026-01-01T00:00:00Z</updated>
    <link rel="alternate" href="2026/01/one.html"/></entry>
  <entry xml:base="https://cdn.example.org/posts/"><title>Two</title><id>urn:2</id>
    <updated>2026-01-01T00:00:00Z</updated><link href="two.html"/></entry>
  <entry xml:base="../drafts/"><title>Three</title><id>urn:3</id>
    <updated>2026-01-01T00:00:00Z</updated><link href="three.html"/></entry>
</feed>`;
  const items = await parseFeed(new TextEncoder().encode(atom), {
    name: "t",
    baseUrl: "https://example.org/feeds/atom.xml",
  });
  assert.deepEqual(items.map((i) => i.url), [
    "https://example.org/blog/2026/01/one.html",
    "https://cdn.example.org/posts/two.html",
    "https://example.org/drafts/three.html",
  ]);
});

Deno.test("a feed URL's token stays out of item links resolved against it, a bare #fragment's too", async () => {
  const feed = `<?xml version="1.0"?><rss version="2.0"><channel><title>c</title>` +
    `<item><title>A fragment</title><link>#a1</link></item>` +
    `<item><title>A relative path</title><link>story/2?id=2</link></item></channel></rss>`;
  await withServer(
    () => new Response(feed, { headers: { "content-type": "application/rss+xml" } }),
    async (origin) => {
      const src = await source({ url: `${origin}/feed.xml?id=7&access_token=T0k3n-s3cret` });
      const [items] = await readAll(src);
      assert.deepEqual(items.map((i) => i.url), [
        `${origin}/feed.xml?id=7#a1`,
        `${origin}/story/2?id=2`,
      ]);
    },
  );
});
