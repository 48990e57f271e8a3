import { RedisUnreachableError } from "../engine/redis/connection.ts";
import { FlowError } from "../config/load_flow.ts";
import { createLogger, printErr, terminalSafe } from "../engine/log.ts";
import { maskUrlsIn } from "../engine/mask_url.ts";
import { FlowStartError } from "../engine/run_flow.ts";
import { NotDurableError, UnknownStageError } from "./admin.ts";
import { requestedFormat, UsageError } from "./args.ts";
import { printError } from "./print_error.ts";
import { shownFlowError, shownStartError, typedCommand } from "./user_dir.ts";

/**
 * Reports an error that ended a command and returns the exit code for it:
 * 2 for bad input (command line, flow file, unreachable service), with a
 * pointer to `deno task run help` for a usage error; 1, with the stack, for
 * anything unexpected.
 */
export function exitCodeFor(error: unknown, argv: string[]): number {
  const format = requestedFormat(argv);
  const usage = error instanceof UsageError ||
    String((error as { code?: unknown })?.code).startsWith("ERR_PARSE_ARGS");
  if (
    error instanceof FlowError || error instanceof FlowStartError ||
    error instanceof RedisUnreachableError || error instanceof NotDurableError ||
    error instanceof UnknownStageError || usage
  ) {
    const shown = error instanceof FlowError
      ? shownFlowError(error)
      : error instanceof FlowStartError
      ? shownStartError(error)
      : error as Error;
    printError(format, shown, usage ? `run \`${typedCommand("help")}\` for usage` : undefined);
    return 2;
  }
  const unexpected = error instanceof Error ? error : new Error(String(error));
  if (format === "json") {
    createLogger("json").error(maskUrlsIn(unexpected.message), {
      stack: maskUrlsIn(String(unexpected.stack)),
    });
  } else printErr(terminalSafe(`error: ${maskUrlsIn(String(unexpected.stack))}`));
  return 1;
}
