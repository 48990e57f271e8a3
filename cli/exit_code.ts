import { RedisUnreachableError } from "../engine/redis/connection.ts";
import { isNoPermission } from "../engine/redis/no_permission.ts";
import { FlowError } from "../config/load_flow.ts";
import { createLogger, printErr, terminalSafe } from "../engine/log.ts";
import { maskUrlsIn } from "../engine/mask_url.ts";
import { FlowStartError } from "../engine/run_flow.ts";
import { NotDurableError, UnknownStageError } from "./admin.ts";
import { requestedFormat, UsageError } from "./args.ts";
import { printError } from "./print_error.ts";
import { shownFlowError, shownStartError, typedCommand } from "./user_dir.ts";

/**
 * The exit code of a command that could not start because a service did not
 * answer (sysexits' EX_TEMPFAIL): unlike a bad flow file (2), trying again
 * later may work, which a supervisor's restart policy can tell apart.
 */
export const UNAVAILABLE = 75;

/** Error codes of a connection that did not answer, or stopped answering. */
const GONE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "EPIPE",
]);

/**
 * Whether `error`, or what it wraps, is a service that did not answer (a
 * refused or dropped connection, a timeout, Redis not reachable within its
 * connect timeout), not a service that answered no (a password refused, a
 * missing table).
 */
export function isUnavailable(error: unknown, depth = 0): boolean {
  if (depth > 8 || error === null || typeof error !== "object") return false;
  if (error instanceof RedisUnreachableError) return error.away;
  const e = error as { code?: unknown; away?: unknown; outage?: unknown; name?: unknown };
  if (e.away === true || e.outage === true || e.name === "TimeoutError") return true;
  if (typeof e.code === "string" && GONE.has(e.code)) return true;
  if (
    error instanceof Deno.errors.ConnectionRefused ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.TimedOut || error instanceof Deno.errors.ConnectionAborted
  ) return true;
  const { cause, errors } = error as { cause?: unknown; errors?: unknown };
  if (Array.isArray(errors) && errors.some((x) => isUnavailable(x, depth + 1))) return true;
  return isUnavailable(cause, depth + 1);
}

function isUsage(error: unknown): boolean {
  return error instanceof UsageError ||
    String((error as { code?: unknown })?.code).startsWith("ERR_PARSE_ARGS");
}

/** Errors a command says in a line: bad input (2), or a service that did not answer (75). */
function isBadInput(error: unknown): boolean {
  return error instanceof FlowError || error instanceof FlowStartError ||
    error instanceof RedisUnreachableError || error instanceof NotDurableError ||
    error instanceof UnknownStageError;
}

/** The error as a user reads it: a flow file's with its place, a start's with its stage. */
function shownError(error: unknown): Error {
  return error instanceof FlowError
    ? shownFlowError(error)
    : error instanceof FlowStartError
    ? shownStartError(error)
    : error instanceof Error
    ? error
    : new Error(String(error));
}

/**
 * The exit code exitCodeFor gives `error` and the line it says it in, for
 * one flow of several that could not run: the others go on.
 */
export function flowFailure(error: unknown): { code: number; message: string } {
  const shown = shownError(error);
  if (isBadInput(error)) {
    return { code: isUnavailable(error) ? UNAVAILABLE : 2, message: maskUrlsIn(shown.message) };
  }
  // Unexpected, as exitCodeFor has it: with its stack.
  return { code: 1, message: maskUrlsIn(String(shown.stack ?? shown.message)) };
}

/** The commands that read a flow's Redis keys and end: a connection lost under them is 75. */
const ADMIN = ["status", "dlq", "reset"];

/**
 * Reports an error that ended a command and returns the exit code for it:
 * 2 for bad input (command line, flow file), with a pointer to `deno task
 * run help` for a usage error; UNAVAILABLE (75) for a service that did not
 * answer, at start or since; 1, with the stack, for anything unexpected.
 */
export function exitCodeFor(error: unknown, argv: string[]): number {
  const format = requestedFormat(argv);
  const usage = isUsage(error);
  if (isBadInput(error) || usage) {
    printError(
      format,
      shownError(error),
      usage ? `run \`${typedCommand("help")}\` for usage` : undefined,
    );
    return isUnavailable(error) ? UNAVAILABLE : 2;
  }
  // A connection lost or a service that stopped answering mid-command (`status`, `dlq replay`
  // with Redis restarting): said in a line, and 75 as at start, not a stack and 1. Not a run's
  // failure: a flow that failed while running exits 1, with its stack.
  if (isUnavailable(error) && error instanceof Error && ADMIN.includes(argv[0])) {
    printError(format, error);
    return UNAVAILABLE;
  }
  // A right the Redis user lacks, refused mid-command: an answer of no, as a refused password is.
  if (isNoPermission(error) && error instanceof Error && ADMIN.includes(argv[0])) {
    printError(format, new Error(refusedLine(error)), NO_PERMISSION_HINT);
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

/** What to do about a right Redis refused (isNoPermission). */
const NO_PERMISSION_HINT = "the Redis user needs the flow's keys and the commands the command " +
  'runs (README, "Operating durable flows": ACL users)';

/** The refusal itself, on one line: Redis's words, not the client's stack. */
function refusedLine(error: Error): string {
  const message = error.message.split("\n")[0];
  return /^Redis refused|: Redis refused/.test(message)
    ? message
    : `Redis refused it: ${message.replace(/^ReplyError: /, "")}`;
}
