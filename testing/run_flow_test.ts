/**
 * Runs one case of a flow test: the flow made testable (testing.ts), the
 * case's items through it, and what it published, dropped and
 * dead-lettered compared with what the case expects.
 */
import type { Flow } from "../engine/flow.ts";
import type { Envelope, RawItem } from "../engine/item.ts";
import type { Registry } from "../engine/registry.ts";
import { runTestFlow, testableFlow, testSinkNames } from "../testing.ts";
import { type Difference, differences, listDifferences } from "./expect.ts";
import type { FlowTestCase } from "./test_file.ts";

/** What the flow did with a case's items, in the shape a test file expects it. */
export interface Outcome {
  /** Per sink: each item's payload, with the envelope's `vector` when it has one. */
  published: Record<string, Record<string, unknown>[]>;
  /** Per stage id that dropped anything: counts by reason. */
  dropped: Record<string, Record<string, number>>;
  deadLetters: { stage: string; reason: string; attempts: number; item: unknown }[];
}

export interface CaseResult {
  outcome: Outcome;
  /** Empty when the case passed. */
  differences: Difference[];
  durationMs: number;
}

/** Longest a case may run: its flow reads a fixed list, so it ends unless a stage hangs. */
const CASE_TIMEOUT_MS = 60_000;

/** Runs `testCase` through `flow` and compares. `registry` must know `memory` and `collect`. */
export async function runFlowTestCase(
  flow: Flow,
  testCase: FlowTestCase,
  registry: Registry,
): Promise<CaseResult> {
  const started = performance.now();
  const signal = AbortSignal.timeout(CASE_TIMEOUT_MS);
  const run = await runTestFlow(testableFlow(flow, testCase.input), { registry, signal });
  const outcome: Outcome = {
    published: Object.fromEntries(
      testSinkNames(flow).map((name) => [name, (run.published.get(name) ?? []).map(view)]),
    ),
    dropped: Object.fromEntries(
      run.report.stages.filter((s) => Object.keys(s.dropped).length > 0)
        .map((s) => [s.id, s.dropped]),
    ),
    deadLetters: run.deadLetters.map((d) => ({
      stage: d.stage,
      reason: d.reason,
      attempts: d.attempts,
      item: d.item.payload,
    })),
  };
  const found = compare(testCase.expect, outcome);
  if (signal.aborted) {
    found.unshift({ path: [], note: `stopped after ${CASE_TIMEOUT_MS / 1000}s: did not finish` });
  }
  return { outcome, differences: found, durationMs: performance.now() - started };
}

/** Compares each part; a part the case leaves out expects nothing. */
export function compare(expect: FlowTestCase["expect"], outcome: Outcome): Difference[] {
  const found: Difference[] = [];
  const { published } = expect;
  if (typeof published === "string") {
    found.push(...differences(published, outcome.published, {}, ["published"]));
  } else {
    for (const [name, items] of Object.entries(outcome.published)) {
      const want = published?.[name] ?? [];
      found.push(
        ...(typeof want === "string"
          ? differences(want, items, {}, ["published", name])
          : listDifferences(want, items, ["published", name])),
      );
    }
  }
  found.push(
    ...differences(expect.dropped ?? {}, withZeros(expect.dropped, outcome.dropped), {
      exact: true,
    }, ["dropped"]),
  );
  const dead = expect.deadLetters ?? [];
  found.push(
    ...(typeof dead === "string"
      ? differences(dead, outcome.deadLetters, {}, ["deadLetters"])
      : listDifferences(dead, outcome.deadLetters, ["deadLetters"])),
  );
  return found;
}

/**
 * What the stages dropped, with a 0 written in for each count the case
 * expects to be 0 and the report leaves out (it lists only what a stage
 * dropped): `{dedupe: {duplicate: 0}}` then says "none", and a failing case
 * still shows the expected 0 beside what was dropped. A stage expected to
 * drop `{}` is written in as `{}` too: it said "missing" of a stage that
 * dropped nothing, as asked.
 */
function withZeros(
  expected: FlowTestCase["expect"]["dropped"],
  actual: Outcome["dropped"],
): Outcome["dropped"] {
  if (typeof expected !== "object" || expected === null) return actual;
  const out: Outcome["dropped"] = { ...actual };
  for (const [stage, reasons] of Object.entries(expected)) {
    if (typeof reasons !== "object" || reasons === null) continue;
    if (Object.keys(reasons).length === 0) out[stage] ??= {};
    for (const [reason, n] of Object.entries(reasons)) {
      if (n === 0 && out[stage]?.[reason] === undefined) {
        out[stage] = { ...out[stage], [reason]: 0 };
      }
    }
  }
  return out;
}

function view(item: Envelope<RawItem>): Record<string, unknown> {
  return item.vector ? { ...item.payload, vector: item.vector } : { ...item.payload };
}
