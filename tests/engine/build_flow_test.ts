import assert from "node:assert/strict";
import { join } from "node:path";
import { z } from "zod";
import { builtinRegistry } from "../../builtins.ts";
import { defineFlow } from "../../config/define_flow.ts";
import { parseFlow } from "../../config/load_flow.ts";
import { buildFlow, FlowStartError } from "../../engine/build_flow.ts";
import type { Flow } from "../../engine/flow.ts";
import { createLogger, memoryLogger } from "../../engine/log.ts";
import type { Registry } from "../../engine/registry.ts";

/** The FlowStartError building `flow` throws. */
async function startError(flow: Flow, registry: Registry): Promise<FlowStartError> {
  const log = memoryLogger();
  const env = {
    flow: flow.name,
    baseDir: flow.baseDir,
    outDir: flow.outDir,
    log,
    registry,
    vectors: {},
  };
  try {
    const built = await buildFlow(flow, registry, env, new AbortController().signal, log);
    await built.close();
  } catch (e) {
    if (e instanceof FlowStartError) return e;
    throw e;
  }
  assert.fail("expected a FlowStartError");
}

const T4 = `name: t4
sources:
  ok: { kind: rss, path: present.xml }
  r:
    kind: rss
    path:
      missing.xml
pipeline:
  - validate
  - publish: [stdout: {}]
`;

Deno.test("a missing source file names the flow file, line and column of the path field", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "present.xml"), "<rss/>");
  const registry = builtinRegistry();
  const flow = parseFlow(T4, "flows/t4.yaml", registry, {}, { baseDir: dir });
  const e = await startError(flow, registry);
  assert.equal(
    e.message,
    `flows/t4.yaml:7:7: sources.r.path: missing.xml: no such file (${join(dir, "missing.xml")})`,
  );
  assert.deepEqual([e.file, e.line, e.column, e.path], ["flows/t4.yaml", 7, 7, "sources.r.path"]);
  assert.equal(e.message.split("\n").length, 1, "one line");
});

Deno.test("a flow built in code says `flow: field: why`, with no line to give", async () => {
  const registry = builtinRegistry();
  const flow = defineFlow(
    {
      name: "t4",
      sources: { r: { kind: "rss", path: "missing.xml" } },
      pipeline: ["validate", { publish: [{ stdout: {} }] }],
    },
    registry,
    { baseDir: await Deno.makeTempDir() },
  );
  const e = await startError(flow, registry);
  assert.match(e.message, /^t4: sources\.r\.path: missing\.xml: no such file \(.*missing\.xml\)$/);
});

/** A registry whose `publish` stage fails to open the way the publisher does: naming itself. */
function failingRegistry(): Registry {
  const registry = builtinRegistry();
  registry.stages.set("publish", {
    kind: "publish",
    summary: "",
    schema: z.unknown(),
    create: () => ({
      handle() {},
      open(ctx: { flow: string; stage: string }) {
        throw new Error(
          `${ctx.flow}/${ctx.stage}: cannot open sink postgres (postgres sink: refused)`,
        );
      },
    }),
  });
  return registry;
}

Deno.test("a stage that fails to open is named once, at its place in the flow file", async () => {
  const registry = failingRegistry();
  const text = "name: rvpg\nsources:\n  g: { kind: generator, count: 1 }\n" +
    "pipeline:\n  - validate\n  - publish: [stdout: {}]\n";
  const e = await startError(parseFlow(text, "flows/rvpg.yaml", registry, {}), registry);
  assert.equal(
    e.message,
    "flows/rvpg.yaml:6:5: pipeline[1].publish: cannot open sink postgres (postgres sink: refused)",
  );
  const inCode = defineFlow({
    name: "rvpg",
    sources: { g: { kind: "generator", count: 1 } },
    pipeline: ["validate", { publish: [{ stdout: {} }] }],
  }, registry);
  assert.equal(
    (await startError(inCode, registry)).message,
    "rvpg: stage publish: cannot open sink postgres (postgres sink: refused)",
  );
});

Deno.test("a stage whose create returns no actor, or one without handle, fails at start at its line", async () => {
  // A step module is not type-checked: a misspelt handle dead-lettered every item at run time
  // ("work.actor.handle is not a function"), a missing return said "reading 'open'".
  for (
    const [made, said] of [
      [undefined, "returned undefined, not an actor"],
      [{ handel() {} }, "returned an actor with no handle\\(batch, out\\) function"],
    ] as const
  ) {
    const registry = builtinRegistry().stage({
      kind: "mine",
      summary: "",
      schema: z.object({}),
      create: () => made as never,
    });
    const text = "name: odd\nsources:\n  g: { kind: generator, count: 1 }\n" +
      "pipeline:\n  - mine: {}\n  - publish: [stdout: {}]\n";
    const e = await startError(parseFlow(text, "flows/odd.yaml", registry, {}), registry);
    assert.match(
      e.message,
      new RegExp(`^flows/odd\\.yaml:5:5: pipeline\\[0\\]\\.mine: its create\\(\\) ${said}`),
    );
  }
});

Deno.test("what a stage's create hands its clients logs under the stage's name, as its own lines do", async () => {
  // The embed stage's API client was made with the run's logger: its retry warnings, in JSON,
  // had no `stage` field for a log store to filter on.
  const lines: string[] = [];
  const log = createLogger("json", { out: (_level, line) => lines.push(line) });
  const registry = builtinRegistry().stage({
    kind: "talker",
    summary: "",
    schema: z.object({}),
    create: (_config, env) => {
      env.log.warn("a client's retry");
      return { handle() {} };
    },
  });
  const flow = parseFlow(
    "name: talk\nsources:\n  g: { kind: generator, count: 1 }\npipeline:\n  - talker: {}\n" +
      "  - publish: [stdout: {}]\n",
    "flows/talk.yaml",
    registry,
    {},
  );
  const env = { flow: flow.name, baseDir: ".", outDir: ".", log, registry, vectors: {} };
  const built = await buildFlow(flow, registry, env, new AbortController().signal, log);
  await built.close();
  const said = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "a client's retry");
  assert.equal(said?.stage, "talker", lines.join("\n"));
});

Deno.test("a stage of the user's own gets a batch timeout of 5 min unless it sets one; a built-in none", async () => {
  // A step that never returned held its batch, and the run, for ever without a word.
  const registry = builtinRegistry().stage({
    kind: "mine",
    summary: "passes items on",
    schema: z.strictObject({}),
    create: () => ({ handle: (batch, out) => batch.forEach((item) => out.emit(item)) }),
  });
  const flow = defineFlow({
    name: "timeouts",
    sources: { g: { kind: "generator", count: 1 } },
    pipeline: [
      "validate",
      { mine: {} },
      { mine: { id: "patient", batchTimeout: "1h" } },
      { mine: { id: "unbounded", batchTimeout: "0s" } },
      { enrich: { steps: ["domain"], batchTimeout: 2_000 } },
      { enrich: { steps: ["domain"], workers: 1 } },
    ],
  }, registry);
  const log = memoryLogger();
  const env = { flow: flow.name, baseDir: ".", outDir: ".", log, registry, vectors: {} };
  const built = await buildFlow(flow, registry, env, new AbortController().signal, log);
  try {
    assert.deepEqual(built.stages.map((s) => [s.id, s.batchTimeout]), [
      ["validate", undefined],
      ["mine", 5 * 60_000],
      ["patient", 3_600_000],
      ["unbounded", undefined],
      ["enrich", 2_000],
      ["enrich#2", undefined],
    ]);
  } finally {
    await built.close();
  }
});

Deno.test("batchTimeout on a stage on workers is refused at its line: a worker cannot be stopped mid-batch", () => {
  // A try given up on held its worker, and the retries and halves queued behind it timed out
  // in turn: good items went to dead letters.
  assert.throws(
    () =>
      parseFlow(
        "name: t\nsources:\n  g: { kind: generator }\npipeline:\n  - validate\n" +
          "  - enrich: { steps: [domain], workers: 1, batchTimeout: 2s }\n",
        "flows/t.yaml",
        builtinRegistry(),
        {},
      ),
    /flows\/t\.yaml:6:\d+: pipeline\[1\]\.enrich\.batchTimeout: batchTimeout does not apply to a stage on workers/,
  );
});
