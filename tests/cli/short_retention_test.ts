import assert from "node:assert/strict";
import { builtinRegistry } from "../../builtins.ts";
import { parseFlow } from "../../config/load_flow.ts";
import { duration, shortRetentions } from "../../cli/short_retention.ts";

/** A flow of a dedupe block and a publish stage's retention, as a flow file writes them. */
const flowWith = (dedupe: string, retention: string) =>
  parseFlow(
    `name: ret
sources:
  news: { kind: generator, count: 10, seed: 1 }
pipeline:
  - validate
  - dedupe: ${dedupe}
  - publish:
      sinks:
        - jsonl: { path: items.jsonl }
${retention}
`,
    "ret.yaml",
    builtinRegistry(),
    {},
  );

Deno.test("a retention shorter than a merging dedupe's ttl is warned of, at the retention's line", () => {
  // The default ttl is a day, and dedupe merges by default.
  const [warning, ...more] = shortRetentions(flowWith("{ key: [url] }", "      retention: 6h"));
  assert.deepEqual(more, []);
  assert.equal(warning.line, 10);
  assert.match(
    warning.message,
    /^pipeline\.publish\.retention \(6h\) is shorter than dedupe's ttl \(1d\): a later copy of a story retention removed goes out as a merge update/,
  );
  assert.match(warning.message, /set dedupe's ttl to 6h or less/);
});

Deno.test("no warning when the ttl fits the retention, dedupe does not merge, or nothing expires", () => {
  assert.deepEqual(shortRetentions(flowWith("{ key: [url], ttl: 6h }", "      retention: 6h")), []);
  assert.deepEqual(
    shortRetentions(flowWith("{ key: [url], merge: false }", "      retention: 6h")),
    [],
  );
  assert.deepEqual(shortRetentions(flowWith("{ key: [url] }", "")), []);
});

Deno.test("durations are said as a flow file writes them", () => {
  assert.deepEqual([86_400_000, 7_200_000, 90_000, 6000, 1500].map(duration), [
    "1d",
    "2h",
    "90s",
    "6s",
    "1500ms",
  ]);
});
