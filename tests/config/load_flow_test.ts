import assert from "node:assert/strict";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { FlowError, loadFlow, MAX_FLOW_BYTES, parseFlow } from "../../config/load_flow.ts";
import { builtinRegistry } from "../../builtins.ts";
import { defineFlow } from "../../config/define_flow.ts";
import { fakeRegistry } from "./fake_registry.ts";
import { z } from "zod";

const registry = fakeRegistry();
const testdata = join(dirname(fileURLToPath(import.meta.url)), "testdata");

/** The FlowError `run` throws; fails the test if it throws nothing or something else. */
function flowError(run: () => unknown): FlowError {
  try {
    run();
  } catch (e) {
    if (e instanceof FlowError) return e;
    throw e;
  }
  assert.fail("expected a FlowError");
}

async function flowErrorAsync(run: () => Promise<unknown>): Promise<FlowError> {
  try {
    await run();
  } catch (e) {
    if (e instanceof FlowError) return e;
    throw e;
  }
  assert.fail("expected a FlowError");
}

const parse = (text: string, env: Record<string, string | undefined> = {}) =>
  parseFlow(text, "flows/demo.yaml", registry, env);

/** A valid flow with `extra` lines put in at the given place. */
const flow = (pipeline: string, top = "") =>
  `name: demo\n${top}sources:\n  hn: { kind: json }\npipeline:\n${pipeline}`;

Deno.test("a good flow file gives ids, defaults, parsed durations and absolute directories", async () => {
  const file = join(testdata, "good.yaml");
  const got = await loadFlow(file, registry, {});
  assert.equal(got.name, "demo");
  assert.equal(got.durability, "redis");
  assert.equal(got.redis, "redis://127.0.0.1:6379");
  assert.equal(got.capacity, 128);
  assert.equal(got.baseDir, testdata);
  assert.equal(got.outDir, resolve("out/demo-test"));
  assert.deepEqual(got.deadLetters, { maxDeliveries: 7 });
  assert.deepEqual(got.sources, [
    {
      name: "hn",
      kind: "json",
      every: 300_000,
      priority: "normal",
      config: { preset: "hackernews" },
    },
    {
      name: "blog",
      kind: "rss",
      priority: "high",
      config: { url: "https://example.com/feed.xml" },
    },
  ]);
  assert.deepEqual(got.pipeline.map((s) => s.id), [
    "validate",
    "dedupe",
    "near-dupes",
    "enrich",
    "embed",
    "publish",
    "dedupe#3",
  ]);
  assert.deepEqual(got.pipeline[0], {
    id: "validate",
    kind: "validate",
    concurrency: 2,
    retries: 0,
    config: { require: ["title", "url"] },
  });
  assert.deepEqual(got.pipeline[1].config, { key: ["url", "title"], ttl: 86_400_000 });
  assert.deepEqual(got.pipeline[2].config, {
    key: ["url"],
    ttl: 86_400_000,
    near: { threshold: 0.9 },
  });
  assert.deepEqual(got.pipeline[4].config, { batch: { size: 256, maxWait: 2000 } });
  assert.deepEqual(got.pipeline[5].config, [
    { jsonl: { path: "items.jsonl" } },
    { vector: { collection: "trends" } },
  ]);
  // A stage written with no config (`- enrich`, `- dedupe:`) gets its defaults.
  assert.deepEqual(got.pipeline[3], {
    id: "enrich",
    kind: "enrich",
    concurrency: 1,
    retries: 3,
    config: { steps: [] },
  });
  assert.deepEqual(got.pipeline[6].config, { key: ["url"], ttl: 86_400_000 });
});

Deno.test("top-level defaults: memory durability, capacity 1024, out/<name>, 5 deliveries", () => {
  const got = parse(flow("  - validate\n"));
  assert.equal(got.durability, "memory");
  assert.equal(got.redis, undefined);
  assert.equal(got.capacity, 1024);
  assert.equal(got.outDir, resolve("out/demo"));
  assert.equal(got.baseDir, resolve("flows"));
  assert.deepEqual(got.deadLetters, { maxDeliveries: 5 });
  assert.deepEqual(got.sources, [{ name: "hn", kind: "json", priority: "normal", config: {} }]);
});

Deno.test("baseDir can be given instead of the file's directory", () => {
  const got = parseFlow(flow("  - validate\n"), "flows/demo.yaml", registry, {}, {
    baseDir: "/srv/flows",
  });
  assert.equal(got.baseDir, "/srv/flows");
});

Deno.test("a typo in a stage field names file, line, column and the nearest field", async () => {
  const e = await flowErrorAsync(() => loadFlow(join(testdata, "typos.yaml"), registry, {}));
  const file = join(testdata, "typos.yaml");
  assert.equal(
    e.message,
    `${file}:8:12: pipeline[1].dedupe.ttl: expected a duration such as 500ms, 2s, 5m or 24h, ` +
      `got "24 hours"\n` +
      `${file}:9:15: pipeline[1].dedupe.near.treshold: unknown field "treshold"; ` +
      `did you mean "threshold"?`,
  );
  assert.equal(e.file, file);
  assert.equal(e.line, 8);
  assert.equal(e.column, 12);
  assert.equal(e.path, "pipeline[1].dedupe.ttl");
  assert.deepEqual(e.problems.map((p) => [p.line, p.column, p.path]), [
    [8, 12, "pipeline[1].dedupe.ttl"],
    [9, 15, "pipeline[1].dedupe.near.treshold"],
  ]);
});

Deno.test("the first line of a many-problem error is a complete error by itself", async () => {
  const e = await flowErrorAsync(() => loadFlow(join(testdata, "typos.yaml"), registry, {}));
  const [first] = e.message.split("\n");
  assert.match(first, /typos\.yaml:8:12: pipeline\[1\]\.dedupe\.ttl: expected a duration/);
  assert.equal(e.problems.length, 2);
});

Deno.test("a misspelt common stage field is suggested from the common fields too", () => {
  const e = flowError(() => parse(flow("  - validate: { concurency: 2 }\n")));
  assert.equal(
    e.message,
    `flows/demo.yaml:5:17: pipeline[0].validate.concurency: unknown field "concurency"; ` +
      `did you mean "concurrency"?`,
  );
});

Deno.test("an unknown field with nothing close lists the valid fields", () => {
  const e = flowError(() => parse(flow("  - enrich: { colour: red }\n")));
  assert.equal(
    e.message,
    `flows/demo.yaml:5:15: pipeline[0].enrich.colour: unknown field "colour"; ` +
      `valid fields: steps, concurrency, retries, id, batchTimeout, workers`,
  );
});

Deno.test("a Postgres URL the client cannot read is refused at its line, its password masked", () => {
  // These passed check and failed the run at the publish stage's line.
  for (
    const [url, said] of [
      [
        "postgres://u:s3cr/et@127.0.0.1:5432/test",
        /not a URL the Postgres client can read: .*a password/,
      ],
      [
        "postgres://u:s3cr%zzet@127.0.0.1:5432/test",
        /not a URL the Postgres client can read: .*a password/,
      ],
      ["postgres://127.0.0.1:99999/test", /port 99999 is out of range: a port is 1 to 65535$/],
    ] as const
  ) {
    const text = `name: t\nsources:\n  g: { kind: generator, count: 1 }\npipeline:\n` +
      `  - publish:\n      - postgres:\n          url: "${url}"\n          table: t\n`;
    const e = flowError(() => parseFlow(text, "flows/t.yaml", builtinRegistry(), {}));
    assert.match(
      e.message,
      /^flows\/t\.yaml:7:16: pipeline\[0\]\.publish(\.sinks)?\[0\]\.postgres\.url: /,
    );
    assert.match(e.message, said, e.message);
    assert.ok(!e.message.includes("s3cr"), e.message);
  }
  // A database named with an @ is one postgres.js connects to: not refused.
  parseFlow(
    "name: t\nsources:\n  g: { kind: generator, count: 1 }\npipeline:\n  - publish:\n" +
      "      - postgres:\n          url: postgres://user@127.0.0.1/my@db\n          table: t\n",
    "flows/t.yaml",
    builtinRegistry(),
    {},
  );
});

Deno.test("a Redis URL the connection cannot read is refused at its line, its password masked", () => {
  // These passed check and failed the run, naming no file, line or field.
  for (
    const [url, said] of [
      ["redis://:ab/cd@127.0.0.1:1", "not a URL; expected redis://host:port"],
      ["redis://127.0.0.1:99999", "port 99999 is out of range: a port is 1 to 65535"],
      ["redis://127.0.0.1:6379/abc", 'the path must be a database number, got "/abc"'],
      ["redis://:s3cr%zzet@h:1", "the user or password holds a % that starts no escape"],
    ]
  ) {
    const text = `name: t\ndurability: redis\nredis: ${url}\nsources:\n` +
      `  g: { kind: generator, count: 1 }\npipeline:\n  - publish:\n` +
      `      - redis-stream: { url: "${url}", stream: s }\n`;
    const e = flowError(() => parseFlow(text, "flows/t.yaml", builtinRegistry(), {}));
    assert.ok(e.message.startsWith(`flows/t.yaml:3:8: redis: ${said}`), e.message);
    assert.match(
      e.message,
      /flows\/t\.yaml:8:\d+: pipeline\[0\]\.publish(\.sinks)?\[0\]\.redis-stream\.url: /,
    );
    assert.ok(!/s3cr|ab\/cd/.test(e.message), e.message);
  }
});

Deno.test("a field of the flow's http block given to a source says where it goes", () => {
  for (const key of ["allow", "userAgent", "robots"]) {
    const text =
      `name: demo\nsources:\n  hn: { kind: json, path: a.json, ${key}: x }\npipeline:\n  - validate\n`;
    const e = flowError(() => parseFlow(text, "flows/demo.yaml", builtinRegistry(), {}));
    assert.match(
      e.message,
      new RegExp(
        `^flows/demo\\.yaml:3:\\d+: sources\\.hn\\.${key}: unknown field "${key}" here: ` +
          `it is set for every source in the flow's http: block \\(http: \\{ ${key}: … \\}\\); ` +
          `a source may set only its perHost$`,
      ),
    );
  }
});

Deno.test("a typo in a top-level key points at the key and suggests the right one", () => {
  const e = flowError(() => parse(flow("  - validate\n", "capacty: 10\n")));
  assert.equal(
    e.message,
    `flows/demo.yaml:2:1: capacty: unknown field "capacty"; did you mean "capacity"?`,
  );
});

Deno.test("a typo in a source's common field is suggested", () => {
  const e = flowError(() =>
    parse("name: demo\nsources:\n  hn: { kind: json, prority: high }\npipeline: [validate]\n")
  );
  assert.equal(
    e.message,
    `flows/demo.yaml:3:21: sources.hn.prority: unknown field "prority"; did you mean "priority"?`,
  );
});

Deno.test("a wrong type says what was expected and what was given", () => {
  const e = flowError(() => parse(flow("  - dedupe: { key: url }\n")));
  assert.equal(
    e.message,
    `flows/demo.yaml:5:20: pipeline[0].dedupe.key: expected a list, got "url"`,
  );
});

Deno.test("negative sizes are refused with the number given", () => {
  const e = flowError(() =>
    parse(flow("  - embed:\n      batch: { size: -5, maxWait: 2s }\n", "capacity: -5\n"))
  );
  assert.equal(
    e.message,
    "flows/demo.yaml:2:11: capacity: expected a positive integer, got -5\n" +
      "flows/demo.yaml:7:22: pipeline[0].embed.batch.size: expected a positive integer, got -5",
  );
});

Deno.test("common stage fields are checked: concurrency above 0, retries 0 or more", () => {
  const e = flowError(() => parse(flow("  - validate: { concurrency: 0, retries: -1 }\n")));
  assert.deepEqual(e.problems.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`), [
    "5:30 pipeline[0].validate.concurrency: expected a positive integer, got 0",
    "5:42 pipeline[0].validate.retries: expected zero or a positive integer, got -1",
  ]);
});

Deno.test("a bad enum value lists the choices and suggests the near one", () => {
  const e = flowError(() => parse(flow("  - validate\n", "durability: rediss\n")));
  assert.equal(
    e.message,
    `flows/demo.yaml:2:13: durability: expected one of "memory", "redis", got "rediss"; ` +
      `did you mean "redis"?`,
  );
});

Deno.test("a misspelt word where a field takes a boolean or a word suggests the word", () => {
  const e = flowError(() =>
    parse(flow("  - validate\n", "durability: redis\nredis: redis://h\ndurable: { fuse: al }\n"))
  );
  assert.equal(
    e.message,
    `flows/demo.yaml:4:18: durable.fuse: expected true or false or "all", got "al"; ` +
      `did you mean "all"?`,
  );
});

Deno.test("an empty pipeline and no sources are refused with an example of what to write", () => {
  const e = flowError(() => parse("name: demo\nsources: {}\npipeline: []\n"));
  assert.equal(
    e.message,
    "flows/demo.yaml:2:10: sources: add at least one source, e.g. hn: { kind: json, every: 5m }\n" +
      "flows/demo.yaml:3:11: pipeline: add at least one stage, e.g. - validate: { require: [title, url] }",
  );
});

Deno.test("an empty list item (a lone dash) is placed at its dash", () => {
  const e = flowError(() => parse(flow("  - validate\n  -\n  -   # nothing yet\n")));
  assert.equal(
    e.message,
    "flows/demo.yaml:6:3: pipeline[1]: expected a stage such as - dedupe: { key: [url] }, got null\n" +
      "flows/demo.yaml:7:3: pipeline[2]: expected a stage such as - dedupe: { key: [url] }, got null",
  );
});

Deno.test("a missing required field points at the nearest written ancestor", () => {
  const e = flowError(() => parse("sources:\n  hn: { kind: json }\npipeline: [validate]\n"));
  assert.equal(e.message, "flows/demo.yaml:1:1: name: required field is missing");
  const e2 = flowError(() =>
    parse("name: demo\nsources:\n  feed: { kind: rss }\npipeline: [validate]\n")
  );
  assert.equal(e2.message, "flows/demo.yaml:3:3: sources.feed.url: required field is missing");
});

Deno.test("an unknown stage kind suggests the nearest registered kind", () => {
  const e = flowError(() => parse(flow("  - validate\n  - embedd: { batch: { size: 8 } }\n")));
  assert.equal(
    e.message,
    `flows/demo.yaml:6:5: pipeline[1].embedd: unknown stage kind "embedd"; did you mean "embed"?`,
  );
});

Deno.test("an unknown stage kind with nothing close lists the registered kinds", () => {
  const e = flowError(() => parse(flow("  - translate: {}\n")));
  assert.equal(
    e.message,
    `flows/demo.yaml:5:5: pipeline[0].translate: unknown stage kind "translate"; ` +
      "registered kinds: validate, dedupe, enrich, embed, publish",
  );
});

Deno.test("an unknown source kind suggests the nearest registered kind", () => {
  const e = flowError(() =>
    parse("name: demo\nsources:\n  hn: { kind: jsn }\npipeline: [validate]\n")
  );
  assert.equal(
    e.message,
    `flows/demo.yaml:3:15: sources.hn.kind: unknown source kind "jsn"; did you mean "json"?`,
  );
});

Deno.test("a stage whose fields are not indented under its kind is explained", () => {
  const e = flowError(() => parse(flow("  - validate:\n    require: [title]\n")));
  assert.equal(
    e.message,
    "flows/demo.yaml:5:5: pipeline[0]: a stage is a map with one key, its kind " +
      "(e.g. - dedupe: { key: [url] }), but this one has 2: validate, require; " +
      "indent the stage's fields under its kind",
  );
});

Deno.test("a missing environment variable names the variable, file, line and field", () => {
  const e = flowError(() =>
    parse(flow("  - validate\n", "durability: redis\nredis: ${REDIS_URL}\n"), {})
  );
  assert.equal(
    e.message,
    "flows/demo.yaml:3:8: redis: environment variable REDIS_URL is not set; " +
      "set it or write ${REDIS_URL:-redis://127.0.0.1:6379}",
  );
  const e2 = flowError(() =>
    parse(
      'name: demo\nsources:\n  hn: { kind: rss, url: "https://${HOST}/feed" }\npipeline: [validate]\n',
    )
  );
  assert.equal(
    e2.message,
    "flows/demo.yaml:3:34: sources.hn.url: environment variable HOST is not set; " +
      "set it or write ${HOST:-default}",
  );
});

Deno.test("environment variables and their defaults fill string values", () => {
  const text = "name: demo\n" +
    "durability: redis\n" +
    "redis: ${REDIS_URL:-redis://127.0.0.1:6379}\n" +
    "capacity: ${CAPACITY:-64}\n" +
    "sources:\n" +
    '  hn: { kind: rss, url: "https://${HOST}/feed.xml" }\n' +
    "pipeline: [validate]\n";
  const withDefaults = parse(text, { HOST: "example.com" });
  assert.equal(withDefaults.redis, "redis://127.0.0.1:6379");
  assert.equal(withDefaults.capacity, 64);
  assert.deepEqual(withDefaults.sources[0].config, { url: "https://example.com/feed.xml" });
  const fromEnv = parse(text, { HOST: "a.test", REDIS_URL: "redis://cache:6380", CAPACITY: "9" });
  assert.equal(fromEnv.redis, "redis://cache:6380");
  assert.equal(fromEnv.capacity, 9);
});

Deno.test("$${ writes a literal ${ and a value from the environment is not expanded again", () => {
  const text = flow('  - publish: [ { jsonl: { path: "$${HOME}/${NAME}.jsonl" } } ]\n');
  const got = parse(text, { HOME: "/home/x", NAME: "${HOME}" });
  assert.deepEqual(got.pipeline[0].config, [{ jsonl: { path: "${HOME}/${HOME}.jsonl" } }]);
});

Deno.test("a quoted ${VAR} stays a string, so a number field says so", () => {
  const e = flowError(() => parse(flow("  - validate\n", 'capacity: "${CAP}"\n'), { CAP: "10" }));
  assert.equal(e.message, `flows/demo.yaml:2:11: capacity: expected a positive integer, got "10"`);
});

Deno.test("a bad stage order names the stage and the stages that would provide the fact", () => {
  const e = flowError(() =>
    parse(flow("  - validate\n  - publish:\n      - vector: { collection: trends }\n  - embed\n"))
  );
  assert.equal(
    e.message,
    "flows/demo.yaml:6:5: pipeline[1].publish: publish needs embedded items; " +
      "add a stage that provides it before it (provided by: embed)",
  );
  // The same sink list after an embed stage is fine, and a publish to jsonl alone needs nothing.
  parse(flow("  - validate\n  - embed\n  - publish:\n      - vector: { collection: trends }\n"));
  parse(flow("  - publish: [ { jsonl: { path: a.jsonl } } ]\n"));
});

Deno.test("a stage that needs a fact no earlier stage adds is refused even when it is first", () => {
  const e = flowError(() => parse(flow("  - dedupe\n  - validate\n")));
  assert.equal(
    e.message,
    "flows/demo.yaml:5:5: pipeline[0].dedupe: dedupe needs valid items; " +
      "add a stage that provides it before it (provided by: validate)",
  );
});

Deno.test("duplicate stage ids are an error at the second one", () => {
  const e = flowError(() =>
    parse(flow("  - validate: { id: check }\n  - dedupe: { id: check }\n"))
  );
  assert.equal(
    e.message,
    `flows/demo.yaml:6:19: pipeline[1].dedupe.id: stage id "check" is already used by ` +
      "pipeline[0].validate; stage ids must be unique, so change one of them",
  );
  const e2 = flowError(() =>
    parse(flow("  - validate\n  - dedupe\n  - dedupe\n  - enrich: { id: dedupe#2 }\n"))
  );
  assert.equal(
    e2.message,
    `flows/demo.yaml:8:19: pipeline[3].enrich.id: stage id "dedupe#2" is already used by ` +
      "pipeline[2].dedupe; stage ids must be unique, so change one of them",
  );
});

Deno.test("a stage id is a name that prints on one line: quotes, spaces and newlines are refused", () => {
  const e = flowError(() => parse(flow('  - validate: { id: "we\\"ird\\nid" }\n')));
  assert.match(
    e.message,
    /^flows\/demo\.yaml:5:21: pipeline\[0\]\.validate\.id: expected letters, digits, "_", "\.", "#" and "-"/,
  );
  assert.equal(
    parse(flow("  - validate: { id: check-titles.v2 }\n")).pipeline[0].id,
    "check-titles.v2",
  );
  // A source's name too: it heads the summary's rows.
  const e2 = flowError(() =>
    parse(
      'name: demo\nsources:\n  "wire\\nvalidate 999": { kind: generator }\npipeline: [validate]\n',
    )
  );
  assert.match(
    e2.message,
    /^flows\/demo\.yaml:3:3: sources\["wire\\nvalidate 999"\]: a source name is letters/,
  );
});

Deno.test("a problem in a source schema is prefixed with the source's place", () => {
  const e = flowError(() =>
    parse("name: demo\nsources:\n  blog: { kind: rss, url: not a url }\npipeline: [validate]\n")
  );
  assert.equal(
    e.message,
    `flows/demo.yaml:3:27: sources.blog.url: expected a URL, got "not a url"`,
  );
});

Deno.test("a list-valued stage reports problems inside the list by index", () => {
  const e = flowError(() => parse(flow("  - publish:\n      - jsonl: { pth: a.jsonl }\n")));
  assert.equal(
    e.message,
    `flows/demo.yaml:6:18: pipeline[0].publish[0].jsonl.pth: unknown field "pth"; did you mean "path"?`,
  );
});

Deno.test("a YAML syntax error has its line and column", () => {
  const e = flowError(() =>
    parse("name: demo\nsources:\n  hn: { kind: json\npipeline: [validate]\n")
  );
  assert.equal(e.line, 4);
  assert.equal(e.column, 1);
  assert.match(e.message, /^flows\/demo\.yaml:4:1: YAML syntax error: [^\n]+$/m);
  const e2 = flowError(() => parse("name: demo\nname: again\n"));
  assert.equal(
    e2.message,
    'flows/demo.yaml:2:1: YAML error: the key "name" is written twice in one map (first at line ' +
      "1): a map holds each key once, so rename or remove one",
  );
  // Two sources of one name: the key and its first line are named (it said only "map keys
  // must be unique").
  const e3 = flowError(() =>
    parse("name: demo\nsources:\n  hn: { kind: generator }\n  hn: { kind: generator }\n")
  );
  assert.match(
    e3.message,
    /:4:3: YAML error: the key "hn" is written twice in one map \(first at line 3\)/,
  );
  // Right after a key with no value: it was said at that empty value, as a key "".
  const e4 = flowError(() => parse("name: demo\npipeline:\npipeline:\n  - validate: {}\n"));
  assert.match(
    e4.message,
    /^flows\/demo\.yaml:3:1: YAML error: the key "pipeline" is written twice in one map \(first at line 2\)/,
  );
});

Deno.test("a key that is a map or a list is refused at its place, however deep the keys nest", () => {
  // 40 flow maps nested as keys (161 bytes) ran the process out of memory: yaml writes a key
  // nested in keys anew at each level.
  const nested = "{".repeat(40) + "}".repeat(40);
  const e = flowError(() =>
    parse(
      `name: demo\nsources:\n  g: { kind: generator, count: ${nested} }\npipeline: [validate]\n`,
    )
  );
  assert.equal(
    e.message,
    "flows/demo.yaml:3:33: sources.g.count: a key here is a map or a list, not a name; write " +
      "`name: value`",
  );
  const list = flowError(() => parse("name: demo\n? [a, b]\n: 1\n"));
  assert.equal(`${list.line}:${list.column}`, "2:3", list.message);
});

Deno.test("an unclosed quote is said where it opens, not past the end of the file", () => {
  // The yaml library finds it at the end of the file: a 7-line file's error was at line 8.
  for (
    const [text, line, column] of [
      ['name: "demo\nsources:\n  g: { kind: generator }\npipeline: [validate]\n', 1, 7],
      [
        "name: demo # it's\nsources:\n  g: { kind: generator, seed: 'x }\npipeline: [validate]\n",
        3,
        31,
      ],
    ] as const
  ) {
    const e = flowError(() => parse(text));
    assert.equal(`${e.line}:${e.column}`, `${line}:${column}`, e.message);
    assert.match(e.message, /YAML syntax error: missing closing/);
  }
});

Deno.test("${VAR} unquoted inside a flow map is a syntax error with a hint to quote it", () => {
  const e = flowError(() =>
    parse(flow("  - publish: [ { jsonl: { path: ${OUT} } } ]\n"), { OUT: "x" })
  );
  assert.equal(e.line, 5);
  assert.match(
    e.message.split("\n")[0],
    /; inside \{ \} or \[ \] quote a value that holds \$\{\.\.\.\} \("\$\{OUT\}"\), which makes it a string, or write the map in block style \(one field a line\) for a number or a boolean$/,
  );
  // The hint names the one left unquoted, not the first of the line.
  const two = flowError(() =>
    parse(flow(`  - publish: [ { jsonl: { path: "\${A}", fields: [\${B}] } } ]\n`), {
      A: "x",
      B: "y",
    })
  );
  assert.match(two.message.split("\n")[0], /\("\$\{B\}"\), which makes it a string/);
});

Deno.test("a value filled from a variable is named in an error, not shown: a secret in the wrong field", () => {
  const key = "sk-proj-AbCdEf0123456789xyz";
  const text = "name: t\ndurability: redis\nredis: ${REDIS_URL}\nsources:\n" +
    "  g: { kind: generator, count: 1 }\npipeline:\n  - embed:\n      provider: openai\n      model: m\n" +
    "      baseUrl: ${OPENAI_API_KEY}\n      apiKey: x\n  - publish: [stdout: {}]\n";
  const e = flowError(() =>
    parseFlow(text, "flows/t.yaml", builtinRegistry(), {
      OPENAI_API_KEY: key,
      REDIS_URL: "hunter2",
    })
  );
  assert.ok(!e.message.includes(key) && !e.message.includes("hunter2"), e.message);
  assert.equal(
    e.message,
    "flows/t.yaml:3:8: redis: expected a Redis URL such as redis://127.0.0.1:6379, got " +
      "(the value of ${REDIS_URL}, 7 characters)\n" +
      "flows/t.yaml:10:16: pipeline[0].embed.baseUrl: expected a URL, got " +
      "(the value of ${OPENAI_API_KEY}, 27 characters)",
  );
});

Deno.test("a long or all-digit secret filled from a variable is not shown in part either", () => {
  // A value over 60 characters was cut to its first 57 in the error, which the whole value
  // no longer matched; one of digits, read as a number, was shown bare: both were printed.
  const key = "sk-proj-" + "AbCdEfGhIjKlMnOp".repeat(10);
  const text = "name: t\ndurability: redis\nredis: ${REDIS_PASSWORD}\nsources:\n" +
    "  g: { kind: generator, count: 1 }\npipeline:\n  - embed:\n      provider: openai\n" +
    "      model: m\n      baseUrl: ${OPENAI_API_KEY}\n      apiKey: x\n" +
    "  - publish:\n      - postgres:\n          url: ${PGPASSWORD}\n          table: t\n";
  const e = flowError(() =>
    parseFlow(text, "flows/t.yaml", builtinRegistry(), {
      OPENAI_API_KEY: key,
      REDIS_PASSWORD: "84736251",
      PGPASSWORD: "20240611",
    })
  );
  for (const secret of [key.slice(0, 20), "84736251", "20240611"]) {
    assert.ok(!e.message.includes(secret), e.message);
  }
  assert.match(e.message, /3:8: redis: .*got \(the value of \$\{REDIS_PASSWORD\}, 8 characters\)/);
  assert.match(
    e.message,
    /baseUrl: expected a URL, got \(the value of \$\{OPENAI_API_KEY\}, 168 characters\)/,
  );
  assert.match(e.message, /url: .*\(the value of \$\{PGPASSWORD\}, 8 characters\)/);
});

Deno.test("a second YAML document in a flow file is said in a flow's words", () => {
  const e = flowError(() => parse(flow("  - validate\n") + "---\nname: other\n"));
  assert.equal(
    e.message,
    'flows/demo.yaml:6:1: YAML syntax error: a flow file holds one YAML document: remove the "---" ' +
      "at line 6 and what follows it (one flow per file)",
  );
});

Deno.test("a flow that is a list, not a map, says what a flow is", () => {
  const e = flowError(() => parse("- validate\n- dedupe\n"));
  assert.equal(
    e.message,
    "flows/demo.yaml:1:1: a flow is a map with name, sources and pipeline; got a list",
  );
});

Deno.test("an empty or comment-only flow file is an error that says what a flow needs", async () => {
  const expected = "flows/demo.yaml: the flow file is empty; " +
    "a flow needs at least name, sources and pipeline";
  assert.equal(flowError(() => parse("")).message, expected);
  assert.equal(flowError(() => parse("# nothing yet\n\n")).message, expected);
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "empty.yaml");
    await Deno.writeFile(file, new Uint8Array());
    const e = await flowErrorAsync(() => loadFlow(file, registry, {}));
    assert.equal(
      e.message,
      `${file}: the flow file is empty; a flow needs at least name, sources and pipeline`,
    );
    assert.equal(e.line, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a binary or non-UTF-8 file is refused with what to do instead", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const binary = join(dir, "flow.yaml");
    await Deno.writeFile(binary, new Uint8Array([0x6e, 0x61, 0x00, 0xff, 0x10]));
    const e = await flowErrorAsync(() => loadFlow(binary, registry, {}));
    assert.equal(
      e.message,
      `${binary}: this is a binary file, not a YAML flow (it holds NUL bytes); pass the flow's .yaml file`,
    );
    const latin1 = join(dir, "latin1.yaml");
    await Deno.writeFile(
      latin1,
      new Uint8Array([...new TextEncoder().encode("name: caf"), 0xe9, 0x0a]),
    );
    const e2 = await flowErrorAsync(() => loadFlow(latin1, registry, {}));
    assert.equal(e2.message, `${latin1}: the file is not UTF-8 text; save the flow as UTF-8 YAML`);
    // Lines ending in CR alone: the demo's first comment took the whole file ("empty").
    const mac = join(dir, "mac.yaml");
    await Deno.writeTextFile(
      mac,
      (await Deno.readTextFile("flows/demo.yaml")).replaceAll("\n", "\r"),
    );
    const e3 = await flowErrorAsync(() => loadFlow(mac, registry, {}));
    assert.equal(
      e3.message,
      `${mac}: the file's lines end in CR alone (classic Mac OS line ends); save it with LF (or ` +
        "CRLF) line ends",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing file or a directory is refused with the path that was tried", async () => {
  const e = await flowErrorAsync(() => loadFlow("flows/nope.yaml", registry, {}));
  assert.equal(
    e.message,
    `flows/nope.yaml: cannot read the flow file: it does not exist (looked for ${
      resolve("flows/nope.yaml")
    }); check the path`,
  );
  const e2 = await flowErrorAsync(() => loadFlow(testdata, registry, {}));
  assert.equal(
    e2.message,
    `${testdata}: cannot read the flow file: it is a directory; pass the flow's .yaml file inside it`,
  );
});

Deno.test("a flow file over 1 MiB is refused with both sizes, before it is parsed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A YAML syntax error on line 1 shows the file was not parsed.
    const huge = "name: [\n" + "# padding\n".repeat(1_100_000);
    const file = join(dir, "huge.yaml");
    await Deno.writeTextFile(file, huge);
    const e = await flowErrorAsync(() => loadFlow(file, registry, {}));
    const tail = "over the 1 MiB (1048576 bytes) limit for a flow file; " +
      "a flow is hand-written configuration, so check this is the flow's .yaml file";
    assert.equal(e.message, `${file}: the flow file is 10.5 MiB (11000008 bytes), ${tail}`);
    assert.equal(
      flowError(() => parse(huge)).message,
      `flows/demo.yaml: the flow file is 10.5 MiB (11000008 bytes), ${tail}`,
    );
    // A file with no size, such as a device, is read no further than the limit.
    const endless = await flowErrorAsync(() => loadFlow("/dev/zero", registry, {}));
    assert.equal(endless.message, `/dev/zero: the flow file is larger, ${tail}`);
    // A flow of exactly the limit is read.
    const text = flow("  - validate\n");
    const padded = text + "#".repeat(MAX_FLOW_BYTES - text.length - 1) + "\n";
    const full = join(dir, "full.yaml");
    await Deno.writeTextFile(full, padded);
    assert.equal((await Deno.stat(full)).size, MAX_FLOW_BYTES);
    assert.equal((await loadFlow(full, registry, {})).name, "demo");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("problems in different places are all reported, in file order", () => {
  const text = "name: demo\n" +
    "sources:\n" +
    "  hn: { kind: jsn }\n" +
    "pipeline:\n" +
    "  - validate: { requir: [title] }\n" +
    "capacity: 0\n";
  const e = flowError(() => parse(text));
  assert.deepEqual(e.problems.map((p) => `${p.line}:${p.column} ${p.path}`), [
    "3:15 sources.hn.kind",
    "5:17 pipeline[0].validate.requir",
    "6:11 capacity",
  ]);
  assert.equal(e.message.split("\n").length, 3);
});

Deno.test("a component schema's limits read in plain words, integer or not", () => {
  const e = flowError(() => parse(flow("  - validate: { title: { min: -1, max: 5000 } }\n")));
  assert.deepEqual(e.problems.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`), [
    "5:31 pipeline[0].validate.title.min: expected zero or a positive integer, got -1",
    "5:40 pipeline[0].validate.title.max: expected a number at most 1000, got 5000",
  ]);
});

Deno.test("a value that fits none of a union's types lists the types that would do", () => {
  const e = flowError(() => parse(flow("  - dedupe: { ttl: [1, 2] }\n")));
  assert.equal(
    e.message,
    "flows/demo.yaml:5:20: pipeline[0].dedupe.ttl: expected a string or a number, got a list",
  );
});

/** The error of a flow file with these sources and stages (a validate stage by default). */
const durationError = (source: string, stage = "  - validate\n") =>
  flowError(() =>
    parseFlow(
      `name: t\nsources:\n${source}pipeline:\n${stage}`,
      "flows/t.yaml",
      builtinRegistry(),
      {},
    )
  ).message;

Deno.test("a bare number in a duration field of a flow file asks for a unit; zero polls are refused", () => {
  assert.equal(
    durationError("  g: { kind: generator, every: 5 }\n"),
    "flows/t.yaml:3:32: sources.g.every: give a unit, e.g. 5s or 5ms",
  );
  assert.match(
    durationError("  g: { kind: generator }\n", "  - dedupe: { ttl: 86400000 }\n"),
    /pipeline\[0\]\.dedupe\.ttl: give a unit, e.g. 86400000s or 86400000ms/,
  );
  assert.match(
    durationError("  g: { kind: generator, every: 0s }\n"),
    /sources\.g\.every: expected a duration above zero such as 500ms, 2s or 5m, got "0s"/,
  );
  assert.match(
    durationError("  g: { kind: generator, every: -5 }\n"),
    /sources\.g\.every: expected a duration/,
  );
  assert.match(
    durationError("  g: { kind: generator, every: 0 }\n"),
    /sources\.g\.every: expected a duration above/,
  );
  assert.match(
    durationError("  f: { kind: rss, url: https://example.com/f.xml, timeout: 0ms }\n"),
    /sources\.f\.timeout: expected a duration above zero/,
  );
  // A stage's or a sink's timeout of 0 passed check, then every call failed at once, and an
  // llm stage said its running server was not running (exit 75, retried for ever).
  for (
    const [stage, field] of [
      ["  - embed: { provider: openai, model: m, apiKey: k, timeout: 0s }\n", "embed.timeout"],
      ["  - llm: { model: m, prompt: 'x {title}', apiKey: k, timeout: 0s }\n", "llm.timeout"],
      [
        "  - publish: [ { qdrant: { url: 'http://127.0.0.1:6333', collection: c, timeout: 0s } } ]\n",
        "qdrant.timeout",
      ],
      ["  - publish: { sinks: [ { stdout: {} } ], retentionEvery: 0s }\n", "retentionEvery"],
    ]
  ) {
    const said = durationError("  g: { kind: generator }\n", stage);
    assert.match(
      said,
      new RegExp(`${field.replace(".", "\\.")}: expected a duration above zero`),
      said,
    );
  }
  const ok = parseFlow(
    "name: t\nsources:\n  g: { kind: generator, every: 5s }\npipeline: [validate]\n",
    "flows/t.yaml",
    builtinRegistry(),
    {},
  );
  assert.equal(ok.sources[0].every, 5_000);
});

Deno.test("a timer's duration past what a timer holds (about 24.8 days) is refused at its line; ages and polls may be longer", () => {
  // setTimeout fires a longer wait at once: `timeout: 25d` made every fetch fail at its start.
  assert.equal(
    durationError("  f: { kind: rss, url: https://example.com/f.xml, timeout: 25d }\n"),
    'flows/t.yaml:3:60: sources.f.timeout: expected at most 24d (the longest a timer waits), got "25d"',
  );
  assert.match(
    durationError(
      "  g: { kind: generator }\n",
      "  - publish: { batch: { maxWait: 30d }, sinks: [ { stdout: {} } ] }\n",
    ),
    /pipeline\[0\]\.publish\.batch\.maxWait: expected at most 24d/,
  );
  const ok = parseFlow(
    "name: t\nsources:\n  g: { kind: generator, every: 30d, jitter: 25d }\npipeline:\n" +
      "  - validate\n  - dedupe: { ttl: 90d }\n  - publish: { retention: 365d, sinks: [ { stdout: {} }, " +
      "{ redis-stream: { url: 'redis://127.0.0.1:1', stream: s, idTtl: 30d } } ] }\n",
    "flows/t.yaml",
    builtinRegistry(),
    {},
  );
  assert.equal(ok.sources[0].every, 30 * 86_400_000);
  assert.equal((ok.pipeline[1].config as { ttl: number }).ttl, 90 * 86_400_000);
});

Deno.test("a flow built in code may still give durations as milliseconds", () => {
  const flow = defineFlow({
    name: "t",
    sources: { g: { kind: "generator", every: 5_000 } },
    pipeline: ["validate", { dedupe: { ttl: 60_000 } }],
  }, builtinRegistry());
  assert.equal(flow.sources[0].every, 5_000);
  assert.throws(
    () =>
      defineFlow(
        { name: "t", sources: { g: { kind: "generator", every: 0 } }, pipeline: ["validate"] },
        builtinRegistry(),
      ),
    /sources\.g\.every: expected a duration above zero/,
  );
});

Deno.test("a redis-stream sink without url is refused at check time in a memory flow", () => {
  const builtins = builtinRegistry();
  const text = (top: string) =>
    `name: t\n${top}sources:\n  g: { kind: generator }\npipeline:\n  - validate\n` +
    "  - publish:\n      - redis-stream: { stream: out }\n";
  const e = flowError(() => parseFlow(text(""), "flows/t.yaml", builtins, {}));
  assert.match(
    e.message,
    /^flows\/t\.yaml:7:9: pipeline\[1\]\.publish\[0\]\.redis-stream\.url: required in a memory flow/,
  );
  const durable = parseFlow(
    text("durability: redis\nredis: redis://127.0.0.1:6379\n"),
    "flows/t.yaml",
    builtins,
    {},
  );
  assert.equal(durable.durability, "redis", "a durable flow's sink uses the flow's Redis");
});

Deno.test("loadFlow (what `check` runs) refuses missing or unreadable local source files, with the line", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "a.xml"), "<rss/>");
  await Deno.mkdir(join(dir, "adir"));
  const file = join(dir, "t4.yaml");
  await Deno.writeTextFile(
    file,
    "name: t4\nsources:\n  a: { kind: rss, path: a.xml }\n" +
      "  r: { kind: rss, path: missing.xml }\n" +
      "  l: { kind: json, path: [a.xml, adir] }\n" +
      "  u: { kind: rss, url: http://127.0.0.1:9/never-fetched.xml }\n" +
      "pipeline: [validate]\n",
  );
  const e = await flowErrorAsync(() => loadFlow(file, builtinRegistry(), {}));
  assert.deepEqual(e.message.split("\n"), [
    `${file}:4:25: sources.r.path: missing.xml: no such file (${join(dir, "missing.xml")})`,
    `${file}:5:34: sources.l.path[1]: adir: not a file (${join(dir, "adir")})`,
  ]);
  const skipped = await loadFlow(file, builtinRegistry(), {}, { inputs: false });
  assert.equal(skipped.sources.length, 4);
});

Deno.test("a source's path is a local file only for kinds that say so: a custom source's API path is not checked on disk", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "api.yaml");
  await Deno.writeTextFile(
    file,
    "name: api\nsources:\n  api: { kind: api, host: 127.0.0.1, path: /v1/items }\n" +
      "  feed: { kind: rss, path: gone.xml }\npipeline: [validate]\n",
  );
  const spec = {
    kind: "api",
    summary: "reads an API",
    schema: z.strictObject({ host: z.string(), path: z.string() }),
    create: () => ({ async *read() {} }),
  };
  const e = await flowErrorAsync(() => loadFlow(file, builtinRegistry().source(spec), {}));
  assert.deepEqual(e.message.split("\n"), [
    `${file}:4:28: sources.feed.path: gone.xml: no such file (${join(dir, "gone.xml")})`,
  ], "the rss source's file is checked, the API's path is not");
  // A kind that reads files says which field names them, and that field is checked.
  const reads = { ...spec, kind: "reads", files: "path" };
  await Deno.writeTextFile(
    file,
    "name: api\nsources:\n  r: { kind: reads, host: h, path: x.csv }\npipeline: [validate]\n",
  );
  const e2 = await flowErrorAsync(() => loadFlow(file, builtinRegistry().source(reads), {}));
  assert.match(e2.message, /sources\.r\.path: x\.csv: no such file/);
});

Deno.test("a URL the flow file gets wrong is quoted with its password masked", () => {
  // A password with an unencoded "/" (a base64 one, from ${FEED} say) makes the URL unreadable.
  const text = [
    "name: feeds",
    "sources:",
    '  f: { kind: rss, url: "https://reader:tok/en@example.com/feed.xml" }',
    "pipeline:",
    "  - validate: { require: [title] }",
    "",
  ].join("\n");
  const e = flowError(() => parseFlow(text, "flows/feeds.yaml", builtinRegistry(), {}));
  assert.match(e.message, /^flows\/feeds\.yaml:3:\d+: sources\.f\.url: expected a URL/);
  assert.match(e.message, /"https:\/\/reader:\*\*\*@example\.com\/feed\.xml"/);
  assert.ok(!e.message.includes("tok/en"), e.message);
  // Nor is one spelt too badly to be found as a URL (a scheme without its colon).
  const typo = text.replace("https://reader:tok/en@", "http//u:SECRETPW123@");
  const t = flowError(() => parseFlow(typo, "flows/feeds.yaml", builtinRegistry(), {}));
  assert.match(t.message, /sources\.f\.url: expected a URL.*"\*\*\*@example\.com\/feed\.xml"/);
  assert.ok(!t.message.includes("SECRETPW123"), t.message);
});

Deno.test("a secret field of the wrong type is not quoted back", () => {
  // YAML reads an unquoted all-digit key as a number: the error must not repeat it.
  const text = [
    "name: keys",
    "sources:",
    "  g: { kind: generator, count: 10 }",
    "pipeline:",
    "  - embed: { provider: openai, model: m, apiKey: 123456789012 }",
    "  - publish: [ { jsonl: { path: items.jsonl } } ]",
    "",
  ].join("\n");
  const e = flowError(() => parseFlow(text, "flows/keys.yaml", builtinRegistry(), {}));
  assert.match(e.message, /pipeline\[0\]\.embed\.apiKey: expected a string/);
  assert.ok(!e.message.includes("123456789012"), e.message);
});

Deno.test("a YAML merge key is said to be no merge, not an unknown field with a list of fields", () => {
  const e = flowError(() =>
    parse(
      "name: demo\nsources:\n  g: { kind: generator }\npipeline:\n" +
        "  - dedupe: &d { key: [url] }\n  - dedupe:\n      <<: *d\n      ttl: 1h\n",
    )
  );
  assert.match(
    e.message,
    /:7:7: pipeline\[1\]\.dedupe\["<<"\]: a merge key \(<<: \*anchor\) is not read as a merge in a flow file/,
  );
  // In a source, too (it said the source's kind was missing).
  const inSource = flowError(() =>
    parse(
      "name: demo\nsources:\n  g: &g { kind: rss, url: https://e.com/f }\n  h: { <<: *g }\npipeline: [validate]\n",
    )
  );
  assert.match(
    inSource.message,
    /:4:8: sources\.h\["<<"\]: a merge key \(<<: \*anchor\) is not read/,
  );
});

Deno.test("a true, false or short number filled from a variable is not hidden in other fields' errors", () => {
  // `vectors: ${V:-true}` made another field's "expected true or false" read "expected (the value
  // of ${V:-true}, 4 characters) or false", and named its own placeholder again.
  const e = flowError(() =>
    parseFlow(
      "name: t\nsources:\n  g: { kind: generator, count: 1 }\npipeline:\n  - publish:\n" +
        "      - stdout:\n          vectors: ${V:-true}\n" +
        "      - jsonl:\n          path: x.jsonl\n          vectors: maybe\n",
      "flows/t.yaml",
      builtinRegistry(),
      {},
    )
  );
  assert.match(e.message, /vectors: expected true or false, got "maybe"$/);
});

Deno.test("a key written twice names its first line in the same map; an apostrophe inside a word opens no quote", () => {
  // Both sources write `count`: the first was looked for anywhere in the file (line 4, the
  // other source's). And `rock-'n-roll` was taken for where an unclosed quote opened.
  const dup = flowError(() =>
    parse(
      "name: demo\nsources:\n  wire:\n    kind: generator\n    count: 3\n" +
        "  mirror:\n    kind: generator\n    count: 5\n    count: 6\npipeline: [validate]\n",
    )
  );
  assert.match(
    dup.message,
    /:9:5: YAML error: the key "count" is written twice in one map \(first at line 8\)/,
  );
  const quote = flowError(() =>
    parse(
      "name: demo\nsources:\n  g: { kind: generator }\npipeline:\n" +
        "  - validate:\n      spam: [rock-'n-roll, casino]\n" +
        '  - publish:\n      - jsonl: { path: "x.jsonl }\n',
    )
  );
  assert.equal(`${quote.line}:${quote.column}`, "8:24", quote.message);
  // After an anchor, too (it was placed past the last line).
  const anchored = flowError(() =>
    parse(
      "name: demo\nsources:\n  g: { kind: generator }\npipeline:\n  - publish:\n" +
        '      - jsonl:\n          path: &p "items.jsonl\n',
    )
  );
  assert.equal(`${anchored.line}:${anchored.column}`, "7:20", anchored.message);
});

Deno.test("a number of leading zeros filled from a variable does not hide a short number elsewhere", () => {
  // N=000001 read as 1: another field's "at most 1" read "at most (the value of ${N}, …)".
  const e = flowError(() =>
    parseFlow(
      "name: t\nsources:\n  g:\n    kind: generator\n    count: ${N}\npipeline:\n" +
        "  - validate\n  - dedupe: { near: { threshold: 1.5 } }\n",
      "flows/t.yaml",
      builtinRegistry(),
      { N: "000001" },
    )
  );
  assert.match(e.message, /threshold: .*1\b/, e.message);
  assert.doesNotMatch(e.message, /the value of \$\{N\}/, e.message);
});
