import { fstatSync } from "node:fs";

/**
 * Where this process's stdout goes: a terminal, a pipe or socket (`| cut`,
 * `| less`: most often to a terminal at its other end), or a file
 * (`> items.jsonl`, /dev/null). The live table is drawn on stderr and
 * redraws by moving the cursor up: items a stdout sink sends through a pipe
 * to the same terminal were drawn over, the last 4 lines of every run lost
 * from the screen. A file is out of its way.
 */
export function stdoutKind(): StdoutKind {
  if (Deno.stdout.isTerminal()) return "terminal";
  try {
    const stat = fstatSync(1);
    return stat.isFIFO() || stat.isSocket() ? "pipe" : "file";
  } catch {
    return "pipe"; // unknown: as if it could reach a terminal
  }
}

/** What stdoutKind tells apart. */
export type StdoutKind = "terminal" | "pipe" | "file";
