import { resolve } from "node:path";
import type { RawItem } from "../engine/item.ts";

/**
 * Fails when a configured input file is missing or not a file, naming it as
 * the flow file does and where it was looked for, so a typo in a path stops
 * the flow before it starts instead of failing its first read.
 */
export async function checkFiles(paths: readonly string[], baseDir: string): Promise<void> {
  const problems: string[] = [];
  for (const path of paths) {
    const full = resolve(baseDir, path);
    try {
      if (!(await Deno.stat(full)).isFile) problems.push(`${path}: not a file (${full})`);
    } catch (err) {
      const why = err instanceof Deno.errors.NotFound ? "no such file" : (err as Error).message;
      problems.push(`${path}: ${why} (${full})`);
    }
  }
  if (problems.length) throw new Error(problems.join("; "));
}

/** The `path` field of a source config as a list. */
export function pathList(path: string | string[] | undefined): string[] {
  return path === undefined ? [] : typeof path === "string" ? [path] : path;
}

/**
 * Reads and parses each file in turn, yielding the items of each. One
 * unreadable file must not starve the others: failures are reported, all
 * together, after every file was tried.
 */
export async function* readFiles(
  paths: readonly string[],
  baseDir: string,
  signal: AbortSignal,
  parse: (bytes: Uint8Array, path: string) => RawItem[] | Promise<RawItem[]>,
): AsyncGenerator<RawItem[]> {
  const failures: Error[] = [];
  for (const path of paths) {
    signal.throwIfAborted();
    let items: RawItem[];
    try {
      items = await parse(await Deno.readFile(resolve(baseDir, path), { signal }), path);
    } catch (err) {
      if (signal.aborted) throw err;
      failures.push(err as Error);
      continue;
    }
    if (items.length) yield items;
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) {
    throw new Error(failures.map((e) => e.message).join("; "), { cause: failures });
  }
}
