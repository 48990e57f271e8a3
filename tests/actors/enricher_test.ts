import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { enrichConfigSchema, enrichStage } from "../../actors/enricher.ts";
import { type EnrichedItem, envelope, type ValidItem } from "../../engine/item.ts";
import { createStage, run } from "../_outcome.ts";
import { heiseEntries, redditAllNew } from "./_fixtures.ts";
import { fixtureTest } from "../_fixtures_dir.ts";

async function enrich(items: ValidItem[] | Awaited<ReturnType<typeof heiseEntries>>, config = {}) {
  const enricher = await createStage<ValidItem, EnrichedItem>(enrichStage, config);
  const batch = items.map((i) => ("payload" in i ? i : envelope(i as ValidItem, "test")));
  const c = await run(enricher, batch as never);
  assert.equal(c.emitted.length, batch.length);
  return c.emitted.map((e) => e.payload);
}

fixtureTest(
  "the German heise feed is detected as German, with German stopwords removed",
  async () => {
    const entries = await heiseEntries();
    assert.equal(entries.length, 15);
    const enriched = await enrich(entries);
    assert.deepEqual(enriched.map((p) => p.language), Array(15).fill("de"));

    const wildfly = enriched[0];
    assert.equal(wildfly.title, "Java-Anwendungsserver: Red Hat gibt WildFly 10 frei");
    // The <p> of the entry; the link, the image and its alt text are markup, not words.
    assert.equal(wildfly.wordCount, 30);
    assert.ok(wildfly.keywords.includes("wildfly"), wildfly.keywords.join());
    assert.ok(wildfly.keywords.includes("java-anwendungsserver"), wildfly.keywords.join());
    assert.equal(wildfly.keywords[0], "red", "in title and text: the most frequent");
    for (const p of enriched) {
      assert.ok(p.keywords.length > 0 && p.keywords.length <= 8);
      for (const stop of ["die", "der", "und", "für", "des", "ist", "from", "the"]) {
        assert.ok(!p.keywords.includes(stop), `"${stop}" in ${p.keywords.join()}`);
      }
    }
  },
);

fixtureTest("English reddit posts are detected as English; too little text is und", async () => {
  const posts = await redditAllNew();
  const enriched = await enrich(posts);
  const selfPosts = enriched.filter((p) => (p.text ?? "").length >= 150);
  assert.ok(selfPosts.length >= 15, `${selfPosts.length} self posts`);
  assert.deepEqual(selfPosts.map((p) => p.language), Array(selfPosts.length).fill("en"));
  assert.ok(enriched.filter((p) => p.language === "en").length >= 85);
  assert.equal(enriched.find((p) => p.guid === "t3_5jo12j")!.language, "und", 'the title "."');

  const short = await enrich([
    { title: "ok", url: "https://example.com/1" },
    { title: "Hello world", url: "https://example.com/2" },
    { title: "Tarzan", url: "https://example.com/3", text: "" },
  ]);
  assert.deepEqual(short.map((p) => p.language), ["und", "und", "und"]);
});

Deno.test("word count is of the text without markup, or of the title when there is no text", async () => {
  const [html, linkPost, entities, withUrl] = await enrich([
    {
      title: "Ignored when there is text",
      url: "https://example.com/a",
      text: '<p>Die <b>nun</b> verfügbare<br/>Version</p><script>var x = "not words";</script>' +
        '<a href="https://example.com" title="not words either">10</a>',
    },
    { title: "India rupee crisis: Tourists struggle without cash", url: "https://example.com/b" },
    {
      title: "t",
      url: "https://example.com/c",
      text: "Informationen f&uuml;r Entwickler &amp; mehr",
    },
    { title: "t", url: "https://example.com/d", text: "Read https://t.co/w9gfWbyySh now" },
  ]);
  assert.equal(html.wordCount, 5);
  assert.equal(linkPost.wordCount, 7);
  assert.equal(entities.wordCount, 4);
  assert.equal(withUrl.wordCount, 2, "a link is not prose");
});

Deno.test("canonical url and domain come from the item's url", async () => {
  const [reddit, image, heise, ftp] = await enrich([
    {
      title: "Pretty cool infographic on climate change",
      url:
        "https://www.reddit.com/r/dataisbeautiful/comments/5jnrtc/pretty_cool_infographic_on_climate_change/?utm_source=ifttt",
    },
    { title: "The Crab Nebula (Edited)", url: "https://i.redd.it/nx3n9mrz115y.jpg" },
    {
      title: "Scrum Day 2016",
      url: "HTTP://WWW.HEISE.DE:80/developer/meldung/Scrum-Day-2016-3088627.html#comments",
    },
    { title: "A file", url: "ftp://ftp.example.com/pub/file.txt" },
  ]);
  assert.equal(
    reddit.canonicalUrl,
    "https://www.reddit.com/r/dataisbeautiful/comments/5jnrtc/pretty_cool_infographic_on_climate_change",
  );
  assert.equal(reddit.domain, "reddit.com");
  assert.equal(image.canonicalUrl, "https://i.redd.it/nx3n9mrz115y.jpg");
  assert.equal(image.domain, "i.redd.it");
  assert.equal(
    heise.canonicalUrl,
    "http://www.heise.de/developer/meldung/Scrum-Day-2016-3088627.html",
  );
  assert.equal(heise.domain, "heise.de");
  assert.equal(
    ftp.canonicalUrl,
    "ftp://ftp.example.com/pub/file.txt",
    "not http(s): kept as given",
  );
  assert.equal(ftp.domain, "ftp.example.com");
});

Deno.test("keywords: most frequent first, title words first on ties, at most max", async () => {
  const [p] = await enrich([{
    title: "Uber suspends self-driving cars in California",
    url: "https://example.com/uber",
    text: "Uber has halted its self-driving car pilot after regulators in California revoked " +
      "the registrations of its cars. Uber said the cars would not return to San Francisco.",
  }], { keywords: { max: 4 } });
  assert.deepEqual(p.keywords, ["uber", "cars", "self-driving", "california"]);

  const [english] = await enrich([{
    title: "Willing to help",
    url: "https://example.com/w",
    text: "I will not do it, and she will not either. I don't think it's what we will do.",
  }]);
  for (const stop of ["will", "not", "she", "don't", "it's"]) {
    assert.ok(!english.keywords.includes(stop), `"${stop}" in ${english.keywords.join()}`);
  }
  // Function words NLTK's list has and npm stopword's lacks: BBC's "race, when, laws".
  const [news] = await enrich([{
    title: "Shares fell during trading",
    url: "https://example.com/s",
    text: "Shares went down when rates rose, against forecasts, during trading. Shares fell off " +
      "again when markets closed, down on the week, against the odds, during a long session.",
  }]);
  for (const stop of ["down", "when", "against", "during", "off", "again"]) {
    assert.ok(!news.keywords.includes(stop), `"${stop}" in ${news.keywords.join()}`);
  }
  assert.ok(news.keywords.includes("shares"), news.keywords.join());
});

Deno.test("steps pick the facts; the input envelope is left as it was", async () => {
  const enricher = await createStage<ValidItem, EnrichedItem>(enrichStage, {
    steps: ["domain", "word-count"],
  });
  const item = envelope({
    title: "Farewell Rush",
    url: "https://www.youtube.com/watch?v=w5aNSHEUfJE",
    guid: "t3_5jo13y",
  }, "reddit");
  const before = structuredClone(item);
  const c = await run(enricher, [item]);
  const out = c.emitted[0];
  assert.deepEqual(out.payload, { ...before.payload, domain: "youtube.com", wordCount: 2 });
  assert.deepEqual(
    { ...out, payload: undefined },
    { ...before, payload: undefined },
    "same envelope fields",
  );
  assert.notEqual(out.payload, item.payload);
  assert.deepEqual(item, before, "input untouched");
});

Deno.test("config: the documented YAML example parses, unknown steps are refused", async () => {
  const source = await Deno.readTextFile(new URL("../../actors/enricher.ts", import.meta.url));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(
    source.slice(source.indexOf("export const enrichStage") - 300),
  )![1]
    .replace(/^ \* ?/gm, "");
  const config = enrichConfigSchema.parse(parseYaml(yaml)[0].enrich);
  assert.deepEqual(config, enrichConfigSchema.parse({}));
  assert.deepEqual(config.steps, ["canonical-url", "domain", "word-count", "language", "keywords"]);
  assert.equal(config.keywords.max, 8);
  assert.throws(() => enrichConfigSchema.parse({ steps: ["sentiment"] }));
  assert.throws(() => enrichConfigSchema.parse({ keyword: { max: 3 } }));
  assert.deepEqual(enrichStage.needs!(config), ["valid"]);
  assert.deepEqual(enrichStage.adds, ["enriched"]);
});

Deno.test("word counts cut unspaced scripts into words and keep attribute markup out", async () => {
  const [ja, html] = await enrich([
    {
      title: "東京の計画",
      url: "https://example.jp/a",
      text: "東京都は今日、新しい計画を発表しました。",
    },
    {
      title: "Quoted",
      url: "https://example.com/b",
      text: `<p>Read <a title="a > b" href="/x">this story</a> now</p>`,
    },
  ]);
  assert.equal(ja.wordCount, 10);
  assert.equal(html.wordCount, 4);
  assert.ok(!html.keywords.includes("href"), html.keywords.join());
});
