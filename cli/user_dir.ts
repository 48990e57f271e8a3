import { dirname, isAbsolute, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { FlowError } from "../engine/flow_error.ts";
import type { FlowStartError } from "../engine/build_flow.ts";

/** The repository root: where deno.json is, and where `deno task` runs main.ts. */
const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

/**
 * The directory the person typed the command in, which relative flow paths
 * on the command line mean. `deno task` runs its tasks in the directory of
 * deno.json, not the shell's, and says where the shell was in INIT_CWD (set
 * if not set already, as `npm run` does). INIT_CWD counts only when this
 * process runs in the repository root, where `deno task` puts it: one left
 * in the environment by an npm script, or by a `deno task test` that starts
 * main.ts elsewhere, must not move the paths of a `deno run main.ts`.
 */
export function userDir(): string {
  const init = Deno.env.get("INIT_CWD");
  const cwd = Deno.cwd();
  return init && isAbsolute(init) && same(cwd, ROOT) ? init : cwd;
}

/**
 * A flow path from the command line, as this process must open it: as
 * typed when it is absolute or the person's directory is this process's,
 * else resolved from the person's directory.
 */
export function flowPath(typed: string): string {
  const dir = userDir();
  return isAbsolute(typed) || same(dir, Deno.cwd()) ? typed : resolve(dir, typed);
}

/**
 * A path as the person would type it: relative to their directory when
 * under it, else absolute ("../../tmp/x" helps nobody).
 */
export function shownPath(path: string): string {
  return shownFrom(userDir(), path);
}

/** shownPath from `dir`. */
function shownFrom(dir: string, path: string): string {
  const full = resolve(path);
  const rel = relative(dir, full);
  if (rel === "") return ".";
  return rel.startsWith("..") || isAbsolute(rel) ? full : rel;
}

/** `FILE:LINE:COLUMN: ` for a place in a flow file, the file shown from the person's directory; "" when unknown. */
export function shownPlace(file: string, at: { line?: number; column?: number }): string {
  return at.line === undefined ? "" : `${shownPath(file)}:${at.line}:${at.column}: `;
}

/**
 * A millrace command as the person would type it where they are, with the
 * flow file as they would name it from there: `deno task run ARGS FILE` in
 * the repository or below it, where `deno task` finds deno.json, and from
 * anywhere else with `--cwd` naming the repository, as they must have run
 * it. A hint they paste must run.
 */
export function typedCommand(args: string, file?: string, dir: string = userDir()): string {
  const rel = relative(ROOT, dir);
  const inside = rel === "" || !(rel.startsWith("..") || isAbsolute(rel));
  const prefix = inside ? "deno task run" : `deno task --cwd ${quoted(shownFrom(dir, ROOT))} run`;
  const shown = file === undefined ? "" : quoted(shownFrom(dir, file));
  return [prefix, args, shown].filter((s) => s !== "").join(" ");
}

/** typedCommand naming a file of the checkout (flows/demo.yaml): a usage error's example, which must run where it is pasted too. */
export function exampleCommand(args: string, checkoutFile?: string): string {
  return typedCommand(args, checkoutFile === undefined ? undefined : resolve(ROOT, checkoutFile));
}

/** A path as a shell takes it: as it is when it holds no character a shell reads, else in single quotes. */
function quoted(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}

function same(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  try {
    return Deno.realPathSync(a) === Deno.realPathSync(b);
  } catch {
    return false;
  }
}

/** `error` with its flow file named as `shownPath` shows it (from the user's directory). */
export function shownFlowError(error: FlowError): FlowError {
  if (error.file === undefined || !isAbsolute(error.file)) return error;
  const shown = shownPath(error.file);
  return shown === error.file ? error : new FlowError(shown, error.problems);
}

/**
 * A flow that failed to start (a sink that cannot open, say), its file named
 * as `shownPath` shows it, like a FlowError's: the message and the fields
 * the json log reads.
 */
export function shownStartError(error: FlowStartError): Error {
  if (error.file === undefined || !isAbsolute(error.file)) return error;
  const shown = shownPath(error.file);
  if (shown === error.file) return error;
  return Object.assign(new Error(error.message.replaceAll(error.file, shown)), {
    flow: error.flow,
    file: shown,
    line: error.line,
    column: error.column,
  });
}
