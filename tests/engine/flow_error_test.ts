import assert from "node:assert/strict";
import { FlowError, formatPath, formatProblem } from "../../engine/flow_error.ts";

Deno.test("a problem reads file:line:column: path: message", () => {
  const p = { line: 12, column: 7, path: "pipeline[1].dedupe.ttl", message: "bad" };
  assert.equal(
    formatProblem("flows/demo.yaml", p),
    "flows/demo.yaml:12:7: pipeline[1].dedupe.ttl: bad",
  );
  assert.equal(
    formatProblem("flows/demo.yaml", { path: "", message: "empty" }),
    "flows/demo.yaml: empty",
  );
  assert.equal(formatProblem(undefined, { path: "name", message: "missing" }), "name: missing");
});

Deno.test("paths show indexes in brackets and odd keys quoted", () => {
  assert.equal(
    formatPath(["pipeline", 2, "embed", "batch", "size"]),
    "pipeline[2].embed.batch.size",
  );
  assert.equal(formatPath(["sources", "my feed", "url"]), 'sources["my feed"].url');
  assert.equal(formatPath(["sources", "hacker-news"]), "sources.hacker-news");
  assert.equal(formatPath([]), "");
});

Deno.test("a FlowError lists its problems in file order and takes its place from the first", () => {
  const e = new FlowError("f.yaml", [
    { line: 9, column: 1, path: "b", message: "second" },
    { path: "c", message: "no place" },
    { line: 2, column: 5, path: "a", message: "first" },
  ]);
  assert.equal(e.message, "f.yaml:2:5: a: first\nf.yaml:9:1: b: second\nf.yaml: c: no place");
  assert.deepEqual([e.line, e.column, e.path, e.file], [2, 5, "a", "f.yaml"]);
  assert.equal(e.name, "FlowError");
  assert.ok(e instanceof Error);
});
