import { basename, isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { stripVTControlCharacters } from "node:util";
import { errorMessage, fileFrame, shownFileLocation, shownFilePath } from "../engine/errors.ts";
import type { StageSpec } from "../engine/registry.ts";
import type { PathProblem } from "./zod_issues.ts";

/**
 * What a step module exports as its default: a stage as `Registry.stage`
 * takes one, with `kind` optional (it names the stage in reports; the
 * file's name does otherwise) and `summary` too (the loader never needed it).
 */
export type StepSpec<C = unknown> = Omit<StageSpec<C>, "kind" | "summary"> & {
  readonly kind?: string;
  readonly summary?: string;
};

/** The step modules of one flow, by `module` as the flow file writes it. */
export type StepModules = ReadonlyMap<string, StageSpec | undefined>;

/**
 * Imports the module of every `- step: { module: ... }` of a flow's
 * pipeline, resolved against the flow file's directory, and checks what it
 * exports. A module that is missing, fails to import or exports no stage is
 * a problem at its `module` field (so at its line), and maps to undefined.
 *
 * Done before the flow is checked because imports are asynchronous and
 * checking is not: the check then finds each module's stage here and holds
 * `options` to the module's own schema like any other stage's config.
 */
export async function importSteps(
  doc: unknown,
  baseDir: string,
  /** Whether a stage kind is taken by a built-in (or registered) stage. */
  taken: (kind: string) => boolean = () => false,
): Promise<{ steps: StepModules; problems: PathProblem[] }> {
  const steps = new Map<string, StageSpec | undefined>();
  const problems: PathProblem[] = [];
  const pipeline = (doc as { pipeline?: unknown } | null)?.pipeline;
  if (!Array.isArray(pipeline)) return { steps, problems };
  for (const [i, element] of pipeline.entries()) {
    const module = (element as { step?: { module?: unknown } } | null)?.step?.module;
    if (typeof module !== "string" || steps.has(module)) continue;
    const loaded = await importStep(module, baseDir, taken);
    steps.set(module, "spec" in loaded ? loaded.spec : undefined);
    if ("problem" in loaded) {
      problems.push({
        path: ["pipeline", i, "step", "module"],
        at: "value",
        message: loaded.problem,
      });
    }
  }
  return { steps, problems };
}

async function importStep(
  module: string,
  baseDir: string,
  taken: (kind: string) => boolean,
): Promise<{ spec: StageSpec } | { problem: string }> {
  if (/^[a-z][a-z0-9+.-]*:/i.test(module) && !isAbsolute(module)) {
    return { problem: `module is a path to a .ts file (such as ./steps/tag.ts), not ${module}` };
  }
  const path = resolve(baseDir, module);
  let modified = 0;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) return { problem: `step module ${module} is not a file (${path})` };
    modified = info.mtime?.getTime() ?? 0;
  } catch (error) {
    return {
      problem: error instanceof Deno.errors.NotFound
        ? `step module ${module} does not exist (looked for ${path})`
        : `cannot read step module ${module}: ${errorMessage(error)}`,
    };
  }
  let exports: Record<string, unknown>;
  const href = pathToFileURL(path).href;
  try {
    // Imported anew once the file changed: a process imports a module once per URL, and
    // `run --watch` loads the flow again when its file is saved, the step's edits with it.
    exports = await import(`${href}?v=${modified}`);
  } catch (error) {
    // Deno's message: the error, a code excerpt, then "at file:///...:line:col", coloured when
    // the terminal is; the module's URL in it is shown without the version this import added.
    const lines = stripVTControlCharacters(errorMessage(error)).replaceAll(
      `${href}?v=${modified}`,
      href,
    )
      .split("\n").map((l) => l.trim());
    // An error the module's own code threw as it ran (at its top level) says where in its stack.
    const line = lines.find((l) => /^at file:\/\//.test(l))?.replace(/^at /, "");
    const at = (line && (shownFileLocation(line) ?? line.replace(/^file:\/\//, ""))) ??
      (error instanceof Error ? fileFrame(error) : undefined);
    return {
      problem: `cannot import step module ${module}: ${decodedFileUrls(lines[0])}${
        at ? ` (at ${at})` : ""
      }`,
    };
  }
  const spec = exports.default;
  const wrong = shapeProblem(spec);
  if (wrong) {
    const names = Object.keys(exports).filter((k) => k !== "default");
    return {
      problem: `step module ${module} must export default a stage ` +
        "({ schema: a zod schema of its options, create(options, env) }); " +
        wrong + (names.length ? ` (it exports: ${names.join(", ")})` : ""),
    };
  }
  const given = spec as StepSpec;
  const kind = given.kind ?? (basename(path).replace(/\.[^.]*$/, "").toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-").replace(/^[^a-z]+/, "") || "step");
  // Its id would take the built-in's, which reports, metrics and flow tests then name for it.
  if (kind !== "step" && taken(kind)) {
    return {
      problem:
        `step module ${module} ${given.kind ? "names its kind" : "is named after its file,"} ` +
        `"${kind}", a built-in stage's: give it a kind of its own (kind: "my-${kind}")`,
    };
  }
  return { spec: { ...given, kind } as StageSpec };
}

/**
 * The file URLs of Deno's message as paths a person can open
 * (`file:///x/sp%20ace/a.ts` is `/x/sp ace/a.ts`).
 */
function decodedFileUrls(message: string): string {
  return message.replace(/file:\/\/\/[^\s"'`]+/g, (url) => {
    // A location (…/a.ts:2:10) keeps its line and column.
    const at = /^(.*?)((?::\d+){0,2})$/.exec(url)!;
    return (shownFilePath(at[1]) ?? at[1]) + at[2];
  });
}

/** What is wrong with a module's default export, or undefined when it is a stage. */
function shapeProblem(spec: unknown): string | undefined {
  if (spec === undefined) return "it has no default export";
  if (spec === null || typeof spec !== "object") return `its default export is ${typeof spec}`;
  const s = spec as Record<string, unknown>;
  const isSchema = (v: unknown) => typeof (v as { safeParse?: unknown })?.safeParse === "function";
  if (!isSchema(s.schema) && typeof s.schema !== "function") {
    return "its default export has no zod schema";
  }
  if (typeof s.create !== "function") return "its default export has no create function";
  if (s.kind !== undefined && (typeof s.kind !== "string" || !/^[a-z][a-z0-9-]*$/.test(s.kind))) {
    return "its kind must be lower-case letters, digits and dashes";
  }
  // Called with the options as the flow loads and runs: a value there failed as a TypeError
  // with no line, or (window) only once the run started.
  if (s.needs !== undefined && typeof s.needs !== "function") {
    return 'its needs must be a function of its options returning facts, such as needs: () => ["valid"]';
  }
  if (s.window !== undefined && typeof s.window !== "function") {
    return "its window must be a function of its options, such as window: () => ({ size: 10 })";
  }
  if (
    s.adds !== undefined && typeof s.adds !== "function" &&
    !(Array.isArray(s.adds) && s.adds.every((f) => typeof f === "string"))
  ) {
    return 'its adds must be a list of facts (adds: ["enriched"]) or a function of its options returning one';
  }
  return undefined;
}
