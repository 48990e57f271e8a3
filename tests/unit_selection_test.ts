/**
 * `deno task test:unit` runs the tests that need no service and no
 * subprocess: the files its task line in deno.json names, one by one (a
 * new test joins only when listed; `deno test --ignore` is not honoured
 * beside directories given). It runs without --allow-run, but a test that probes for
 * redis-server would then be ignored quietly rather than fail, so this test
 * (part of the selection) reads the task line and fails naming any selected
 * file that starts a process or a server, directly or through the test
 * helpers it imports.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
/** What a test that needs a service or a subprocess holds or imports. */
const NEEDS_MORE = /Deno\.Command|_redis_server\.ts|_postgres\.ts/;

function unitFiles(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json")));
  const words = String(config.tasks["test:unit"]).split(/\s+/);
  return words.filter((w) => w.startsWith("tests/")).map((w) => resolve(ROOT, w));
}

/** The first file in `file`'s closure of relative imports under tests/ that needs more. */
function needsMore(file: string, seen = new Set<string>()): string | undefined {
  if (seen.has(file) || !file.startsWith(join(ROOT, "tests"))) return undefined;
  seen.add(file);
  const text = Deno.readTextFileSync(file);
  if (NEEDS_MORE.test(text)) return file;
  // Import statements only: a line that starts one, or ends a multi-line one (`} from "…"`),
  // not an import written in a string a test makes a module of.
  for (
    const [, spec] of text.matchAll(/^(?:import|export|\})[^\n]*\bfrom\s+"(\.{1,2}\/[^"]+)"/gm)
  ) {
    const found = needsMore(resolve(dirname(file), spec), seen);
    if (found) return found;
  }
  return undefined;
}

Deno.test("test:unit selects no test that starts redis-server, Postgres or a subprocess", () => {
  const selected = unitFiles();
  for (const f of selected) {
    assert.ok(Deno.statSync(f).isFile, `${relative(ROOT, f)} is not a file`);
  }
  assert.ok(selected.length > 20, `only ${selected.length} files selected`);
  const offenders = selected.flatMap((f) => {
    const via = needsMore(f);
    return via ? [`${relative(ROOT, f)} (via ${relative(ROOT, via)})`] : [];
  });
  assert.deepEqual(offenders, [], "take them out of test:unit in deno.json");
});
