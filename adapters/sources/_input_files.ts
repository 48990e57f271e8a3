import { resolve } from "node:path";
import { FieldError } from "../../engine/flow_error.ts";
import type { RawItem } from "../../engine/item.ts";

/**
 * Fails when a configured input file is missing, not a file or cannot be
 * read, naming it as the flow file does and where it was looked for, so a
 * typo or a bad mode stops the flow before it starts instead of failing its
 * first read. The error is a FieldError on `field` (`path`, or `path[i]`
 * when one file of a list is bad), so the flow file's line can be named.
 */
export async function checkFiles(
  path: string | readonly string[] | undefined,
  baseDir: string,
  field = "path",
): Promise<void> {
  const problems: { at: PropertyKey[]; message: string }[] = [];
  const paths = pathList(path);
  for (const [i, p] of paths.entries()) {
    const message = await fileProblem(p, baseDir);
    if (message) problems.push({ at: typeof path === "string" ? [field] : [field, i], message });
  }
  if (problems.length === 0) return;
  const at = problems.length === 1 ? problems[0].at : [field];
  throw new FieldError(at, problems.map((p) => p.message).join("; "));
}

/** What is wrong with one input file, or undefined when it can be read. */
export async function fileProblem(path: string, baseDir: string): Promise<string | undefined> {
  const full = resolve(baseDir, path);
  try {
    if (!(await Deno.stat(full)).isFile) return `${path}: not a file (${full})`;
    // stat succeeds on a file nobody may read: opening it is what tells.
    (await Deno.open(full, { read: true })).close();
    return undefined;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return `${path}: no such file (${full})`;
    return `cannot read ${path}: ${readFailure(err)} (${full})`;
  }
}

/**
 * Why a file could not be read, in words, for an OS error such as
 * `Permission denied (os error 13): readfile '...'`.
 */
export function readFailure(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file";
  if (err instanceof Deno.errors.PermissionDenied) {
    return "permission denied; make it readable (chmod +r)";
  }
  if (err instanceof Deno.errors.NotCapable) return "Deno may not read it; run with --allow-read";
  if (err instanceof Deno.errors.IsADirectory) return "it is a directory, not a file";
  const message = err instanceof Error ? err.message : String(err);
  return message.split("\n")[0];
}

/** The `path` field of a source config as a list. */
export function pathList(path: string | readonly string[] | undefined): string[] {
  return path === undefined ? [] : typeof path === "string" ? [path] : [...path];
}

/**
 * Reads and parses each file in turn, yielding the items of each (see
 * eachFile).
 */
export function readFiles(
  paths: readonly string[],
  baseDir: string,
  signal: AbortSignal,
  parse: (bytes: Uint8Array, path: string) => RawItem[] | Promise<RawItem[]>,
): AsyncGenerator<RawItem[]> {
  return eachFile(paths, baseDir, signal, async function* (full, path) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(full, { signal });
    } catch (err) {
      if (signal.aborted) throw err;
      throw cannotRead(path, full, err);
    }
    const items = await parse(bytes, path);
    if (items.length) yield items;
  });
}

/**
 * The batches `read` yields for each file in turn (`full` is its path
 * resolved against `baseDir`). One unreadable file must not starve the
 * others: failures are reported, all together, after every file was tried.
 */
export async function* eachFile(
  paths: readonly string[],
  baseDir: string,
  signal: AbortSignal,
  read: (full: string, path: string) => AsyncIterable<RawItem[]>,
): AsyncGenerator<RawItem[]> {
  const failures: Error[] = [];
  for (const path of paths) {
    signal.throwIfAborted();
    try {
      yield* read(resolve(baseDir, path), path);
    } catch (err) {
      if (signal.aborted) throw err;
      failures.push(err as Error);
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) {
    throw new Error(failures.map((e) => e.message).join("; "), { cause: failures });
  }
}

/** `cannot read PATH: why (FULL)`, for a file that could not be opened or read. */
export function cannotRead(path: string, full: string, err: unknown): Error {
  return new Error(`cannot read ${path}: ${readFailure(err)} (${full})`, { cause: err });
}
