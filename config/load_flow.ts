import { dirname, resolve } from "node:path";
import type { Flow } from "../engine/flow.ts";
import type { Registry } from "../engine/registry.ts";
import { checkFlow } from "./check_flow.ts";
import { SOURCE_COMMON_KEYS, STAGE_COMMON_KEYS } from "./flow_schema.ts";
import { fileProblem } from "../adapters/sources/_input_files.ts";
import { FlowError, formatPath, type Problem } from "../engine/flow_error.ts";
import { type FlowDocument, hideFilled, readFlowDocument } from "./flow_document.ts";
import { importSteps, type StepModules } from "./step_modules.ts";
import type { PathProblem } from "./zod_issues.ts";

export { defineFlow } from "./define_flow.ts";
export { FlowError, type Problem } from "../engine/flow_error.ts";

/**
 * The largest flow file read. A flow is hand-written configuration of a few
 * kilobytes; a larger file is the wrong file, and parsing it whole would
 * only take time (a 10 MB file takes seconds) before failing anyway.
 */
export const MAX_FLOW_BYTES = 1024 * 1024;

const EMPTY = "the flow file is empty; a flow needs at least name, sources and pipeline";

/**
 * Turns the text of a flow file into a checked Flow, or throws a FlowError
 * naming the file, line, column and field of every problem. `${VAR}` in
 * values is filled from `env`. Relative paths in the flow resolve against
 * `opts.baseDir`, by default the file's directory.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { parseFlow, Registry } from "../mod.ts";
 *
 * const registry = new Registry()
 *   .source({ kind: "fixture", summary: "", schema: z.strictObject({}), create: () => ({ async *read() {} }) })
 *   .stage({ kind: "validate", summary: "", schema: z.strictObject({}), create: () => ({ handle() {} }) });
 * const flow = parseFlow(
 *   "name: demo\nsources: { a: { kind: fixture } }\npipeline: [validate]\n",
 *   "flows/demo.yaml",
 *   registry,
 *   {},
 * );
 * if (flow.pipeline[0].id !== "validate") throw new Error("expected the kind as the id");
 * ```
 */
export function parseFlow(
  text: string,
  file: string,
  registry: Registry,
  env: Record<string, string | undefined>,
  opts: { baseDir?: string } = {},
): Flow {
  checkText(text, file);
  const doc = readFlowDocument(text, env);
  if (!doc.ok) throw new FlowError(file, doc.problems);
  return checkDocument(doc, file, registry, opts.baseDir ?? dirname(resolve(file)));
}

function checkText(text: string, file: string): void {
  const size = new TextEncoder().encode(text).length;
  if (size > MAX_FLOW_BYTES) throw fileError(file, tooLarge(size));
  if (text.includes("\0")) throw fileError(file, BINARY);
  if (text.trim() === "") throw fileError(file, EMPTY);
}

function checkDocument(
  doc: Extract<FlowDocument, { ok: true }>,
  file: string,
  registry: Registry,
  baseDir: string,
  steps?: StepModules,
  stepProblems: PathProblem[] = [],
  components = true,
): Flow {
  if (doc.value === null || doc.value === undefined) throw fileError(file, EMPTY);
  const top = doc.value as Record<string, unknown>;
  if (typeof top === "object" && !Array.isArray(top) && "cases" in top && !("pipeline" in top)) {
    // A flow's test file given where a flow belongs: one line, not one per missing field.
    throw new FlowTestFileError(file);
  }
  const waived = components ? [] : doc.problems.filter(inComponentConfig);
  try {
    return checked(doc, file, registry, baseDir, steps, stepProblems, waived);
  } catch (error) {
    if (!(error instanceof FlowError) || doc.filled.length === 0) throw error;
    const problems = error.problems.map((p) => ({
      ...p,
      message: hideFilled(p.message, doc.filled),
    }));
    throw new FlowError(error.file, problems);
  }
}

function checked(
  doc: Extract<FlowDocument, { ok: true }>,
  file: string,
  registry: Registry,
  baseDir: string,
  steps: StepModules | undefined,
  stepProblems: PathProblem[],
  waived: PathProblem[],
): Flow {
  return checkFlow(doc.value, registry, {
    label: file,
    baseDir,
    locate: doc.locate,
    earlier: [...doc.problems.filter((p) => !waived.includes(p)), ...stepProblems],
    fromFile: true,
    ...(steps ? { steps } : {}),
    ...(waived.length > 0 ? { waived } : {}),
  });
}

/** An unset variable in a source's or stage's own config, not in what names its keys. */
function inComponentConfig(p: PathProblem): boolean {
  if (!p.message.startsWith("environment variable ")) return false;
  const [top, , kindOrField, field] = p.path.map(String);
  if (top === "sources") {
    return kindOrField !== undefined &&
      !(SOURCE_COMMON_KEYS as readonly string[]).includes(kindOrField);
  }
  return top === "pipeline" && field !== undefined &&
    !(STAGE_COMMON_KEYS as readonly string[]).includes(field);
}

/** A file whose lines end in CR alone (classic Mac OS): its first comment would swallow it all. */
const CR_ONLY = "the file's lines end in CR alone (classic Mac OS line ends); save it with LF " +
  "(or CRLF) line ends";
const BINARY = "this is a binary file, not a YAML flow (it holds NUL bytes); " +
  "pass the flow's .yaml file";

/**
 * Reads and checks a flow file. An unreadable, empty or binary file is a
 * FlowError too, so a command line has one kind of error to print.
 * `inputs: false` leaves the sources' input files unchecked; `components:
 * false` is for commands that build none of the flow's sources and stages
 * (status, dlq, reset): neither their input files nor the variables their
 * configs use need to be there.
 */
export async function loadFlow(
  file: string,
  registry: Registry,
  env: Record<string, string | undefined> = Deno.env.toObject(),
  opts: { inputs?: boolean; components?: boolean } = {},
): Promise<Flow> {
  let read: Awaited<ReturnType<typeof readAtMost>>;
  try {
    read = await readAtMost(file, MAX_FLOW_BYTES);
  } catch (e) {
    throw fileError(file, readFailure(file, e));
  }
  if ("over" in read) throw fileError(file, tooLarge(read.over));
  const { bytes } = read;
  if (bytes.length === 0) throw fileError(file, EMPTY);
  if (bytes.includes(0)) throw fileError(file, BINARY);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw fileError(file, "the file is not UTF-8 text; save the flow as UTF-8 YAML");
  }
  if (text.includes("\r") && !text.includes("\n")) throw fileError(file, CR_ONLY);
  const components = opts.components ?? true;
  const flow = await parseFlowWithSteps(text, file, registry, env, { components });
  if (components && (opts.inputs ?? true)) await checkInputs(flow, registry);
  return flow;
}

/**
 * parseFlow, and before the check, the import of every `step` module the
 * flow names (resolved against `opts.baseDir`, by default the file's
 * directory), so their stages and options are checked with the rest.
 */
export async function parseFlowWithSteps(
  text: string,
  file: string,
  registry: Registry,
  env: Record<string, string | undefined>,
  opts: { baseDir?: string; components?: boolean } = {},
): Promise<Flow> {
  checkText(text, file);
  const doc = readFlowDocument(text, env);
  if (!doc.ok) throw new FlowError(file, doc.problems);
  const baseDir = opts.baseDir ?? dirname(resolve(file));
  const { steps, problems } = await importSteps(
    doc.value,
    baseDir,
    (kind) => registry.stages.has(kind),
  );
  await prepareSources(doc.value, registry);
  return checkDocument(doc, file, registry, baseDir, steps, problems, opts.components);
}

/** Awaits the `prepare` of each source kind the flow file names (registry.ts SourceSpec). */
async function prepareSources(doc: unknown, registry: Registry): Promise<void> {
  const sources = (doc as { sources?: unknown } | null)?.sources;
  if (typeof sources !== "object" || sources === null) return;
  for (const block of Object.values(sources)) {
    const kind = (block as { kind?: unknown } | null)?.kind;
    if (typeof kind === "string") await registry.sources.get(kind)?.prepare?.();
  }
}

/**
 * Local input files of the sources (the field their kind names as `files`,
 * `path` for the built-ins that read files) must exist and be readable:
 * `check` then catches what the run would, and the error names the line.
 * Opens no service; a source's own check() still runs at start for flows
 * built in code.
 */
export async function checkInputs(flow: Flow, registry: Registry): Promise<void> {
  const problems: Problem[] = [];
  for (const source of flow.sources) {
    const field = registry.sources.get(source.kind)?.files;
    if (field === undefined) continue;
    const path = (source.config as Record<string, unknown> | null)?.[field];
    const given = typeof path === "string" ? [path] : Array.isArray(path) ? path : [];
    const paths = given.flatMap((p, i) =>
      typeof p !== "string" ? [] : [{
        at: ["sources", source.name, field, ...(typeof path === "string" ? [] : [i])],
        p,
      }]
    );
    for (const { at, p } of paths) {
      const message = await fileProblem(p, flow.baseDir);
      if (message === undefined) continue;
      const pos = flow.locate?.(at, "value");
      problems.push({ line: pos?.line, column: pos?.column, path: formatPath(at), message });
    }
  }
  if (problems.length > 0) throw new FlowError(flow.file, problems);
}

/**
 * The bytes of a file of at most `max` bytes; for a larger one, its size
 * when stat knows it. A file stat says is too large is not read, and a pipe
 * or a device with no size is read no further than `max` + 1 bytes.
 */
async function readAtMost(
  file: string,
  max: number,
): Promise<{ bytes: Uint8Array } | { over: number | undefined }> {
  using f = await Deno.open(file, { read: true });
  const { size } = await f.stat();
  if (size > max) return { over: size };
  const bytes = new Uint8Array(max + 1);
  let n = 0;
  while (n < bytes.length) {
    const got = await f.read(bytes.subarray(n));
    if (got === null) break;
    n += got;
  }
  return n > max ? { over: undefined } : { bytes: bytes.subarray(0, n) };
}

function tooLarge(size: number | undefined): string {
  const mib = (n: number) => `${+(n / 1024 / 1024).toFixed(1)} MiB`;
  const got = size === undefined ? "is larger" : `is ${mib(size)} (${size} bytes)`;
  return `the flow file ${got}, over the ${mib(MAX_FLOW_BYTES)} (${MAX_FLOW_BYTES} bytes) ` +
    "limit for a flow file; a flow is hand-written configuration, so check this is the flow's " +
    ".yaml file";
}

function readFailure(file: string, e: unknown): string {
  if (e instanceof Deno.errors.NotFound) {
    return `cannot read the flow file: it does not exist (looked for ${
      resolve(file)
    }); check the path`;
  }
  if (e instanceof Deno.errors.IsADirectory) {
    return "cannot read the flow file: it is a directory; pass the flow's .yaml file inside it";
  }
  if (e instanceof Deno.errors.NotCapable) {
    return "cannot read the flow file: Deno may not read it; run with --allow-read";
  }
  if (e instanceof Deno.errors.PermissionDenied) {
    return "cannot read the flow file: permission denied; make it readable (chmod +r)";
  }
  const reason = e instanceof Error ? e.message : String(e);
  return `cannot read the flow file: ${reason.split("\n")[0]}`;
}

/** A flow's test file (`cases:`, no `pipeline:`) given to load as a flow: `check` checks it as a test. */
export class FlowTestFileError extends FlowError {
  constructor(file: string) {
    super(file, [{
      path: "",
      message: "this is a flow's test file, not a flow: run its cases with " +
        `\`deno task run test ${file}\` (see "Testing a flow" in README)`,
    }]);
  }
}

function fileError(file: string, message: string): FlowError {
  return new FlowError(file, [{ path: "", message }]);
}
