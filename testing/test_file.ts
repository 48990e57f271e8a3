/**
 * A flow test file (`demo.test.yaml` beside `demo.yaml`): the flow it tests
 * and its cases, each with input items and what the flow should do with
 * them. Read and checked the way a flow file is: every problem names the
 * file, line and field.
 */
import { basename, dirname, join, resolve } from "node:path";
import { z } from "zod";
import { readFlowDocument } from "../config/flow_document.ts";
import { MAX_FLOW_BYTES } from "../config/load_flow.ts";
import { didYouMean } from "../config/suggest.ts";
import { check, type PathProblem } from "../config/zod_issues.ts";
import type { Flow, Locate } from "../engine/flow.ts";
import { FlowError, formatPath, type Problem } from "../engine/flow_error.ts";
import type { RawItem } from "../engine/item.ts";
import { placeholder } from "./expect.ts";

/** What a case expects; an absent part expects nothing (no item, no drop, no dead letter). */
export interface Expectation {
  /** Items per sink name (`jsonl`, `jsonl#2`), or one placeholder for all. */
  published?: string | Record<string, string | unknown[]>;
  /** Counts per stage id and reason, or one placeholder. */
  dropped?: string | Record<string, string | Record<string, number | string>>;
  /** Dead letters (`{stage, reason, item?}`), in any order, or one placeholder. */
  deadLetters?: string | Record<string, unknown>[];
}

export interface FlowTestCase {
  name: string;
  /** Line of the case in the test file, when known. */
  line?: number;
  /** Items for the flow's first source, or items per source name. */
  input: RawItem[] | Record<string, RawItem[]>;
  expect: Expectation;
}

export interface FlowTestFile {
  file: string;
  /** The flow file under test, resolved against the test file's directory. */
  flowFile: string;
  cases: FlowTestCase[];
  /** Finds a field of the test file, for errors found once the flow is loaded. */
  locate: Locate;
}

const item = z.record(z.string(), z.unknown());
const placeholderText = z.string().describe("a placeholder such as {any}");

const caseSchema = z.strictObject({
  name: z.string().min(1).describe("What the case shows, printed with its result."),
  input: z.union([z.array(item), z.record(z.string(), z.array(item))]).default([])
    .describe("Items for the flow's first source, or a map of source name to items."),
  expect: z.strictObject({
    published: z.union([
      placeholderText,
      z.record(z.string(), z.union([placeholderText, z.array(z.unknown())])),
    ]).optional(),
    dropped: z.union([
      placeholderText,
      z.record(
        z.string(),
        z.union([
          placeholderText,
          z.record(z.string(), z.union([z.int().nonnegative(), placeholderText])),
        ]),
      ),
    ]).optional(),
    deadLetters: z.union([placeholderText, z.array(item)]).optional(),
  }).default({}),
});

const fileSchema = z.strictObject({
  flow: z.string().min(1).optional()
    .describe("The flow file, relative to this file; default: x.yaml for x.test.yaml."),
  cases: z.array(caseSchema).min(1),
});

/** Reads and checks a test file; throws a FlowError naming file:line:field of each problem. */
export async function loadFlowTest(
  file: string,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<FlowTestFile> {
  let text: string;
  try {
    const { size } = await Deno.stat(file);
    if (size > MAX_FLOW_BYTES) throw new Error(`it is ${size} bytes, over ${MAX_FLOW_BYTES}`);
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new FlowError(file, [{ path: "", message: `cannot read the test file: ${e}` }]);
  }
  const doc = readFlowDocument(text, env);
  if (!doc.ok) throw new FlowError(file, doc.problems);
  const value = doc.value as Record<string, unknown> | null;
  if (value && typeof value === "object" && !("cases" in value) && "pipeline" in value) {
    // A flow file given where its test file belongs: one line, not one per field.
    const test = basename(file).replace(/\.ya?ml$/, ".test.yaml");
    throw new FlowError(file, [{
      path: "",
      message: `this is a flow file, not a test file: its tests go in ${test} ` +
        `(cases: [{ name, input, expect }]; see "Testing a flow" in README)`,
    }]);
  }
  const checked = check(fileSchema, doc.value);
  const problems = checked.ok ? [...doc.problems] : [...doc.problems, ...checked.problems];
  // Read from the raw cases, so a placeholder typo is reported with the other problems.
  const raw = (doc.value as { cases?: unknown } | null)?.cases;
  if (Array.isArray(raw)) {
    raw.forEach((c, i) =>
      problems.push(...placeholderProblems(c?.expect ?? null, ["cases", i, "expect"]))
    );
  }
  if (!checked.ok || problems.length > 0) {
    throw new FlowError(file, problems.map((p) => place(p, doc.locate)));
  }
  const { flow, cases } = checked.value;
  const flowFile = flow === undefined
    ? join(dirname(file), basename(file).replace(/\.test\.ya?ml$/, ".yaml"))
    : resolve(dirname(file), flow);
  try {
    await Deno.stat(flowFile);
  } catch {
    const pos = flow === undefined ? undefined : doc.locate(["flow"], "value");
    throw new FlowError(file, [{
      line: pos?.line,
      column: pos?.column,
      path: flow === undefined ? "" : "flow",
      message:
        `no flow file ${JSON.stringify(flow ?? basename(flowFile))} (looked for ${flowFile})` +
        (flow === undefined ? "; name the flow this file tests with flow: x.yaml" : ""),
    }]);
  }
  return {
    file,
    flowFile,
    locate: doc.locate,
    cases: cases.map((c, i) => ({
      ...c,
      input: c.input as FlowTestCase["input"],
      line: doc.locate(["cases", i], "value")?.line,
    })),
  };
}

/**
 * Names in the test file that the flow does not have: a source in `input`,
 * a sink in `published`, a stage in `dropped` or `deadLetters`. Throws a
 * FlowError at the test file's lines.
 */
export function checkAgainstFlow(test: FlowTestFile, flow: Flow, sinks: readonly string[]): void {
  const problems: PathProblem[] = [];
  const known = (
    path: PropertyKey[],
    name: string,
    names: readonly string[],
    what: string,
    at: "key" | "value" = "key",
  ) => {
    if (names.includes(name)) return;
    problems.push({
      path,
      at,
      message: `flow ${flow.name} has no ${what} ${JSON.stringify(name)}; its ${what}s: ${
        names.join(", ")
      }${didYouMean(name, names)}`,
    });
  };
  const sources = flow.sources.map((s) => s.name);
  const stages = flow.pipeline.map((s) => s.id);
  test.cases.forEach((c, i) => {
    const base = ["cases", i];
    if (!Array.isArray(c.input)) {
      for (const name of Object.keys(c.input)) {
        known([...base, "input", name], name, sources, "source");
      }
    }
    const { published, dropped, deadLetters } = c.expect;
    if (published && typeof published === "object") {
      for (const name of Object.keys(published)) {
        known([...base, "expect", "published", name], name, sinks, "sink");
      }
    }
    if (dropped && typeof dropped === "object") {
      for (const id of Object.keys(dropped)) {
        known([...base, "expect", "dropped", id], id, stages, "stage");
      }
    }
    if (Array.isArray(deadLetters)) {
      deadLetters.forEach((d, j) => {
        if (typeof d.stage === "string" && !placeholder(d.stage)) {
          known([...base, "expect", "deadLetters", j, "stage"], d.stage, stages, "stage", "value");
        }
      });
    }
  });
  if (problems.length > 0) {
    throw new FlowError(test.file, problems.map((p) => place(p, test.locate)));
  }
}

/** Strings in an expectation that look like placeholders but are none (`{strnig}`). */
function placeholderProblems(value: unknown, path: PropertyKey[]): PathProblem[] {
  if (typeof value === "string") {
    const found = placeholder(value);
    return typeof found === "string" ? [{ path, at: "value", message: found }] : [];
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => placeholderProblems(v, [...path, i]));
  if (value !== null && typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => placeholderProblems(v, [...path, k]));
  }
  return [];
}

function place(p: PathProblem, locate: Locate): Problem {
  const pos = p.pos ?? locate(p.path, p.at);
  return { line: pos?.line, column: pos?.column, path: formatPath(p.path), message: p.message };
}
