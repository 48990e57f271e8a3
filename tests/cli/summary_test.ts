import assert from "node:assert/strict";
import { fitWidth, formatReport, formatTable } from "../../cli/summary.ts";

Deno.test("fitWidth cuts each line to one less than the terminal width, marking the cut", () => {
  const text = "short\n" + "x".repeat(110) + "\n" + "y".repeat(79);
  const fitted = fitWidth(text, 80).split("\n");
  assert.deepEqual(fitted.map((l) => l.length), [5, 79, 79]);
  assert.equal(fitted[1], "x".repeat(78) + "…");
  assert.equal(fitted[2], "y".repeat(79), "a line that fits is left alone");
});

Deno.test("a live table with a long why column fits an 80-column terminal row for row", () => {
  const stage = {
    id: "validate",
    kind: "validate",
    received: 11500,
    emitted: 11050,
    dropped: {},
    rejected: { "missing title": 90, "missing url": 90, "bad url": 90, "bad title": 90, spam: 90 },
    failed: 0,
    retries: 0,
    batches: 1,
    busyMs: 1,
  };
  const table = formatTable([], [stage], 1000);
  assert.ok(table.split("\n").some((l) => l.length > 80), "the table is wider than 80");
  const fitted = fitWidth(table, 80);
  assert.equal(fitted.split("\n").length, table.split("\n").length);
  assert.ok(fitted.split("\n").every((l) => l.length < 80));
});

Deno.test("a stage's own reason or usage name holding a newline stays on its row", () => {
  // Before: the row went on at the start of the next line, under the table's first column.
  const stage = {
    id: "mine",
    kind: "step",
    received: 3,
    emitted: 1,
    dropped: { "too\nlong": 1 },
    rejected: { "bad\r\nitem": 1 },
    usage: { 'odd "name"\nnewline': 2 },
    failed: 0,
    retries: 0,
    batches: 1,
    busyMs: 1,
  };
  const table = formatTable([], [stage], 1000);
  assert.equal(table.split("\n").length, 2, table);
  assert.match(table, /1 too long, 1 bad item, 2 odd "name" newline$/);
});

Deno.test("the summary's first line counts one dead letter in the singular", () => {
  const report = (deadLettered: number) => ({
    flow: "tiny",
    durationMs: 1500,
    stopped: false,
    sources: [],
    stages: [],
    published: 3,
    deadLettered,
    killed: false,
    inFlight: 0,
  });
  assert.equal(
    formatReport(report(1)).split("\n")[0],
    "tiny: finished in 1.50s: 3 published, 1 dead letter",
  );
  assert.match(formatReport(report(2)).split("\n")[0], /, 2 dead letters$/);
  // A long opening (a start check waiting out a 429) is said; the run's own time leaves it out.
  assert.equal(
    formatReport({ ...report(0), openMs: 6410 }).split("\n")[0],
    "tiny: finished in 1.50s (after 6.41s opening its stages and sinks): 3 published, 0 dead letters",
  );
  assert.equal(formatReport({ ...report(0), openMs: 300 }).split("\n")[0].includes("after"), false);
  // A source whose read failed makes the exit code 1: "finished" alone read as a success.
  const source = { name: "f", kind: "rss", emitted: 0, reads: 1, errors: 1, deadLettered: 0 };
  assert.equal(
    formatReport({ ...report(0), sources: [source] }).split("\n")[0],
    "tiny: finished with 1 failed source read in 1.50s: 3 published, 0 dead letters",
  );
});

Deno.test("a source's line counts the items dead-lettered before any stage, and says why", () => {
  const source = { name: "feed", kind: "custom", emitted: 6, reads: 1, errors: 0, deadLettered: 2 };
  const [, line] = formatTable([source], [], 1000).split("\n");
  assert.deepEqual(line.split(/\s{2,}/), [
    "source feed",
    "6",
    "2",
    "6",
    "custom, 2 cannot be passed on through Redis",
  ]);
  const [, plain] = formatTable([{ ...source, deadLettered: undefined }], [], 1000).split("\n");
  assert.deepEqual(plain.split(/\s{2,}/), ["source feed", "6", "6", "custom"]);
});

Deno.test("merge updates that went to dead letters are said apart from the items that did", () => {
  const publish = {
    id: "publish",
    kind: "publish",
    received: 5,
    emitted: 0,
    dropped: {},
    rejected: {},
    failed: 10,
    failedUpdates: 5,
    retries: 3,
    batches: 0,
    busyMs: 1,
  };
  const [, line] = formatTable([], [publish], 1000).split("\n");
  // "in 5, dead 10" reads as a miscount unless the why says what the other 5 were.
  assert.match(line, /\s5\s+0\s+0\s+10\s.*5 failed, 5 merge updates failed, 3 retries$/);
});
