import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { haveScript, inTerminal } from "./_terminal.ts";
import { drawsTable, liveTable } from "../../cli/progress.ts";
import { StageStats } from "../../engine/stats.ts";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

const ESC = "\x1b";
/** The cursor moved up n lines: what the live table's redraw starts with. */
const UP = new RegExp(`${ESC}\\[\\d*A`);

/**
 * What a terminal shows at the end of `output`: lines, with the live table's
 * own moves played (carriage return, cursor up `ESC[nA`, erase below `ESC[J`).
 */
function screen(output: string): string[] {
  const lines: string[] = [""];
  let row = 0;
  const parts = output.split(new RegExp(`(${UP.source}|${ESC}\\[J|\r?\n|\r)`));
  for (const part of parts) {
    if (part === "\n" || part === "\r\n") {
      row++;
      if (row === lines.length) lines.push("");
    } else if (part === "\r") continue;
    else if (new RegExp(`^${UP.source}$`).test(part)) {
      row = Math.max(0, row - Number(part.slice(2, -1) || 1));
    } else if (part === "\x1b[J") lines.length = row + 1, lines[row] = "";
    else lines[row] += part;
  }
  return lines;
}

async function writeFlow(dir: string, pipeline: string[]): Promise<string> {
  const path = join(dir, "flow.yaml");
  await Deno.writeTextFile(
    path,
    [
      "name: shown",
      `output: ${join(dir, "out")}`,
      "sources:",
      "  gen: { kind: generator, count: 20, seed: 1, invalid: 0, duplicates: 0, nearDuplicates: 0 }",
      "pipeline:",
      ...pipeline,
      "",
    ].join("\n"),
  );
  return path;
}

Deno.test({
  name: "items a stdout sink prints to the terminal are all there: no live table draws over them",
  ignore: !haveScript,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "millrace-progress-" });
    const flow = await writeFlow(dir, [
      "  - validate: {}",
      "  - publish: [ { stdout: { fields: [title] } } ]",
    ]);
    const { code, text } = await inTerminal(`"${Deno.execPath()}" task run "${flow}"`, {
      cwd: ROOT,
    }).done;
    assert.equal(code, 0, text);
    // Before: the table's redraw moved up over the lines printed meanwhile; 16 of 20 were left.
    const shown = screen(text).filter((l) => l.startsWith('{"id":'));
    assert.equal(shown.length, 20, text);
    assert.match(text, /shown: finished in .*: 20 published/);
  },
});

Deno.test({
  name: "items a stdout sink prints through a pipe to the terminal are all there too (| cat)",
  ignore: !haveScript,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "millrace-progress-" });
    const flow = await writeFlow(dir, [
      "  - validate: {}",
      "  - publish: [ { stdout: { fields: [title] } } ]",
    ]);
    // stdout is a pipe, whose other end (cat) writes to the terminal the table is drawn on.
    const { code, text } = await inTerminal(`"${Deno.execPath()}" task run "${flow}" | cat`, {
      cwd: ROOT,
    }).done;
    assert.equal(code, 0, text);
    // Before: the table was drawn on stderr, and its redraws moved up over the last item lines.
    assert.doesNotMatch(text, UP, "no live table");
    const shown = screen(text).filter((l) => l.startsWith('{"id":'));
    assert.equal(shown.length, 20, text);
  },
});

Deno.test("the live table is drawn on a terminal unless a stdout sink's items reach it, or a pipe", () => {
  const on = { text: true, stderr: true, stdout: "terminal", printsItems: false } as const;
  assert.equal(drawsTable(on), true);
  assert.equal(drawsTable({ ...on, printsItems: true }), false);
  assert.equal(drawsTable({ ...on, printsItems: true, stdout: "pipe" }), false);
  assert.equal(drawsTable({ ...on, printsItems: true, stdout: "file" }), true);
  assert.equal(
    drawsTable({ ...on, stdout: "pipe" }),
    true,
    "no items on stdout: nothing drawn over",
  );
  assert.equal(drawsTable({ ...on, stderr: false }), false);
  assert.equal(drawsTable({ ...on, text: false }), false);
});

Deno.test({
  name: "what a step prints with console.log stays on screen above the live table",
  ignore: !haveScript,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "millrace-progress-" });
    await Deno.writeTextFile(
      join(dir, "noisy.ts"),
      [
        'import { z } from "zod";',
        "export default {",
        "  kind: 'noisy',",
        "  summary: 'prints what it saw',",
        "  schema: z.strictObject({}),",
        "  create: () => ({",
        "    async handle(batch: { id: string }[], out: { emit(i: unknown): void }) {",
        "      await new Promise((r) => setTimeout(r, 400)); // the table draws meanwhile",
        "      console.log(`noisy saw ${batch.length} items`);",
        "      for (const item of batch) out.emit(item);",
        "    },",
        "  }),",
        "};",
        "",
      ].join("\n"),
    );
    const flow = await writeFlow(dir, [
      "  - step: { module: ./noisy.ts }",
      "  - publish: [ { jsonl: { path: items.jsonl } } ]",
    ]);
    const { code, text } = await inTerminal(`"${Deno.execPath()}" task run "${flow}"`, {
      cwd: ROOT,
    }).done;
    assert.equal(code, 0, text);
    assert.match(text, UP, "the live table was drawn");
    const said = screen(text).filter((l) => l.startsWith("noisy saw"));
    assert.ok(said.length >= 1, text);
  },
});

Deno.test("the live table of several flows keeps a flow's name once the others have finished", () => {
  const running = (name: string) => {
    const stage = new StageStats("validate", "validate");
    stage.received = stage.emitted = 10;
    return { flow: { name }, sources: [], stages: [stage], startedAt: 0 } as unknown as Parameters<
      typeof liveTable
    >[0][number];
  };
  const both = liveTable([running("alpha"), running("gamma")], true, 1000).split("\n");
  assert.ok(both.includes("alpha") && both.includes("gamma"), both.join("\n"));
  // alpha has finished: gamma's table alone, still under its name.
  const left = liveTable([running("gamma")], true, 1000).split("\n");
  assert.equal(left[0], "gamma");
  assert.match(left[1], /^stage\s+in\s+out/);
  // One flow in the process: its table alone, no heading.
  assert.match(liveTable([running("solo")], false, 1000).split("\n")[0], /^stage\s+in\s+out/);
});
