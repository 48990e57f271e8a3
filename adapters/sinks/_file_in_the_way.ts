import { dirname, resolve } from "node:path";

/**
 * The nearest entry on the way up from `path` (itself included) that
 * exists and is not a folder: the file that keeps a folder at `path` from
 * being made. Undefined when there is none, and where reading is not
 * allowed (a library checking a flow asks no permission).
 *
 * Why: an output folder or a jsonl file under a regular file passed
 * `check`, and the run failed at its first write (a memory flow's first
 * dead letter).
 */
export function fileInTheWay(path: string): string | undefined {
  if (Deno.permissions.querySync({ name: "read" }).state !== "granted") return undefined;
  for (let at = resolve(path);; at = dirname(at)) {
    try {
      return Deno.statSync(at).isDirectory ? undefined : at;
    } catch (error) {
      // Not there, or under a file (ENOTDIR): look further up.
      const missing = error instanceof Deno.errors.NotFound ||
        error instanceof Deno.errors.NotADirectory;
      if (!missing || dirname(at) === at) return undefined;
    }
  }
}
