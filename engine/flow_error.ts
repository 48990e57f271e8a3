/** One thing wrong with a flow: where it is and what to do about it. */
export interface Problem {
  /** 1-based; undefined when the flow did not come from a file or the place is unknown. */
  line?: number;
  /** 1-based. */
  column?: number;
  /** Path of the bad field, e.g. `pipeline[1].dedupe.ttl`; empty for the flow as a whole. */
  path: string;
  /** What is wrong and, where it helps, how to fix it. */
  message: string;
}

/**
 * A flow that cannot run, with every problem found in it. Callers catch it to
 * show the problems (an editor can jump to `line`/`column`); the message's
 * first line is a complete error by itself so a one-line log still helps.
 */
export class FlowError extends Error {
  /** The flow file, or a label such as `flow "demo"` for a flow built in code. */
  readonly file?: string;
  /** Line of the first problem (problems are sorted by place). */
  readonly line?: number;
  /** Column of the first problem. */
  readonly column?: number;
  /** Field path of the first problem. */
  readonly path: string;
  /** Every problem found, in file order. */
  readonly problems: readonly Problem[];

  /** Needs at least one problem; the message lists them all, one per line. */
  constructor(file: string | undefined, problems: readonly Problem[]) {
    if (problems.length === 0) throw new Error("FlowError needs at least one problem");
    const sorted = sortProblems(problems);
    super(sorted.map((p) => formatProblem(file, p)).join("\n"));
    this.name = "FlowError";
    this.file = file;
    this.problems = sorted;
    this.line = sorted[0].line;
    this.column = sorted[0].column;
    this.path = sorted[0].path;
  }
}

/** `file:line:column: path: message`, leaving out the parts that are unknown. */
export function formatProblem(file: string | undefined, p: Problem): string {
  let where = file ?? "";
  if (where && p.line !== undefined) {
    where += `:${p.line}` + (p.column !== undefined ? `:${p.column}` : "");
  }
  return [where, p.path, p.message].filter((part) => part !== "").join(": ");
}

/** `pipeline[1].dedupe.ttl` from `["pipeline", 1, "dedupe", "ttl"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (typeof seg === "string" && /^[A-Za-z_$][\w$-]*$/.test(seg)) {
      out += out === "" ? seg : `.${seg}`;
    } else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

/** In file order; problems with no known place keep their order after the placed ones. */
function sortProblems(problems: readonly Problem[]): Problem[] {
  const far = Number.MAX_SAFE_INTEGER;
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) =>
      (a.p.line ?? far) - (b.p.line ?? far) ||
      (a.p.column ?? far) - (b.p.column ?? far) ||
      a.i - b.i
    )
    .map(({ p }) => p);
}

/**
 * An error about one field of a component's block, e.g. a source's `path`
 * naming a file that is not there. `field` is relative to the block
 * (`["path"]`, `["path", 1]`), so whoever knows where the block sits in the
 * flow file (engine/build_flow.ts) can point at the line of the field.
 */
export class FieldError extends Error {
  constructor(readonly field: readonly PropertyKey[], message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FieldError";
  }
}
