import assert from "node:assert/strict";
import { FlowError, parseFlow } from "../../config/load_flow.ts";
import { MAX_ALIAS_VALUES } from "../../config/yaml_aliases.ts";
import { fakeRegistry } from "./fake_registry.ts";

const registry = fakeRegistry();
const parse = (text: string, env: Record<string, string | undefined> = {}) =>
  parseFlow(text, "flows/demo.yaml", registry, env);

function flowError(run: () => unknown): FlowError {
  try {
    run();
  } catch (e) {
    if (e instanceof FlowError) return e;
    throw e;
  }
  assert.fail("expected a FlowError");
}

const head = "name: demo\nsources:\n  hn: { kind: json }\npipeline:\n  - validate:\n";

Deno.test("an alias bomb is refused at the alias that crosses the limit, with line, column and field", () => {
  // Billion laughs: &l0 is 9 strings, each next level 9 aliases of the one before.
  let text = head + "      require:\n        - &l0 [" + Array(9).fill("lol").join(", ") + "]\n";
  for (let i = 1; i < 9; i++) {
    text += `        - &l${i} [${Array(9).fill(`*l${i - 1}`).join(", ")}]\n`;
  }
  const e = flowError(() => parse(text));
  // Aliases in l1..l3 stand for 90 + 819 + 7380 values; the first one in l4 adds 7381 more.
  assert.equal(
    e.message,
    `flows/demo.yaml:11:16: pipeline[0].validate.require[4][0]: too many aliases: with this one, ` +
      `the YAML aliases stand for more than ${MAX_ALIAS_VALUES} values (an alias bomb?); ` +
      "a flow reuses a block a few times at most",
  );
  assert.deepEqual([e.line, e.column, e.path], [11, 16, "pipeline[0].validate.require[4][0]"]);
});

Deno.test("an alias inside the anchor it refers to is refused, not built as an endless value", () => {
  const e = flowError(() => parse(head + "      require: &r [title, *r]\n"));
  assert.equal(
    e.message,
    "flows/demo.yaml:6:27: pipeline[0].validate.require[1]: alias *r is inside the &r it " +
      "stands for, so its value would never end; point it at an anchor outside it",
  );
});

Deno.test("ordinary aliases work, even one anchor used more than a hundred times", () => {
  const words = Array(150).fill("*w").join(", ");
  const got = parse(
    "name: demo\n" +
      "sources:\n" +
      "  hn: { kind: json, preset: &p hackernews }\n" +
      "  hn2: { kind: json, preset: *p }\n" +
      "pipeline:\n" +
      "  - validate: { require: &req [title, url] }\n" +
      '  - dedupe: &d { key: *req, ttl: "${TTL}" }\n' +
      "  - dedupe: *d\n" +
      `  - enrich: { steps: [&w word-count, ${words}] }\n`,
    { TTL: "1h" },
  );
  assert.deepEqual(got.sources.map((s) => s.config), [
    { preset: "hackernews" },
    { preset: "hackernews" },
  ]);
  assert.deepEqual(got.pipeline.map((s) => [s.id, s.config]), [
    ["validate", { require: ["title", "url"] }],
    ["dedupe", { key: ["title", "url"], ttl: 3_600_000 }],
    ["dedupe#2", { key: ["title", "url"], ttl: 3_600_000 }],
    ["enrich", { steps: Array(151).fill("word-count") }],
  ]);
});

Deno.test("an alias with no anchor before it names the alias and its place", () => {
  const e = flowError(() => parse(head + "      require: *cols\n"));
  assert.equal(
    e.message,
    "flows/demo.yaml:6:16: pipeline[0].validate.require: unknown alias *cols; " +
      "define &cols before using it",
  );
});
