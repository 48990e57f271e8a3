import assert from "node:assert/strict";
import { FlowError, parseFlow } from "../../config/load_flow.ts";
import { builtinRegistry } from "../../builtins.ts";

const registry = builtinRegistry();

/** Parses a flow file whose one source block is `source` (line 3). */
const parse = (source: string) =>
  parseFlow(`name: t\nsources:\n${source}pipeline: [validate]\n`, "flows/t.yaml", registry, {});

function errorOf(source: string): string {
  try {
    parse(source);
  } catch (e) {
    if (e instanceof FlowError) return e.message;
    throw e;
  }
  assert.fail("expected a FlowError");
}

Deno.test("cron, tz and jitter are read into the source entry; tz defaults to UTC", () => {
  const flow = parse('  g: { kind: generator, cron: "*/5 * * * *", jitter: 30s }\n');
  assert.equal(flow.sources[0].cron, "*/5 * * * *");
  assert.equal(flow.sources[0].tz, "UTC");
  assert.equal(flow.sources[0].jitter, 30_000);
  assert.equal(flow.sources[0].every, undefined);
  const berlin = parse('  g: { kind: generator, cron: "0 9 * * 1-5", tz: Europe/Berlin }\n');
  assert.equal(berlin.sources[0].tz, "Europe/Berlin");
  assert.equal(berlin.sources[0].jitter, undefined);
  const every = parse("  g: { kind: generator, every: 5m, jitter: 10s }\n");
  assert.equal(every.sources[0].every, 300_000);
  assert.equal(every.sources[0].jitter, 10_000);
});

Deno.test("a bad cron expression names the file, the line and the field, and what is wrong", () => {
  assert.equal(
    errorOf('  g: { kind: generator, cron: "61 * * * *" }\n'),
    'flows/t.yaml:3:31: sources.g.cron: invalid cron expression "61 * * * *": ' +
      "minute 61 is out of range 0-59",
  );
  assert.match(
    errorOf('  g: { kind: generator, cron: "*/5 * *" }\n'),
    /^flows\/t\.yaml:3:31: sources\.g\.cron: expected a cron expression of 5 fields .*got 3 field/,
  );
  assert.match(
    errorOf("  g:\n    kind: generator\n    cron: 5\n"),
    /^flows\/t\.yaml:5:11: sources\.g\.cron: expected a cron expression such as "\*\/5 \* \* \* \*", got 5/,
  );
});

Deno.test("every and cron together, tz without cron, an unknown zone and jitter on a one-shot source are refused", () => {
  assert.equal(
    errorOf('  g: { kind: generator, every: 5m, cron: "* * * * *" }\n'),
    "flows/t.yaml:3:42: sources.g.cron: give every (an interval) or cron (a schedule), not both",
  );
  assert.match(
    errorOf('  g: { kind: generator, cron: "* * * * *", tz: Mars/Base }\n'),
    /^flows\/t\.yaml:3:\d+: sources\.g\.tz: unknown time zone "Mars\/Base"; give an IANA name/,
  );
  assert.match(
    errorOf("  g: { kind: generator, every: 5m, tz: UTC }\n"),
    /sources\.g\.tz: tz applies to cron only/,
  );
  assert.match(
    errorOf("  g: { kind: generator, jitter: 5s }\n"),
    /sources\.g\.jitter: jitter delays polls, and this source is read once/,
  );
  assert.match(
    errorOf('  g: { kind: generator, cron: "* * * * *", jitter: 5 }\n'),
    /sources\.g\.jitter: give a unit, e\.g\. 5s or 5ms/,
  );
});

Deno.test("a misspelt schedule field is suggested", () => {
  assert.match(
    errorOf('  g: { kind: generator, corn: "* * * * *" }\n'),
    /sources\.g\.corn: unknown field "corn"; did you mean "cron"\?/,
  );
});
