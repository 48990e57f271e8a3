import { createLogger, type LogFormat, printErr, terminalSafe } from "../engine/log.ts";
import { maskUrlsIn } from "../engine/mask_url.ts";

/**
 * An error for a person (`error: ...`) or, in json mode, one JSON line,
 * with the password of any URL in it masked: the last guard for a message
 * that quotes a URL it was given (a flow file's value, a driver's error).
 */
export function printError(format: LogFormat, error: Error, hint?: string): void {
  const message = maskUrlsIn(error.message);
  if (format === "json") {
    const where = error as { file?: unknown; line?: unknown; column?: unknown; flow?: unknown };
    createLogger("json").error(message, {
      // A flow that could not start: its line names the flow, as every other line of a run does.
      ...(typeof where.flow === "string" ? { flow: where.flow } : {}),
      ...(typeof where.file === "string" ? { file: where.file } : {}),
      ...(typeof where.line === "number" ? { line: where.line } : {}),
      ...(typeof where.column === "number" ? { column: where.column } : {}),
      ...(hint ? { hint } : {}),
    });
    return;
  }
  printErr(terminalSafe(`error: ${message}`));
  if (hint) printErr(hint);
}
