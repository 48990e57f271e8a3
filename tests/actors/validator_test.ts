import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { validateConfigSchema, validateStage } from "../../actors/validator.ts";
import { type Envelope, envelope, type RawItem, type ValidItem } from "../../engine/item.ts";
import { createStage, run } from "../_outcome.ts";
import { redditAllNew } from "./_fixtures.ts";
import { fixtureTest } from "../_fixtures_dir.ts";

const good: RawItem = {
  title: "Uber suspends self-driving cars service in California",
  url: "http://www.bbc.co.uk/news/technology-38400224",
  text: "Uber has halted its self-driving car pilot in San Francisco.",
};

/** The reasons the validator gives for each payload, "ok" for the ones it passes. */
async function verdicts(config: unknown, payloads: unknown[]): Promise<string[]> {
  const validator = await createStage<RawItem, ValidItem>(validateStage, config);
  const items = payloads.map((p) => envelope(p as RawItem, "test"));
  const c = await run(validator, items);
  return items.map((item) =>
    c.emitted.includes(item as Envelope<ValidItem>)
      ? "ok"
      : c.rejected.find((r) => r.item === item)?.reason ?? "lost"
  );
}

Deno.test("default config requires a title and a url", async () => {
  assert.deepEqual(
    await verdicts({}, [
      good,
      { url: good.url },
      { title: "   ", url: good.url },
      { title: good.title },
      { title: good.title, url: "" },
      {},
    ]),
    [
      "ok",
      'missing required field "title"',
      'missing required field "title"',
      'missing required field "url"',
      'missing required field "url"',
      'missing required field "title"',
    ],
  );
});

Deno.test("required fields are checked in the order listed and empty lists count as missing", async () => {
  assert.deepEqual(
    await verdicts({ require: ["url", "tags", "title"] }, [
      { title: "", url: "" },
      { ...good, tags: [] },
      { ...good, tags: ["news"] },
    ]),
    ['missing required field "url"', 'missing required field "tags"', "ok"],
  );
});

Deno.test("title length is counted in characters, not UTF-16 units", async () => {
  assert.deepEqual(
    await verdicts({ title: { min: 5, max: 10 } }, [
      { ...good, title: "Hi!" },
      { ...good, title: "🎉🎉🎉🎉🎉" }, // 5 characters, 10 UTF-16 units
      { ...good, title: "🎉".repeat(11) },
      { ...good, title: "x" },
      { ...good, title: "Ten chars!" },
      { ...good, title: "Eleven chars" },
    ]),
    [
      "title: 3 characters, fewer than the minimum 5",
      "ok",
      "title: 11 characters, more than the maximum 10",
      "title: 1 character, fewer than the minimum 5",
      "ok",
      "title: 12 characters, more than the maximum 10",
    ],
  );
});

Deno.test("text limits apply only when text is present, and text must be a string", async () => {
  assert.deepEqual(
    await verdicts({ text: { max: 20 } }, [
      { ...good, text: undefined },
      { ...good, text: "short enough" },
      { ...good, text: "x".repeat(21) },
      { ...good, text: 42 },
    ]),
    [
      "ok",
      "ok",
      "text: 21 characters, more than the maximum 20",
      "text: expected a string, got number",
    ],
  );
});

Deno.test("url must be an absolute URL with an allowed scheme", async () => {
  assert.deepEqual(
    await verdicts({}, [
      { ...good, url: "notaurl" },
      { ...good, url: "/news/technology-38400224" },
      { ...good, url: "ftp://ftp.example.com/file" },
      { ...good, url: "https://exa mple.com/" },
      { ...good, url: 7 },
      { ...good, url: "  https://example.com/a  " },
    ]),
    [
      'url: not an absolute http(s) URL: "notaurl"',
      'url: not an absolute http(s) URL: "/news/technology-38400224"',
      'url: not an absolute http(s) URL: "ftp://ftp.example.com/file"',
      'url: not an absolute http(s) URL: "https://exa mple.com/"',
      "url: expected a string, got number",
      "ok",
    ],
  );
  assert.deepEqual(
    await verdicts({ url: { schemes: ["https"] } }, [good, { ...good, url: "https://a.example/" }]),
    ['url: not an absolute https URL: "http://www.bbc.co.uk/news/technology-38400224"', "ok"],
  );
});

Deno.test("generic field rules check type, enum, pattern and numeric range", async () => {
  const config = {
    fields: {
      score: { type: "number", min: 0 },
      lang: { enum: ["en", "de"] },
      guid: { pattern: "^[a-z0-9_]+$" },
      tags: { type: "array", max: 2 },
    },
  };
  assert.deepEqual(
    await verdicts(config, [
      { ...good, score: 12, lang: "en", guid: "t3_5jo13y", tags: ["a"] },
      good,
      { ...good, score: "12" },
      { ...good, score: -1 },
      { ...good, lang: "fr" },
      { ...good, guid: "T3_5JO13Y" },
      { ...good, guid: 5 },
      { ...good, tags: ["a", "b", "c"] },
      { ...good, tags: "a" },
    ]),
    [
      "ok",
      "ok",
      "score: expected a number, got string",
      "score: -1, less than the minimum 0",
      'lang: "fr" is not one of en, de',
      'guid: "T3_5JO13Y" does not match /^[a-z0-9_]+$/',
      "guid: expected a string, got number",
      "tags: 3 entries, more than the maximum 2",
      "tags: expected an array, got string",
    ],
  );
});

Deno.test("spam words match whole words in any case, title before text", async () => {
  assert.deepEqual(
    await verdicts({ spam: ["casino", "free money"] }, [
      { ...good, title: "Best CASINO bonus codes" },
      { ...good, text: "Get FREE\n money now" },
      { ...good, title: "The casinos of Macau", text: "free moneyed classes" },
      { ...good, title: "Visit #casino tonight" },
      { ...good, title: "casino in the title", text: "and free money in the text" },
    ]),
    [
      'spam word "casino" in title',
      'spam word "free money" in text',
      "ok",
      'spam word "casino" in title',
      'spam word "casino" in title',
    ],
  );
});

Deno.test("spam words of scripts written without spaces match inside a sentence", async () => {
  // 今日|は|カジノ|に|行く: a whole word that letters always touch, so it matched only a title
  // that was nothing else.
  assert.deepEqual(
    await verdicts({ spam: ["カジノ", "赌场", "คาสิโน", "casino"] }, [
      { ...good, title: "今日はカジノに行く" },
      { ...good, title: "网上赌场免费送钱" },
      { ...good, title: "เล่นคาสิโนออนไลน์" },
      { ...good, title: "カジノcasinos" },
      { ...good, title: "東京の新しい地下鉄" },
    ]),
    [
      'spam word "カジノ" in title',
      'spam word "赌场" in title',
      'spam word "คาสิโน" in title',
      'spam word "カジノ" in title',
      "ok",
    ],
  );
  // A Latin word still needs its own ends free of Latin letters: "casino" is not in "casinos",
  // and is in a Chinese or Japanese sentence, and so is a word of both scripts.
  assert.deepEqual(
    await verdicts({ spam: ["casino", "VIP赌场"] }, [
      { ...good, title: "カジノcasinos" },
      { ...good, title: "今天去casino玩" },
      { ...good, title: "今日はcasinoに行く" },
      { ...good, title: "今天去VIP赌场玩" },
      { ...good, title: "xVIP赌场" },
    ]),
    [
      "ok",
      'spam word "casino" in title',
      'spam word "casino" in title',
      'spam word "VIP赌场" in title',
      "ok",
    ],
  );
});

Deno.test("the first failing rule wins: require, url, title, text, fields, spam", async () => {
  const config = {
    title: { min: 5 },
    text: { max: 10 },
    fields: { score: { min: 0 } },
    spam: ["casino"],
  };
  assert.deepEqual(
    await verdicts(config, [
      { url: "bad", text: "x".repeat(20) },
      { title: "casino", url: "bad", text: "x".repeat(20) },
      { title: "Hi", url: good.url, text: "x".repeat(20), score: -5 },
      { title: "Fine title", url: good.url, text: "x".repeat(20), score: -5 },
      { title: "Fine casino", url: good.url, text: "casino", score: -5 },
      { title: "Fine casino", url: good.url, text: "casino" },
      "not an object",
    ]),
    [
      'missing required field "title"',
      'url: not an absolute http(s) URL: "bad"',
      "title: 2 characters, fewer than the minimum 5",
      "text: 20 characters, more than the maximum 10",
      "score: -5, less than the minimum 0",
      'spam word "casino" in title',
      "payload is not an object: string",
    ],
  );
});

Deno.test("valid items pass unchanged, in order, envelope and all", async () => {
  const validator = await createStage<RawItem, ValidItem>(validateStage, {});
  const items = [
    envelope({ ...good }, "a"),
    envelope({ ...good, url: "x" }, "a"),
    envelope({ ...good, title: "Second" }, "b"),
  ];
  const before = structuredClone(items);
  const c = await run(validator, items);
  assert.equal(c.emitted.length, 2);
  assert.equal(c.emitted[0], items[0]);
  assert.equal(c.emitted[1], items[2]);
  assert.deepEqual(items, before);
  assert.equal(c.rejected.length, 1);
  assert.equal(c.dropped.length, 0);
});

Deno.test("an item marked deleted passes unchecked, so its delete reaches the sinks", async () => {
  assert.deepEqual(
    await verdicts({ title: { min: 5 }, spam: ["casino"], fields: { score: { type: "number" } } }, [
      { guid: "hn:1", deleted: true },
      { url: "notaurl", title: "casino", score: "x", deleted: true },
      { guid: "hn:2", deleted: false },
      { guid: "hn:3", deleted: "true" },
    ]),
    [
      "ok",
      "ok",
      'missing required field "title"',
      'missing required field "title"',
    ],
    "only deleted: true counts",
  );
});

fixtureTest(
  "real reddit listing: spam phrases and a one-character title are rejected, the rest pass",
  async () => {
    const posts = await redditAllNew();
    const validator = await createStage<RawItem, ValidItem>(validateStage, {
      title: { min: 5, max: 300 },
      spam: ["xart", "free adult chat"],
    });
    const c = await run(validator, posts);
    assert.equal(c.emitted.length, 96);
    assert.deepEqual(
      c.rejected.map((r) => [(r.item.payload as RawItem).guid, r.reason]),
      [
        ["t3_5jo136", 'spam word "free adult chat" in title'],
        ["t3_5jo12z", 'spam word "xart" in title'],
        ["t3_5jo12r", 'spam word "xart" in title'],
        ["t3_5jo12j", "title: 1 character, fewer than the minimum 5"],
      ],
    );
  },
);

Deno.test("config: the documented YAML example parses, typos and bad rules are refused", async () => {
  const source = await Deno.readTextFile(new URL("../../actors/validator.ts", import.meta.url));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(
    source.slice(source.indexOf("export const validateStage") - 600),
  )![1]
    .replace(/^ \* ?/gm, "");
  const config = validateConfigSchema.parse(parseYaml(yaml)[0].validate);
  assert.deepEqual(config.spam, ["casino", "free money"]);
  assert.deepEqual(config.fields.lang, { enum: ["en", "de"] });

  const defaults = validateConfigSchema.parse({});
  assert.deepEqual(defaults.require, ["title", "url"]);
  assert.deepEqual(defaults.url.schemes, ["http", "https"]);

  assert.throws(() => validateConfigSchema.parse({ requires: ["title"] }));
  assert.throws(() => validateConfigSchema.parse({ title: { minimum: 5 } }));
  assert.throws(() => validateConfigSchema.parse({ fields: { guid: { pattern: "([a-z" } } }));
  assert.throws(() => validateConfigSchema.parse({ title: { min: 10, max: 5 } }));
  assert.throws(() => validateConfigSchema.parse({ url: { schemes: ["HTTP"] } }));
});

Deno.test("a negative length bound is refused; a negative number bound is not", () => {
  const issues = (config: unknown) => {
    const r = validateConfigSchema.safeParse(config);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  assert.deepEqual(issues({ title: { min: -1 } }), [
    "title.min: a length cannot be negative, got -1; give 0 or more " +
    "(or type: number to bound a number's value)",
  ]);
  assert.deepEqual(issues({ fields: { tags: { type: "array", max: -2 } } }), [
    "fields.tags.max: a length cannot be negative, got -2; give 0 or more",
  ]);
  assert.deepEqual(issues({ fields: { code: { pattern: "^[A-Z]+$", min: -1 } } }), [
    "fields.code.min: a length cannot be negative, got -1; give 0 or more",
  ]);
  assert.deepEqual(issues({ title: { type: "number", min: -1 } }), []);
  assert.deepEqual(issues({ fields: { score: { type: "number", min: -10 } } }), []);
  assert.deepEqual(issues({ title: { min: 0, max: 500 } }), []);
});
