import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { withServer } from "../../_http_server.ts";
import { fetchLimited } from "../../../adapters/http/http_fetch.ts";
import {
  sitemapConfig,
  sitemapSource,
  type SitemapUrl,
  sitemapUrls,
} from "../../../adapters/sources/sitemap_source.ts";
import type { RawItem } from "../../../engine/item.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { type BuildEnv, Registry } from "../../../engine/registry.ts";
import type { Source } from "../../../engine/source.ts";
import type { HttpClient } from "../../../engine/http.ts";

const http: HttpClient = { get: (u, r) => fetchLimited(u, { ...r, allow: ["127.0.0.1"] }) };

const env: BuildEnv = {
  flow: "test",
  baseDir: ".",
  outDir: ".",
  log: memoryLogger(),
  registry: new Registry(),
  http,
};

async function source(config: Record<string, unknown>): Promise<Source> {
  return await sitemapSource.create(sitemapConfig.parse(config), env);
}

async function readAll(src: Source): Promise<RawItem[][]> {
  const batches: RawItem[][] = [];
  for await (const batch of src.read(new AbortController().signal)) batches.push(batch);
  return batches;
}

const urlset = (entries: [string, string?][]) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n` +
  entries.map(([loc, lastmod]) =>
    `  <url><loc>${loc}</loc>${lastmod ? `<lastmod>${lastmod}</lastmod>` : ""}</url>\n`
  ).join("") + "</urlset>\n";

const index = (entries: [string, string?][]) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n` +
  entries.map(([loc, lastmod]) =>
    `  <sitemap><loc>${loc}</loc>${lastmod ? `<lastmod>${lastmod}</lastmod>` : ""}</sitemap>\n`
  ).join("") + "</sitemapindex>\n";

/** A site whose documents are `docs` (path -> body), counting the GETs of each path. */
function site(docs: Map<string, string | Uint8Array>, hits: string[] = []) {
  return (req: Request) => {
    const path = new URL(req.url).pathname;
    hits.push(path);
    const body = docs.get(path);
    if (body === undefined) return new Response("no such page", { status: 404 });
    const gz = path.endsWith(".gz");
    return new Response(body as BodyInit, {
      headers: { "content-type": gz ? "application/x-gzip" : "application/xml" },
    });
  };
}

Deno.test("a urlset gives one item per page: url, title = url, lastmod; relative locs resolve", async () => {
  const docs = new Map([[
    "/sitemap.xml",
    urlset([
      ["https://example.com/a", "2026-05-01"],
      ["/b?x=1&amp;y=2", "2026-05-02T10:00:00+02:00"],
      ["<![CDATA[https://example.com/c]]>"],
    ]),
  ]]);
  await withServer(site(docs), async (origin) => {
    const batches = await readAll(await source({ url: `${origin}/sitemap.xml` }));
    assert.deepEqual(batches.flat(), [
      {
        url: "https://example.com/a",
        title: "https://example.com/a",
        lastmod: "2026-05-01T00:00:00.000Z",
      },
      {
        url: `${origin}/b?x=1&y=2`,
        title: `${origin}/b?x=1&y=2`,
        lastmod: "2026-05-02T08:00:00.000Z",
      },
      { url: "https://example.com/c", title: "https://example.com/c" },
    ]);
  });
});

Deno.test("an index is followed depth first, gzip files are gunzipped, a repeated sitemap is read once", async () => {
  const hits: string[] = [];
  const docs = new Map<string, string | Uint8Array>([
    ["/index.xml", index([["/news.xml.gz"], ["/more-index.xml"], ["/index.xml"]])],
    ["/news.xml.gz", gzipSync(urlset([["https://example.com/n1"], ["https://example.com/n2"]]))],
    ["/more-index.xml", index([["/pages.xml"], ["/news.xml.gz"]])],
    ["/pages.xml", urlset([["https://example.com/p1"]])],
  ]);
  await withServer(site(docs, hits), async (origin) => {
    const items = (await readAll(await source({ url: `${origin}/index.xml` }))).flat();
    assert.deepEqual(items.map((i) => i.url), [
      "https://example.com/n1",
      "https://example.com/n2",
      "https://example.com/p1",
    ]);
    assert.deepEqual(hits, ["/index.xml", "/news.xml.gz", "/more-index.xml", "/pages.xml"]);
  });
});

Deno.test("nesting past maxDepth and more sitemaps than maxSitemaps fail the poll, naming the limit", async () => {
  const docs = new Map<string, string | Uint8Array>([
    ["/a.xml", index([["/b.xml"]])],
    ["/b.xml", index([["/c.xml"]])],
    ["/c.xml", index([["/d.xml"]])],
    ["/d.xml", urlset([["https://example.com/deep"]])],
    ["/many.xml", index([["/d.xml"], ["/e.xml"], ["/f.xml"]])],
    ["/e.xml", urlset([["https://example.com/e"]])],
    ["/f.xml", urlset([["https://example.com/f"]])],
  ]);
  await withServer(site(docs), async (origin) => {
    await assert.rejects(
      readAll(await source({ url: `${origin}/a.xml`, maxDepth: 2 })),
      new RegExp(
        `sitemap ${origin}/c\\.xml: is a sitemap index \\(it lists sitemaps\\) at level 3, past ` +
          `maxDepth 2 \\(at most 2 level\\(s\\) of indexes above the pages\\); ` +
          `reached from ${origin}/b\\.xml; raise maxDepth`,
      ),
    );
    const deep = (await readAll(await source({ url: `${origin}/a.xml`, maxDepth: 3 }))).flat();
    assert.deepEqual(deep.map((i) => i.url), ["https://example.com/deep"]);
    await assert.rejects(
      readAll(await source({ url: `${origin}/many.xml`, maxSitemaps: 3 })),
      new RegExp(`sitemap ${origin}/many\\.xml: lists more than 3 sitemaps \\(maxSitemaps\\)`),
    );
    await assert.rejects(
      readAll(await source({ url: `${origin}/many.xml`, maxDepth: 0 })),
      // Before: "lists another sitemap index", of an index that lists only urlsets.
      /many\.xml: is a sitemap index \(it lists sitemaps\) at level 1, past maxDepth 0 \(url must list pages\)/,
    );
    const flat = (await readAll(await source({ url: `${origin}/e.xml`, maxDepth: 0 }))).flat();
    assert.deepEqual(flat.map((i) => i.url), ["https://example.com/e"]);
  });
});

Deno.test("a later poll emits only pages whose lastmod moved, and skips unchanged child sitemaps; the position survives a restart", async () => {
  const hits: string[] = [];
  const docs = new Map<string, string | Uint8Array>([
    ["/index.xml", index([["/old.xml", "2026-01-10"], ["/new.xml", "2026-05-02T12:00:00Z"]])],
    ["/old.xml", urlset([["https://example.com/old1", "2026-01-09"]])],
    [
      "/new.xml",
      urlset([
        ["https://example.com/n1", "2026-05-01T09:00:00Z"],
        ["https://example.com/n2", "2026-05-02T12:00:00Z"],
        ["https://example.com/undated"],
      ]),
    ],
  ]);
  await withServer(site(docs, hits), async (origin) => {
    const first = await source({ url: `${origin}/index.xml` });
    const polled1 = (await readAll(first)).flat().map((i) => i.url);
    assert.deepEqual(polled1, [
      "https://example.com/old1",
      "https://example.com/n1",
      "https://example.com/n2",
      "https://example.com/undated",
    ]);
    assert.deepEqual(first.checkpoint?.(), {
      since: "2026-05-02T12:00:00.000Z",
      sitemaps: {
        [`${origin}/old.xml`]: "2026-01-09T00:00:00.000Z",
        [`${origin}/new.xml`]: "2026-05-02T12:00:00.000Z",
      },
      // What the index said of each: old.xml, unchanged and before the mark, is not read again.
      stamps: {
        [`${origin}/old.xml`]: "2026-01-10T00:00:00.000Z",
        [`${origin}/new.xml`]: "2026-05-02T12:00:00.000Z",
      },
    });

    // The site changes n1 and adds n3; old.xml is unchanged.
    docs.set("/index.xml", index([["/old.xml", "2026-01-10"], ["/new.xml", "2026-05-03"]]));
    docs.set(
      "/new.xml",
      urlset([
        ["https://example.com/n1", "2026-05-03T08:00:00Z"],
        ["https://example.com/n2", "2026-05-02T12:00:00Z"],
        ["https://example.com/n3", "2026-05-03T09:30:00Z"],
        ["https://example.com/undated"],
      ]),
    );
    // A new process resumes from the stored position.
    const second = await source({ url: `${origin}/index.xml` });
    second.resume?.(first.checkpoint?.());
    hits.length = 0;
    const polled2 = (await readAll(second)).flat().map((i) => i.url);
    assert.deepEqual(polled2, [
      "https://example.com/n1",
      "https://example.com/n2", // as new as the newest seen: lastmod is often only a date
      "https://example.com/n3",
      "https://example.com/undated", // nothing says it is old
    ]);
    assert.deepEqual(hits, ["/index.xml", "/new.xml"], "old.xml was not fetched again");
    assert.deepEqual(second.checkpoint?.(), {
      since: "2026-05-03T09:30:00.000Z",
      sitemaps: {
        [`${origin}/old.xml`]: "2026-01-09T00:00:00.000Z", // not read: kept as it was
        [`${origin}/new.xml`]: "2026-05-03T09:30:00.000Z",
      },
      stamps: {
        [`${origin}/old.xml`]: "2026-01-10T00:00:00.000Z",
        [`${origin}/new.xml`]: "2026-05-03T00:00:00.000Z",
      },
    });
    assert.throws(
      () => second.resume?.({ since: "yesterday" }),
      /cannot resume from \{"since":"yesterday"\}: expected \{ "since": "<ISO 8601 date>", "sitemaps"\?: /,
    );
    // A position from before the marks per sitemap still resumes, holding all to its one mark.
    const legacy = await source({ url: `${origin}/index.xml` });
    legacy.resume?.({ since: "2026-05-03T09:30:00.000Z" });
    assert.deepEqual((await readAll(legacy)).flat().map((i) => i.url), [
      "https://example.com/n3",
      "https://example.com/undated",
    ]);
  });
});

Deno.test("a child sitemap whose index entry is unchanged and dated as its newest page is not read again", async () => {
  // An index that stamps every child with the day its pages are dated: each poll read every
  // child again, and a review's 50,030 pages came out again at every poll of an unchanged site.
  const hits: string[] = [];
  const day = "2026-11-01T00:00:00Z";
  const docs = new Map<string, string | Uint8Array>([
    ["/index.xml", index([["/a.xml", day], ["/b.xml", day]])],
    ["/a.xml", urlset([["https://example.com/a1", "2026-11-01"], ["https://example.com/a2", day]])],
    ["/b.xml", urlset([["https://example.com/b1", "2026-10-30"]])],
  ]);
  await withServer(site(docs, hits), async (origin) => {
    const s = await source({ url: `${origin}/index.xml` });
    assert.equal((await readAll(s)).flat().length, 3);
    hits.length = 0;
    assert.deepEqual((await readAll(s)).flat().map((i) => i.url), []);
    assert.deepEqual(hits, ["/index.xml"], "no child was read again");
    // A child whose entry changes is read again.
    docs.set("/index.xml", index([["/a.xml", "2026-11-02T00:00:00Z"], ["/b.xml", day]]));
    docs.set("/a.xml", urlset([["https://example.com/a3", "2026-11-02"]]));
    hits.length = 0;
    assert.deepEqual((await readAll(s)).flat().map((i) => i.url), ["https://example.com/a3"]);
    assert.deepEqual(hits, ["/index.xml", "/a.xml"]);
  });
});

Deno.test("a child sitemap whose index entry changed is read again, though the index dates it before its pages", async () => {
  // An index whose dates lag its children's pages (the file's creation date, another time zone):
  // the entry's new date was held to the child's newest page, and its new pages never came.
  const hits: string[] = [];
  const docs = new Map<string, string | Uint8Array>([
    ["/index.xml", index([["/c1.xml", "2025-01-01"]])],
    ["/c1.xml", urlset([["https://example.com/p1", "2025-03-01T10:00:00Z"]])],
  ]);
  await withServer(site(docs, hits), async (origin) => {
    const s = await source({ url: `${origin}/index.xml` });
    assert.deepEqual((await readAll(s)).flat().map((i) => i.url), ["https://example.com/p1"]);
    docs.set("/index.xml", index([["/c1.xml", "2025-02-01"]]));
    docs.set(
      "/c1.xml",
      urlset([
        ["https://example.com/p1", "2025-03-01T10:00:00Z"],
        ["https://example.com/p2", "2025-03-05T10:00:00Z"],
      ]),
    );
    hits.length = 0;
    const urls = (await readAll(s)).flat().map((i) => i.url);
    assert.deepEqual(hits, ["/index.xml", "/c1.xml"]);
    assert.ok(urls.includes("https://example.com/p2"), urls.join(", "));
    // Unchanged since: not read again.
    hits.length = 0;
    await readAll(s);
    assert.deepEqual(hits, ["/index.xml"]);
  });
});

Deno.test("since limits the first poll; the position moves only when a walk reads every sitemap, and is stored with the last batch", async () => {
  const docs = new Map<string, string | Uint8Array>([
    ["/index.xml", index([["/a.xml"], ["/b.xml"]])],
    [
      "/a.xml",
      urlset([
        ["https://example.com/jan", "2026-01-15"],
        ["https://example.com/mar", "2026-03-15"],
      ]),
    ],
    ["/b.xml", "<urlset><url><loc>https://example.com/x</loc></url>"], // cut off
  ]);
  await withServer(site(docs), async (origin) => {
    const src = await source({ url: `${origin}/index.xml`, since: "2026-03-01" });
    // The other child's pages come and its mark moves; the broken one has none, for the next
    // walk to read it whole.
    assert.deepEqual((await readAll(src)).flat().map((i) => i.url), ["https://example.com/mar"]);
    assert.deepEqual(src.checkpoint?.(), {
      since: "2026-03-15T00:00:00.000Z",
      sitemaps: { [`${origin}/a.xml`]: "2026-03-15T00:00:00.000Z" },
    }, "no mark for the child that failed");
    docs.set("/b.xml", urlset([]));
    const batches: { items: string[]; position: unknown }[] = [];
    for await (const batch of src.read(new AbortController().signal)) {
      batches.push({ items: batch.map((i) => i.url as string), position: src.checkpoint?.() });
    }
    assert.deepEqual(batches, [{
      items: ["https://example.com/mar"],
      position: {
        since: "2026-03-15T00:00:00.000Z",
        sitemaps: { [`${origin}/a.xml`]: "2026-03-15T00:00:00.000Z" },
      },
    }]);
    // Nothing newer: the page as new as the newest seen comes again (lastmod is often a date).
    const again = await readAll(src);
    assert.deepEqual(again.map((b) => b.map((i) => i.url)), [["https://example.com/mar"]]);
  });
  assert.throws(
    () => sitemapConfig.parse({ url: "https://example.com/s.xml", since: "last week" }),
    /expected a duration such as 7d or a date such as 2026-01-31, got \\"last week\\"/,
  );
});

Deno.test("since is kept when every page is older: the second poll does not emit them", async () => {
  const docs = new Map<string, string | Uint8Array>([
    ["/s.xml", urlset([["https://example.com/old1", "2024-01-01"], ["https://example.com/old2"]])],
  ]);
  await withServer(site(docs), async (origin) => {
    const src = await source({ url: `${origin}/s.xml`, since: "2026-03-01" });
    assert.deepEqual((await readAll(src)).flat().map((i) => i.url), ["https://example.com/old2"]);
    // Before: the position became old1's lastmod, and each later poll emitted old1.
    assert.deepEqual(src.checkpoint?.(), {
      since: "2026-03-01T00:00:00.000Z",
      sitemaps: { [`${origin}/s.xml`]: "2026-03-01T00:00:00.000Z" },
    });
    assert.deepEqual((await readAll(src)).flat().map((i) => i.url), ["https://example.com/old2"]);
  });
});

Deno.test("an index entry dated by day is read while the mark is within that day", async () => {
  const hits: string[] = [];
  const docs = new Map<string, string | Uint8Array>([
    ["/index.xml", index([["/day.xml", "2024-06-01"]])],
    ["/day.xml", urlset([["https://example.com/morning", "2024-06-01T09:00:00Z"]])],
  ]);
  await withServer(site(docs, hits), async (origin) => {
    const src = await source({ url: `${origin}/index.xml` });
    await readAll(src);
    assert.deepEqual(src.checkpoint?.(), {
      since: "2024-06-01T09:00:00.000Z",
      sitemaps: { [`${origin}/day.xml`]: "2024-06-01T09:00:00.000Z" },
      stamps: { [`${origin}/day.xml`]: "2024-06-01T00:00:00.000Z" },
    });
    // Later that day the child lists another page; the index still says only the day.
    docs.set(
      "/day.xml",
      urlset([
        ["https://example.com/morning", "2024-06-01T09:00:00Z"],
        ["https://example.com/afternoon", "2024-06-01T15:00:00Z"],
      ]),
    );
    const urls = (await readAll(src)).flat().map((i) => i.url);
    // Before: 2024-06-01 read as midnight, before the 09:00 mark: the child was skipped for good.
    assert.ok(urls.includes("https://example.com/afternoon"), JSON.stringify(urls));
    assert.equal(hits.filter((h) => h === "/day.xml").length, 2);
  });
});

Deno.test("a broken sitemap gives a clear error naming it", async () => {
  const docs = new Map<string, string | Uint8Array>([
    ["/html.xml", "<!doctype html><html><body>Not here</body></html>"],
    ["/bad.xml", "<urlset><url><loc>https://example.com/a</loc></urlx></urlset>"],
    ["/empty.xml", ""],
    ["/corrupt.xml.gz", new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])],
  ]);
  await withServer(site(docs), async (origin) => {
    const fails = async (path: string, pattern: RegExp) =>
      await assert.rejects(readAll(await source({ url: `${origin}${path}` })), pattern);
    await fails(
      "/html.xml",
      new RegExp(
        `sitemap ${origin}/html\\.xml: not a sitemap \\(root element <html>, expected <urlset> or <sitemapindex>\\)`,
      ),
    );
    await fails(
      "/bad.xml",
      new RegExp(
        `sitemap ${origin}/bad\\.xml: not well-formed XML \\(line 1, column 52: Unexpected close tag\\)`,
      ),
    );
    await fails(
      "/empty.xml",
      new RegExp(`sitemap ${origin}/empty\\.xml: not a sitemap \\(no XML root element\\)`),
    );
    await fails(
      "/corrupt.xml.gz",
      new RegExp(`sitemap ${origin}/corrupt\\.xml\\.gz: corrupt gzip body`),
    );
    await fails("/missing.xml", new RegExp(`GET ${origin}/missing\\.xml: HTTP 404`));
  });
});

Deno.test("a gzip sitemap is cut off at maxBytes once gunzipped (a gzip bomb fails, small)", async () => {
  const big = urlset(
    Array.from({ length: 20_000 }, (_, i) => [`https://example.com/page/${i}`, "2026-05-01"]),
  );
  const docs = new Map<string, string | Uint8Array>([["/big.xml.gz", gzipSync(big)]]);
  assert.ok(gzipSync(big).length < 200_000 && big.length > 1_000_000);
  await withServer(site(docs), async (origin) => {
    await assert.rejects(
      readAll(await source({ url: `${origin}/big.xml.gz`, maxBytes: "1MB" })),
      new RegExp(
        `sitemap ${origin}/big\\.xml\\.gz: larger than the limit of 1000000 bytes once gunzipped`,
      ),
    );
    const all = await readAll(await source({ url: `${origin}/big.xml.gz` }));
    assert.equal(all.flat().length, 20_000);
    assert.ok(all.every((b) => b.length <= 1000), "pages leave in batches of at most 1000");
  });
});

Deno.test("sitemapUrls walks a site for another source and reports what it saw", async () => {
  const docs = new Map<string, string | Uint8Array>([
    [
      "/s.xml",
      urlset([["https://example.com/a", "2026-05-01"], ["https://example.com/b", "2026-04-01"]]),
    ],
  ]);
  await withServer(site(docs), async (origin) => {
    const walk = sitemapUrls(`${origin}/s.xml`, {
      http,
      timeout: 5_000,
      maxBytes: 1_000_000,
      maxSitemaps: 10,
      maxDepth: 1,
      since: Date.parse("2026-04-15"),
      batchSize: 10,
    });
    const urls: SitemapUrl[] = [];
    let next = await walk.next();
    while (!next.done) {
      urls.push(...next.value);
      next = await walk.next();
    }
    assert.deepEqual(urls, [{ url: "https://example.com/a", lastmod: "2026-05-01T00:00:00.000Z" }]);
    assert.deepEqual(next.value, {
      failed: [],
      noLoc: 0,
      sitemaps: 1,
      older: 1,
      newest: Date.parse("2026-05-01"),
      marks: new Map([[`${origin}/s.xml`, Date.parse("2026-05-01")]]),
      stamps: new Map(),
    });
  });
});

Deno.test("the mark is the newest page lastmod, not an index's: a page a lagging child lists late is still read", async () => {
  const now = Date.now();
  const iso = (ms: number) => new Date(ms).toISOString();
  let child: [string, number][] = [["/a", now - 3600_000]];
  await withServer((req) => {
    const u = new URL(req.url);
    const xml = (body: string) =>
      new Response(`<?xml version="1.0"?>${body}`, {
        headers: { "content-type": "application/xml" },
      });
    const ns = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"';
    if (u.pathname === "/index.xml") {
      // Stamped with the time the index was generated, as many generators do.
      return xml(
        `<sitemapindex ${ns}><sitemap><loc>${u.origin}/child.xml</loc><lastmod>${
          iso(Date.now())
        }</lastmod></sitemap></sitemapindex>`,
      );
    }
    if (u.pathname === "/child.xml") {
      return xml(
        `<urlset ${ns}>${
          child.map(([p, t]) => `<url><loc>${u.origin}${p}</loc><lastmod>${iso(t)}</lastmod></url>`)
            .join("")
        }</urlset>`,
      );
    }
    return new Response("not found", { status: 404 });
  }, async (origin) => {
    const src = await source({ url: `${origin}/index.xml` });
    const urls = async () => (await readAll(src)).flat().map((i) => new URL(i.url!).pathname);
    assert.deepEqual(await urls(), ["/a"]);
    // The child, cached by a CDN, now shows /b, changed before the first poll.
    child = [["/a", now - 3600_000], ["/b", now - 1800_000]];
    // /a again too: pages at the mark itself come again (lastmods are often days).
    assert.deepEqual(await urls(), ["/a", "/b"]);
  });
});

Deno.test("resume(undefined) puts a sitemap source back at the start", async () => {
  const docs = new Map<string, string | Uint8Array>([
    ["/s.xml", urlset([["/a", "2024-01-01"], ["/b", "2024-01-02"]])],
  ]);
  await withServer(site(docs), async (origin) => {
    const src = await source({ url: `${origin}/s.xml` });
    assert.equal((await readAll(src)).flat().length, 2);
    src.resume!(undefined);
    assert.equal(src.checkpoint!(), undefined);
    assert.equal((await readAll(src)).flat().length, 2);
  });
});

Deno.test("a page a section's sitemap lists after another section's newer page is still read", async () => {
  // Each section's sitemap is regenerated on its own schedule. Held to one mark, the newest
  // page of any of them, the sport story of 10:00 that sport.xml listed only once news.xml
  // had listed a page of 10:05 was dropped at that poll and every later one.
  const docs = new Map<string, string | Uint8Array>([
    [
      "/index.xml",
      index([["/news.xml", "2026-03-02T10:05:00Z"], ["/sport.xml", "2026-03-02T09:00:00Z"]]),
    ],
    ["/news.xml", urlset([["https://example.com/news/a", "2026-03-02T10:05:00Z"]])],
    ["/sport.xml", urlset([["https://example.com/sport/old", "2026-03-02T09:00:00Z"]])],
  ]);
  await withServer(site(docs), async (origin) => {
    const src = await source({ url: `${origin}/index.xml` });
    await readAll(src);
    docs.set(
      "/index.xml",
      index([["/news.xml", "2026-03-02T10:05:00Z"], ["/sport.xml", "2026-03-02T10:40:00Z"]]),
    );
    docs.set(
      "/sport.xml",
      urlset([
        ["https://example.com/sport/old", "2026-03-02T09:00:00Z"],
        ["https://example.com/sport/new-story", "2026-03-02T10:00:00Z"],
      ]),
    );
    const again = await source({ url: `${origin}/index.xml` });
    again.resume?.(src.checkpoint?.());
    const urls = (await readAll(again)).flat().map((i) => i.url);
    assert.ok(urls.includes("https://example.com/sport/new-story"), JSON.stringify(urls));
  });
});

Deno.test("a sitemap URL's token stays out of the pages resolved against it, a bare #fragment's too", async () => {
  const docs = new Map([["/sitemap.xml", urlset([["#s1"], ["/b"]])]]);
  await withServer(site(docs), async (origin) => {
    const batches = await readAll(
      await source({ url: `${origin}/sitemap.xml?api_key=K3y-s3cret&v=2` }),
    );
    assert.deepEqual(batches.flat().map((i) => i.url), [
      `${origin}/sitemap.xml?v=2#s1`,
      `${origin}/b`,
    ]);
  });
});

Deno.test("a lastmod is read as the protocol writes it (a time with no zone is UTC) or as an HTTP date, anything else none", async () => {
  // Date.parse read `2026-12-05T10:00:00` in the machine's zone (the marks moved by hours from
  // one machine to another), and `1` as 2001.
  const docs = new Map([[
    "/sitemap.xml",
    urlset([
      ["https://example.com/a", "2026-12-05T10:00:00"],
      ["https://example.com/b", "2026-12-05 10:00"],
      ["https://example.com/c", "2026-12"],
      ["https://example.com/d", "1"],
      ["https://example.com/e", "Monday"],
      ["https://example.com/f", "2026-12-05T10:00:00.5-05:00"],
      ["https://example.com/g", "Sat, 05 Dec 2026 10:00:00 GMT"],
    ]),
  ]]);
  await withServer(site(docs), async (origin) => {
    const batches = await readAll(await source({ url: `${origin}/sitemap.xml` }));
    assert.deepEqual(batches.flat().map((p) => [p.url, p.lastmod]), [
      ["https://example.com/a", "2026-12-05T10:00:00.000Z"],
      ["https://example.com/b", "2026-12-05T10:00:00.000Z"],
      ["https://example.com/c", "2026-12-01T00:00:00.000Z"],
      ["https://example.com/d", undefined],
      ["https://example.com/e", undefined],
      ["https://example.com/f", "2026-12-05T15:00:00.500Z"],
      ["https://example.com/g", "2026-12-05T10:00:00.000Z"],
    ]);
  });
});

/** A sitemap source of its own log: what it warned is in `lines`. */
async function loggedSource(config: Record<string, unknown>) {
  const log = memoryLogger();
  const src = await sitemapSource.create(sitemapConfig.parse(config), { ...env, log });
  return { src, warned: () => log.lines.filter((l) => l.startsWith("warn ")) };
}

Deno.test("an image sitemap's <image:loc> is not taken for the page; entries with no <loc> are left out, said once", async () => {
  // Yoast writes image:image into post sitemaps: its image:loc replaced the page's url, so the
  // page was never listed (and the html source fetched the JPEG instead).
  const doc = `<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>https://example.com/post-1/</loc><lastmod>2026-05-01</lastmod>
    <image:image><image:loc>https://example.com/uploads/post-1.jpg</image:loc></image:image></url>
  <url><image:image><image:loc>https://example.com/uploads/lost.jpg</image:loc></image:image></url>
  <url><loc> </loc></url>
  <url><loc>https://example.com/post-2/</loc></url>
</urlset>`;
  await withServer(site(new Map([["/sitemap.xml", doc]])), async (origin) => {
    const { src, warned } = await loggedSource({ url: `${origin}/sitemap.xml` });
    assert.deepEqual((await readAll(src)).flat(), [
      {
        url: "https://example.com/post-1/",
        title: "https://example.com/post-1/",
        lastmod: "2026-05-01T00:00:00.000Z",
      },
      { url: "https://example.com/post-2/", title: "https://example.com/post-2/" },
    ]);
    await readAll(src);
    assert.deepEqual(warned(), [
      `warn test: sitemap ${origin}/sitemap.xml: 2 entries with no <loc> left out (said once)`,
    ]);
  });
});

Deno.test("a child sitemap that is gone (404) is said once and the others are read; the position moves", async () => {
  // One dead child failed every poll, and nothing after it in the index was ever read.
  const hits: string[] = [];
  const docs = new Map<string, string | Uint8Array>([
    ["/index.xml", index([["/author.xml"], ["/post.xml"], ["/page.xml"]])],
    ["/post.xml", urlset([["https://example.com/p1", "2026-05-01"]])],
    ["/page.xml", urlset([["https://example.com/about", "2026-04-01"]])],
  ]);
  await withServer(site(docs, hits), async (origin) => {
    const { src, warned } = await loggedSource({ url: `${origin}/index.xml` });
    const first = (await readAll(src)).flat().map((i) => i.url);
    assert.deepEqual(first, ["https://example.com/p1", "https://example.com/about"]);
    assert.deepEqual(warned(), [
      `warn test: sitemap ${origin}/index.xml: left out ${origin}/author.xml (listed by ` +
      `${origin}/index.xml): GET ${origin}/author.xml: HTTP 404 Not Found; the site no longer ` +
      `has it, so the other sitemaps were read without it`,
    ]);
    // Gone holds no page: the position moved, each sitemap's to its newest page.
    assert.deepEqual(src.checkpoint?.(), {
      since: "2026-05-01T00:00:00.000Z",
      sitemaps: {
        [`${origin}/post.xml`]: "2026-05-01T00:00:00.000Z",
        [`${origin}/page.xml`]: "2026-04-01T00:00:00.000Z",
      },
    });
    await readAll(src);
    assert.equal(warned().length, 1, "said once");
    assert.equal(hits.filter((h) => h === "/author.xml").length, 2, "asked at each poll");
  });
});

Deno.test("a child sitemap that fails (500) keeps the position until a walk reads it; all failing fails the poll", async () => {
  let broken = true;
  const docs = new Map<string, string | Uint8Array>([
    ["/index.xml", index([["/a.xml"], ["/b.xml"]])],
    ["/a.xml", urlset([["https://example.com/a1", "2026-05-01"]])],
    ["/b.xml", urlset([["https://example.com/b1", "2026-04-01"]])],
  ]);
  const serve = site(docs);
  const handler = (req: Request) =>
    broken && new URL(req.url).pathname === "/b.xml"
      ? new Response("oops", { status: 500 })
      : serve(req);
  await withServer(handler, async (origin) => {
    const { src, warned } = await loggedSource({ url: `${origin}/index.xml` });
    assert.deepEqual((await readAll(src)).flat().map((i) => i.url), ["https://example.com/a1"]);
    const position = src.checkpoint?.() as { sitemaps?: Record<string, string> };
    assert.equal(position.sitemaps?.[`${origin}/b.xml`], undefined, "no mark moved past b.xml's");
    assert.match(
      warned().join("\n"),
      /left out .*\/b\.xml .*HTTP 500.*read again at the next poll/,
    );
    broken = false;
    assert.deepEqual(
      (await readAll(src)).flat().map((i) => i.url),
      ["https://example.com/a1", "https://example.com/b1"],
    );
    assert.ok(src.checkpoint?.(), "a whole walk moves the position");
  });
  // Every child failing is the poll failing, as when the index itself cannot be read.
  await withServer(
    (req) =>
      new URL(req.url).pathname === "/index.xml"
        ? new Response(index([["/a.xml"], ["/b.xml"]]))
        : new Response("oops", { status: 503 }),
    async (origin) => {
      const { src } = await loggedSource({ url: `${origin}/index.xml` });
      await assert.rejects(
        readAll(src),
        new RegExp(
          `sitemap ${origin}/index.xml: none of the sitemaps it lists could be read \\(the first: GET ${origin}/a.xml: HTTP 503`,
        ),
      );
    },
  );
});

Deno.test("while a child sitemap fails, the others' marks move: their pages are not emitted again at every poll", async () => {
  const pages = Array.from(
    { length: 28 },
    (_, d) => [`https://example.com/p${d + 1}`, `2026-04-${String(d + 1).padStart(2, "0")}`],
  ) as [string, string][];
  const docs = new Map<string, string | Uint8Array>([
    ["/index.xml", index([["/a.xml"], ["/b.xml"]])],
    ["/a.xml", urlset(pages)],
  ]);
  const serve = site(docs);
  const handler = (req: Request) =>
    new URL(req.url).pathname === "/b.xml" ? new Response("oops", { status: 500 }) : serve(req);
  await withServer(handler, async (origin) => {
    const { src } = await loggedSource({ url: `${origin}/index.xml` });
    const per: number[] = [];
    for (let poll = 0; poll < 3; poll++) per.push((await readAll(src)).flat().length);
    // Every page, then a.xml's newest day only (b.xml, failing, keeps no mark to move).
    assert.deepEqual(per, [28, 1, 1]);
  });
});

Deno.test("a failing child beside children left unread as unchanged is said, not 'none could be read'", async () => {
  // Monthly sitemaps: only the month that changed is read, and when it fails the others were
  // never tried: the poll failed, saying that none of them could be read.
  let poll = 0;
  await withServer((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/index.xml") {
      return new Response(
        index([["/2026-03.xml", "2026-03-31"], [
          "/2026-04.xml",
          poll === 0 ? "2026-04-20" : "2026-04-28",
        ]]),
      );
    }
    if (path === "/2026-03.xml") {
      return new Response(urlset([["https://example.com/m1", "2026-03-31"]]));
    }
    if (path === "/2026-04.xml" && poll === 0) {
      return new Response(urlset([["https://example.com/a1", "2026-04-20"]]));
    }
    return new Response("oops", { status: 500 });
  }, async (origin) => {
    const { src, warned } = await loggedSource({ url: `${origin}/index.xml` });
    assert.equal((await readAll(src)).flat().length, 2);
    poll = 1;
    await readAll(src); // no throw
    assert.match(warned().join("\n"), /left out .*2026-04\.xml .*HTTP 500/);
  });
});

Deno.test("a first poll with a failing child keeps the marks it moved across a restart; an old position holds the failed child", async () => {
  const a = Array.from(
    { length: 28 },
    (_, d) => [`https://example.com/p${d + 1}`, `2026-04-${String(d + 1).padStart(2, "0")}`],
  ) as [string, string][];
  const b = Array.from(
    { length: 10 },
    (_, d) => [`https://example.com/old${d + 1}`, `2025-01-${String(d + 1).padStart(2, "0")}`],
  ) as [string, string][];
  let bFails = true;
  const docs = new Map<string, string | Uint8Array>([
    ["/index.xml", index([["/a.xml"], ["/b.xml"]])],
    ["/a.xml", urlset(a)],
    ["/b.xml", urlset(b)],
  ]);
  const serve = site(docs);
  const handler = (req: Request) =>
    bFails && new URL(req.url).pathname === "/b.xml"
      ? new Response("oops", { status: 500 })
      : serve(req);
  await withServer(handler, async (origin) => {
    const config = { url: `${origin}/index.xml` };
    // First poll, then a restart from what it stored: a.xml's pages are not all emitted again.
    const first = (await loggedSource(config)).src;
    assert.equal((await readAll(first)).flat().length, 28);
    const restarted = (await loggedSource(config)).src;
    restarted.resume?.(first.checkpoint?.());
    assert.equal((await readAll(restarted)).flat().length, 1, "a.xml's newest day only");
    // A position from before marks (one mark for all): b.xml, failing, is held to it, so its
    // 2025 pages are not emitted when it comes back (they all were).
    const old = (await loggedSource(config)).src;
    old.resume?.({ since: "2026-04-20T00:00:00.000Z" });
    assert.equal((await readAll(old)).flat().length, 9);
    bFails = false;
    assert.equal((await readAll(old)).flat().length, 1);
  });
});

Deno.test("from a position before marks, a child left unread as unchanged keeps the one mark", async () => {
  // u.xml, unchanged by its index entry, got no mark: when it changed, its every old page came.
  const old = Array.from(
    { length: 10 },
    (_, d) => [`https://example.com/u${d + 1}`, `2025-01-${String(d + 1).padStart(2, "0")}`],
  ) as [string, string][];
  let uChanged = false;
  await withServer((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/index.xml") {
      return new Response(
        index([["/a.xml", "2026-04-28"], ["/u.xml", uChanged ? "2026-05-01" : "2025-02-01"]]),
      );
    }
    if (path === "/a.xml") return new Response(urlset([["https://example.com/a1", "2026-04-28"]]));
    if (path === "/u.xml") {
      return new Response(
        urlset(uChanged ? [...old, ["https://example.com/new", "2026-05-01"]] : old),
      );
    }
    return new Response("none", { status: 404 });
  }, async (origin) => {
    const { src } = await loggedSource({ url: `${origin}/index.xml` });
    src.resume?.({ since: "2026-04-01T00:00:00.000Z" });
    assert.deepEqual((await readAll(src)).flat().map((i) => i.url), ["https://example.com/a1"]);
    uChanged = true;
    const urls = (await readAll(src)).flat().map((i) => i.url);
    assert.ok(urls.includes("https://example.com/new"), JSON.stringify(urls));
    assert.ok(!urls.some((u) => /\/u\d+$/.test(String(u))), JSON.stringify(urls));
  });
});
