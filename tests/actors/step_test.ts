/**
 * Your own step: `- step: { module, options }` loads a TypeScript module
 * beside the flow file, checks its options with the module's own schema,
 * and runs it like any stage; a broken module is an error at its line.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { builtinRegistry } from "../../builtins.ts";
import { defineFlow } from "../../config/define_flow.ts";
import { FlowError, loadFlow } from "../../config/load_flow.ts";
import type { RawItem } from "../../engine/item.ts";
import { runTestFlow, testRegistry } from "../../testing.ts";

const STEP = `
import { z } from "zod";
export default {
  summary: "adds a suffix to titles",
  schema: z.strictObject({ suffix: z.string().min(1), times: z.int().positive().default(1) }),
  needs: () => ["valid"],
  create: (c) => ({
    handle(batch, out) {
      for (const item of batch) {
        out.emit({ ...item, payload: { ...item.payload, title: item.payload.title + c.suffix.repeat(c.times) } });
      }
    },
  }),
};
`;

function flowText(module: string, options = "{ suffix: '!' }", before = "  - validate\n"): string {
  return `name: steps
sources: { inbox: { kind: memory } }
pipeline:
${before}  - step:
      module: ${module}
      options: ${options}
  - publish: [ { collect: { name: out } } ]
`;
}

/** A directory holding `files`, removed after `fn`. */
async function withDir(files: Record<string, string>, fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "millrace-step-" });
  try {
    for (const [name, text] of Object.entries(files)) {
      await Deno.mkdir(join(dir, name, ".."), { recursive: true });
      await Deno.writeTextFile(join(dir, name), text);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The FlowError of loading `flow.yaml` in `dir`, as one line per problem. */
async function loadError(dir: string): Promise<string> {
  const file = join(dir, "flow.yaml");
  const error = await loadFlow(file, testRegistry()).then(() => undefined, (e) => e);
  assert.ok(error instanceof FlowError, `expected a FlowError, got ${error}`);
  return error.message.replaceAll(dir, "<dir>");
}

Deno.test("a step module beside the flow file loads, is checked and runs", async () => {
  await withDir({ "steps/suffix.ts": STEP }, async (dir) => {
    const yaml = flowText("./steps/suffix.ts", "{ suffix: '!', times: 2 }");
    const { published, report } = await runTestFlow(yaml, {
      baseDir: dir,
      items: [{ title: "Hello there", url: "https://example.com/a" }],
    });
    assert.deepEqual(published.get("out")!.map((i) => i.payload.title), ["Hello there!!"]);
    // The stage is named after the module's file when it gives no kind.
    assert.deepEqual(report.stages.map((s) => s.id), ["validate", "suffix", "publish"]);
  });
});

Deno.test("the example flow's own step loads from its file and tags items", async () => {
  const flow = await loadFlow("flows/tagged.yaml", builtinRegistry());
  assert.deepEqual(flow.pipeline.map((s) => s.id), ["validate", "tag", "publish"]);
  const { published } = await runTestFlow(
    (await Deno.readTextFile("flows/tagged.yaml"))
      .replace(/newsroom: .*/, "inbox: { kind: memory }")
      .replace(/- jsonl: .*/, "- collect: { name: out }"),
    {
      baseDir: "flows",
      items: [
        { title: "A new LLM tops the charts", url: "https://example.com/1" },
        { title: "A CVE in a popular library", url: "https://example.com/2", tags: ["news"] },
        { title: "Gardening in spring", url: "https://example.com/3" },
      ],
    },
  );
  assert.deepEqual(published.get("out")!.map((i) => i.payload.tags), [
    ["ai"],
    ["news", "security"],
    [],
  ]);
});

Deno.test("a missing step module is an error at its line, naming the path looked for", async () => {
  await withDir({ "flow.yaml": flowText("./steps/nope.ts") }, async (dir) => {
    assert.equal(
      await loadError(dir),
      "<dir>/flow.yaml:6:15: pipeline[1].step.module: step module ./steps/nope.ts does not " +
        "exist (looked for <dir>/steps/nope.ts)",
    );
  });
});

Deno.test("a step module with a syntax error names the flow's line and the module's", async () => {
  await withDir({
    "flow.yaml": flowText("./steps/broken.ts"),
    "steps/broken.ts": "export default {\n  summary: 'x',,\n};\n",
  }, async (dir) => {
    const message = await loadError(dir);
    assert.match(message, /^<dir>\/flow\.yaml:6:15: pipeline\[1\]\.step\.module: /);
    assert.match(
      message,
      /cannot import step module \.\/steps\/broken\.ts: SyntaxError: Unexpected token `,`.* \(at <dir>\/steps\/broken\.ts:2:16\)$/,
    );
  });
});

Deno.test("a step module that exports no stage says what it must export", async () => {
  await withDir({
    "flow.yaml": flowText("./steps/wrong.ts"),
    "steps/wrong.ts": "export const stage = { create() {} };\n",
  }, async (dir) => {
    assert.equal(
      await loadError(dir),
      "<dir>/flow.yaml:6:15: pipeline[1].step.module: step module ./steps/wrong.ts must export " +
        "default a stage ({ schema: a zod schema of its options, create(options, env) }); " +
        "it has no default export (it exports: stage)",
    );
  });
  await withDir({
    "flow.yaml": flowText("./steps/noschema.ts"),
    "steps/noschema.ts": "export default { summary: 'x', create() {} };\n",
  }, async (dir) => {
    assert.match(await loadError(dir), /flow\.yaml:6:15: .*its default export has no zod schema$/);
  });
});

Deno.test("bad options are errors at their own lines, by the module's schema", async () => {
  await withDir({
    "flow.yaml": flowText("./steps/suffix.ts", "\n        suffix: ''\n        tims: 2"),
    "steps/suffix.ts": STEP,
  }, async (dir) => {
    const lines = (await loadError(dir)).split("\n");
    assert.deepEqual(lines, [
      '<dir>/flow.yaml:8:17: pipeline[1].step.options.suffix: expected a non-empty string, got ""',
      '<dir>/flow.yaml:9:9: pipeline[1].step.options.tims: unknown field "tims"; did you mean "times"?',
    ]);
  });
});

Deno.test("a step's needs are checked like a built-in stage's", async () => {
  await withDir({
    "flow.yaml": flowText("./steps/suffix.ts", "{ suffix: '!' }", ""),
    "steps/suffix.ts": STEP,
  }, async (dir) => {
    assert.match(
      await loadError(dir),
      /flow\.yaml:4:5: pipeline\[0\]\.step: suffix needs valid items; add a stage that provides it/,
    );
  });
});

Deno.test("a flow built in code is told to register its stage instead", () => {
  assert.throws(
    () =>
      defineFlow({
        name: "code",
        sources: { a: { kind: "generator", count: 1 } },
        pipeline: [{ step: { module: "./x.ts" } }],
      }, builtinRegistry()),
    /pipeline\[0\]\.step\.module: step modules are imported by loadFlow/,
  );
});

Deno.test("a step module edited since it was loaded is loaded anew, and a broken edit refused", async () => {
  // What `run --watch` does when the flow file is saved: load the flow again.
  await withDir({ "steps/suffix.ts": STEP }, async (dir) => {
    const yaml = flowText("./steps/suffix.ts");
    const titles = async () =>
      (await runTestFlow(yaml, {
        baseDir: dir,
        items: [{ title: "Hi", url: "https://a.example/" }],
      }))
        .published.get("out")!.map((i) => i.payload.title);
    assert.deepEqual(await titles(), ["Hi!"]);
    const edited = join(dir, "steps/suffix.ts");
    const later = async (text: string, seconds: number) => {
      await Deno.writeTextFile(edited, text);
      const at = new Date(Date.now() + seconds * 1000);
      await Deno.utime(edited, at, at);
    };
    await later(STEP.replace("item.payload.title + c.suffix", "c.suffix + item.payload.title"), 2);
    // Before: the first import stayed, edits or not, for the life of the process.
    assert.deepEqual(await titles(), ["!Hi"]);
    await later(STEP.replace("summary:", "summary: ,"), 4);
    await Deno.writeTextFile(join(dir, "flow.yaml"), yaml);
    assert.match(
      await loadError(dir),
      /cannot import step module \.\/steps\/suffix\.ts: SyntaxError: .* \(at <dir>\/steps\/suffix\.ts:\d+:\d+\)$/,
    );
  });
});

Deno.test("a step module that throws as it loads says where; one named like a built-in is refused", async () => {
  await withDir({
    "flow.yaml": flowText("./steps/toplevel.ts"),
    "steps/toplevel.ts":
      "const config: { x?: { y: number } } = {};\nexport const y = config.x!.y;\n",
  }, async (dir) => {
    // Before: the message alone, with no file:line.
    assert.match(
      await loadError(dir),
      /cannot import step module \.\/steps\/toplevel\.ts: Cannot read properties .* \(at <dir>\/steps\/toplevel\.ts:2:\d+\)$/,
    );
  });
  await withDir({
    "flow.yaml": flowText("./steps/mine.ts"),
    "steps/mine.ts": STEP.replace('summary: "adds', 'kind: "dedupe",\n  summary: "adds'),
  }, async (dir) => {
    // Before: it took the name, and the real dedupe of the flow became dedupe#2.
    assert.equal(
      await loadError(dir),
      '<dir>/flow.yaml:6:15: pipeline[1].step.module: step module ./steps/mine.ts names its kind "dedupe", a built-in stage\'s: give it a kind of its own (kind: "my-dedupe")',
    );
  });
});

Deno.test("a step module that does not import says where in its own file, whatever the terminal", async () => {
  const cases: [string, RegExp][] = [
    // Before: no file:line whenever colour was on (Deno colours the "at" line of its message).
    [
      'import { x } from "./nohelper.ts";\nexport default x;\n',
      /: Module not found "<dir>\/steps\/nohelper\.ts"\. \(at <dir>\/steps\/mod\.ts:1:19\)$/,
    ],
    // Before: the import's own version (?v=) in the module's URL, and no file:line.
    [
      'import { parse } from "@std/csv";\nexport default parse;\n',
      /: Import "@std\/csv" not a dependency and not in import map from "<dir>\/steps\/mod\.ts" \(at <dir>\/steps\/mod\.ts:1:23\)$/,
    ],
    // Before: "(at config/step_modules.ts:…)", millrace's own line that imported it.
    [
      'import { nope } from "./helper.ts";\nexport default nope;\n',
      /: The requested module '\.\/helper\.ts' does not provide an export named 'nope' at <dir>\/steps\/mod\.ts:1:10$/,
    ],
    // Before: no file:line, the first frame being JSON.parse's.
    [
      'export const settings = JSON.parse("{not json");\n',
      /: Expected property name .* \(at .*steps\/mod\.ts:1:30\)$/,
    ],
  ];
  for (const [text, message] of cases) {
    await withDir({
      "flow.yaml": flowText("./steps/mod.ts"),
      "steps/mod.ts": text,
      "steps/helper.ts": "export const yes = 1;\n",
    }, async (dir) => {
      const error = await loadError(dir);
      assert.match(
        error,
        /flow\.yaml:6:15: pipeline\[1\]\.step\.module: cannot import step module \.\/steps\/mod\.ts: /,
      );
      assert.match(error, message);
      assert.doesNotMatch(error, /step_modules\.ts|\?v=|\[3\dm/);
    });
  }
});

Deno.test("a step's TypeError in a folder whose path has a space names the step's line, not millrace's", async () => {
  // Deno writes such a frame's path decoded (sp ace/é), which the frame's pattern did not take:
  // the next frame's file, engine/accounted.ts, was named instead.
  await withDir({
    "sp ace/é/typeerr.ts": `
import { z } from "zod";
export default {
  schema: z.strictObject({}),
  create: () => ({
    handle(batch, out) {
      for (const item of batch) {
        const missing: any = undefined;
        missing.boom();
        out.emit(item);
      }
    },
  }),
};
`,
  }, async (dir) => {
    const { deadLetters } = await runTestFlow(flowText('"./sp ace/é/typeerr.ts"', "{}"), {
      baseDir: dir,
      items: [{ title: "Hello there", url: "https://example.com/a" }],
    });
    assert.equal(deadLetters.length, 1);
    assert.match(
      deadLetters[0].reason.replaceAll(dir, "<dir>"),
      /reading 'boom'\) \(at <dir>\/sp ace\/é\/typeerr\.ts:9:17\)$/,
    );
  });
});

Deno.test("a step module that does not import is located by its path as typed, not a percent-encoded URL", async () => {
  // Before: (at /tmp/…/sp%20ace/%C3%A9/mod.ts:1:19), a path that cannot be opened as typed.
  await withDir({
    "flow.yaml": flowText('"./sp ace/é/mod.ts"'),
    "sp ace/é/mod.ts": 'import { x } from "./nohelper.ts";\nexport default x;\n',
  }, async (dir) => {
    const error = await loadError(dir);
    assert.match(error, /\(at <dir>\/sp ace\/é\/mod\.ts:1:19\)$/);
    assert.doesNotMatch(error, /%20|%C3/);
  });
});

Deno.test("a window a step's module makes that no window can be is an error at the module's line", async () => {
  // Each passed `check`; the first three then failed the run at its start with a stack, and a
  // maxWait of "2s" was NaN to a timer, so every batch went out at once.
  const cases: [string, RegExp][] = [
    ["() => ({ size: 0 })", /its window\(options\) gave size: expected a positive integer, got 0 /],
    ['() => ({ size: "10" })', /its window\(options\) gave size: expected a number, got "10"/],
    [
      "() => ({ siz: 10 })",
      /its window\(options\) gave siz: unknown field "siz"; did you mean "size"\?/,
    ],
    ['() => ({ size: 10, maxWait: "2s" })', /gave maxWait: expected a number, got "2s"/],
    ['() => { throw new Error("no") }', /its window\(options\) threw: no/],
  ];
  for (const [window, message] of cases) {
    await withDir({
      "flow.yaml": flowText("./steps/window.ts", "{}"),
      "steps/window.ts": `
import { z } from "zod";
export default { summary: "x", schema: z.strictObject({}), window: ${window}, create: () => ({ handle() {} }) };
`,
    }, async (dir) => {
      const error = await loadError(dir);
      assert.match(error, /flow\.yaml:6:15: pipeline\[1\]\.step\.module: /, window);
      assert.match(error, message, window);
    });
  }
});

Deno.test("a step's needs or window given as a value, not a function, is an error at the module's line", async () => {
  const stage = (extra: string) => `
import { z } from "zod";
export default { summary: "x", schema: z.strictObject({}), ${extra}, create: () => ({ handle() {} }) };
`;
  await withDir({
    "flow.yaml": flowText("./steps/needs.ts", "{}"),
    "steps/needs.ts": stage(`needs: ["valid"]`),
  }, async (dir) => {
    assert.match(
      await loadError(dir),
      /flow\.yaml:6:15: pipeline\[1\]\.step\.module: .*its needs must be a function of its options returning facts, such as needs: \(\) => \["valid"\]$/,
    );
  });
  await withDir({
    "flow.yaml": flowText("./steps/window.ts", "{}"),
    "steps/window.ts": stage(`window: { size: 10 }`),
  }, async (dir) => {
    assert.match(
      await loadError(dir),
      /flow\.yaml:6:15: .*its window must be a function of its options, such as window: \(\) => \(\{ size: 10 \}\)$/,
    );
  });
  await withDir({
    "flow.yaml": flowText("./steps/adds.ts", "{}"),
    "steps/adds.ts": stage(`adds: "enriched"`),
  }, async (dir) => {
    assert.match(await loadError(dir), /flow\.yaml:6:15: .*its adds must be a list of facts/);
  });
});

/** A step that makes two items of each input whose title says "two", with `ids` for them. */
const SPLIT = (ids: string) => `
import { z } from "zod";
import { itemId } from "${new URL("../../mod.ts", import.meta.url).href}";
export default {
  summary: "splits", schema: z.strictObject({}),
  create: () => ({
    handle(batch, out) {
      for (const item of batch) {
        if (item.payload.title === "forget me") continue;
        if (!item.payload.title.includes("two")) { out.emit(item); continue; }
        for (const part of ["left", "right"]) {
          const payload = { ...item.payload, url: item.payload.url + "/" + part, title: part };
          out.emit({ ...item, ${ids}, payload });
        }
      }
    },
  }),
};
`;

Deno.test("a step may emit several items for one input, each under its own id; two under one id dead-letter the input", async () => {
  const items = [
    { title: "one item", url: "https://example.com/1" },
    { title: "two items", url: "https://example.com/2" },
  ];
  await withDir({ "steps/split.ts": SPLIT("id: itemId(payload)") }, async (dir) => {
    const { published, deadLetters } = await runTestFlow(flowText("./steps/split.ts", "{}"), {
      baseDir: dir,
      items,
    });
    assert.deepEqual(published.get("out")!.map((i) => i.payload.title), [
      "one item",
      "left",
      "right",
    ]);
    assert.deepEqual(deadLetters, []);
  });
  // Sinks keep one item per id: the second would have been lost, or taken the first's place.
  await withDir({ "steps/split.ts": SPLIT("id: item.id") }, async (dir) => {
    const { published, deadLetters, report } = await runTestFlow(
      flowText("./steps/split.ts", "{}"),
      { baseDir: dir, items },
    );
    assert.deepEqual(published.get("out")!.map((i) => i.payload.title), ["one item"]);
    assert.deepEqual(deadLetters.map((l) => [l.stage, (l.item.payload as RawItem).title]), [
      ["split", "two items"],
    ]);
    assert.match(
      deadLetters[0].reason,
      /^failed: emitted 2 items with the id [0-9a-f]{32} for one input: give each its own id, such as \{ \.\.\.item, id: itemId\(payload\), payload \}/,
    );
    assert.equal(report.stages[1].failed, 1);
  });
});

/** A step that passes each input on, adds one item of its own (`envelope`), and forgets "forget me". */
const DIGEST = `
import { z } from "zod";
import { envelope } from "${new URL("../../mod.ts", import.meta.url).href}";
export default {
  summary: "adds a digest", schema: z.strictObject({}),
  create: () => ({
    handle(batch, out) {
      for (const item of batch) if (item.payload.title !== "forget me") out.emit(item);
      out.emit(envelope({ title: "digest", url: "https://example.com/digest" }, "digest"));
    },
  }),
};
`;

Deno.test("an item a step forgets is counted and said, though the step made an item of its own", async () => {
  // An item made with envelope() traces to no input; the inputs still must each be accounted for.
  await withDir({ "steps/digest.ts": DIGEST }, async (dir) => {
    const { published, report, logs } = await runTestFlow(flowText("./steps/digest.ts", "{}"), {
      baseDir: dir,
      items: [
        { title: "keep me", url: "https://example.com/1" },
        { title: "forget me", url: "https://example.com/2" },
      ],
    });
    assert.deepEqual(published.get("out")!.map((i) => i.payload.title).sort(), [
      "digest",
      "keep me",
    ]);
    const digest = report.stages[1];
    assert.deepEqual([digest.received, digest.emitted], [2, 2]);
    assert.deepEqual(digest.dropped, { "not passed on": 1 });
    const said = logs.filter((l) => l.includes("neither emitted, dropped nor rejected"));
    assert.equal(said.length, 1, logs.join("\n"));
    assert.match(said[0], /an item made with envelope\(\) traces to no input/);
  });
});

Deno.test("an item a step forgets is counted and said, though the step made two of another", async () => {
  await withDir({ "steps/split.ts": SPLIT("id: itemId(payload)") }, async (dir) => {
    const { published, report, logs } = await runTestFlow(flowText("./steps/split.ts", "{}"), {
      baseDir: dir,
      items: [
        { title: "two items", url: "https://example.com/2" },
        { title: "forget me", url: "https://example.com/3" },
      ],
    });
    assert.deepEqual(published.get("out")!.map((i) => i.payload.title), ["left", "right"]);
    const split = report.stages[1];
    assert.deepEqual([split.received, split.emitted], [2, 2]);
    assert.deepEqual(split.dropped, { "not passed on": 1 });
    assert.equal(
      logs.filter((l) => l.includes("neither emitted, dropped nor rejected")).length,
      1,
      logs.join("\n"),
    );
  });
});

Deno.test("a step's try given up on at its batchTimeout is not taken for forgetting its items when it ends", async () => {
  // It ended once its signal was aborted, emitting nothing: its inputs were said to be "neither
  // emitted, dropped nor rejected", though the runner had split them and sent the one on.
  const module = `
import { z } from "zod";
export default {
  summary: "waits for its signal on one title", schema: z.strictObject({}),
  create: () => ({
    async handle(batch, out, ctx) {
      if (batch.some((item) => item.payload.title === "hang me")) {
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
        return;
      }
      for (const item of batch) out.emit(item);
    },
  }),
};
`;
  await withDir({ "steps/wait.ts": module }, async (dir) => {
    const { published, deadLetters, logs } = await runTestFlow(
      flowText("./steps/wait.ts", "{}").replace(
        "      options: {}\n",
        "      options: {}\n      batchTimeout: 200ms\n",
      ),
      {
        baseDir: dir,
        items: [
          { title: "one", url: "https://example.com/1" },
          { title: "hang me", url: "https://example.com/2" },
          { title: "three", url: "https://example.com/3" },
        ],
      },
    );
    assert.deepEqual(published.get("out")!.map((i) => i.payload.title).sort(), ["one", "three"]);
    assert.deepEqual(deadLetters.map((l) => (l.item.payload as RawItem).title), ["hang me"]);
    assert.deepEqual(logs.filter((l) => l.includes("neither emitted")), []);
  });
});

Deno.test("a step module whose needs, adds or schema throws is an error at its stage, saying where, not a stack", async () => {
  // Each ended check and run with a stack trace naming no file, line or module, and `check
  // a.yaml b.yaml` never got to b.yaml.
  const stage = (extra: string, schema = "z.strictObject({})") => `
import { z } from "zod";
export default {
  summary: "x",
  schema: ${schema},
  ${extra}
  create: () => ({ handle() {} }),
};
`;
  const cases: [string, string, RegExp][] = [
    [
      stage("needs: (o) => o.x.y,"),
      "needs",
      /flow\.yaml:5:5: pipeline\[1\]\.step: its needs\(options\) threw: Cannot read properties of undefined \(reading 'y'\) \(at \S*steps\/m\.ts:6:21\)/,
    ],
    [
      stage("adds: () => { throw new Error('no facts'); },"),
      "adds",
      /flow\.yaml:5:5: pipeline\[1\]\.step: its adds\(options\) threw: no facts/,
    ],
    [
      stage("", "() => 1"),
      "schema",
      /flow\.yaml:6:15: pipeline\[1\]\.step\.module: its schema could not check the options: .*a step's schema is a zod schema/,
    ],
    [
      stage("", "z.object({}).transform(() => { throw new Error('bad transform'); })"),
      "transform",
      /flow\.yaml:6:15: pipeline\[1\]\.step\.module: its schema could not check the options: bad transform/,
    ],
  ];
  for (const [module, what, said] of cases) {
    await withDir(
      { "flow.yaml": flowText("./steps/m.ts", "{}"), "steps/m.ts": module },
      async (dir) => {
        const error = await loadError(dir);
        assert.match(error, said, `${what}: ${error}`);
        assert.doesNotMatch(error, /\n\s+at /, "no stack");
      },
    );
  }
});
