import { createLogger, type LogFormat, printErr } from "../engine/log.ts";

/** An error for a person (`error: ...`) or, in json mode, one JSON line. */
export function printError(format: LogFormat, error: Error, hint?: string): void {
  if (format === "json") {
    const where = error as { file?: unknown; line?: unknown; column?: unknown };
    createLogger("json").error(error.message, {
      ...(typeof where.file === "string" ? { file: where.file } : {}),
      ...(typeof where.line === "number" ? { line: where.line } : {}),
      ...(typeof where.column === "number" ? { column: where.column } : {}),
      ...(hint ? { hint } : {}),
    });
    return;
  }
  printErr(`error: ${error.message}`);
  if (hint) printErr(hint);
}
