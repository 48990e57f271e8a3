/**
 * The command line's arguments: options checked one by one, the command
 * picked out of the positionals, and the errors a person gets for a typo.
 */
import { parseArgs } from "node:util";
import type { LogFormat } from "../engine/log.ts";
import { nearest } from "../config/suggest.ts";
import { flowPath, typedCommand } from "./user_dir.ts";

/** The commands main.ts knows; anything else is taken for a flow file to run. */
export const COMMANDS = ["run", "check", "test", "status", "dlq", "reset", "help"];

const OPTIONS = {
  quiet: { type: "boolean", default: false },
  "log-format": { type: "string", default: "text" },
  "log-level": { type: "string" },
  grace: { type: "string", default: "30s" },
  port: { type: "string" },
  host: { type: "string" },
  watch: { type: "boolean", default: false },
  json: { type: "boolean", default: false },
  stage: { type: "string" },
  into: { type: "string" },
  limit: { type: "string" },
  yes: { type: "boolean", short: "y", default: false },
  force: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
  version: { type: "boolean", short: "V", default: false },
} as const;

type OptionName = keyof typeof OPTIONS;

/** Options any command takes: --log-format says how errors are printed too. */
const GLOBAL: OptionName[] = ["log-format", "help", "version"];

/**
 * The options each command reads; any other is refused, not ignored: `run
 * --json` would otherwise print text to a script that asked for JSON.
 */
const COMMAND_OPTIONS: Record<string, OptionName[]> = {
  run: ["quiet", "log-level", "grace", "port", "host", "watch"],
  check: [],
  test: [],
  status: ["json"],
  "dlq list": ["stage", "limit", "json"],
  "dlq replay": ["stage", "into", "json"],
  "dlq purge": ["stage", "yes"],
  reset: ["yes", "force"],
  help: [],
  "--version": [],
};

/** The likely meaning of an option given to a command that does not take it. */
const MEANT: Partial<Record<OptionName, string>> = {
  json: "--log-format json",
};

/**
 * Refuses an option `command` (e.g. "run", "dlq purge") does not take,
 * naming what it may have meant or which commands take it.
 */
export function checkOptions(command: string, given: readonly string[]): void {
  const allowed = COMMAND_OPTIONS[command];
  if (!allowed) return;
  for (const name of given as OptionName[]) {
    if (GLOBAL.includes(name) || allowed.includes(name)) continue;
    const meant = MEANT[name];
    const takers = Object.keys(COMMAND_OPTIONS).filter((c) => COMMAND_OPTIONS[c].includes(name));
    const list = takers.length > 1
      ? `${takers.slice(0, -1).join(", ")} and ${takers.at(-1)}`
      : takers[0];
    throw new UsageError(
      `--${name} is not an option of ${command}` +
        (meant && command === "run" ? `; did you mean ${meant}?` : `; it is an option of ${list}`),
    );
  }
}

/** A command line that cannot be run: reported with a pointer to `deno task run help`, exit code 2. */
export class UsageError extends Error {}

/**
 * Parses leniently, then checks each option itself: node:util's own errors
 * ("Unknown option '--quite'. To specify a positional argument starting
 * with a '-', ...") say nothing about the likely typo.
 */
export function parseCommandLine(argv: string[]) {
  const { values, positionals, tokens } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: false,
    tokens: true,
    options: OPTIONS,
  });
  const given: string[] = [];
  for (const token of tokens) {
    if (token.kind !== "option") continue;
    if (!given.includes(token.name)) given.push(token.name);
    const spec = (OPTIONS as Record<string, { type: string }>)[token.name];
    if (!spec) {
      const names = Object.keys(OPTIONS);
      // A cut-short name (--log) means the options it begins; else the nearest spelling.
      const begun = token.name.length > 1 ? names.filter((n) => n.startsWith(token.name)) : [];
      const near = begun.length > 0
        ? begun.map((n) => `--${n}`).join(" or ")
        : token.name.length > 1
        ? nearest(token.name, names)?.replace(/^/, "--")
        : undefined;
      throw new UsageError(
        `unknown option ${token.rawName}${near ? `; did you mean ${near}?` : ""}`,
      );
    }
    if (spec.type === "string" && token.value === undefined) {
      throw new UsageError(`${token.rawName} needs a value`);
    }
    if (spec.type === "boolean" && token.inlineValue) {
      throw new UsageError(`${token.rawName} takes no value`);
    }
  }
  // Every option was checked above, so each value has its declared type.
  return {
    values: values as {
      quiet: boolean;
      "log-format": string;
      "log-level"?: string;
      grace: string;
      port?: string;
      host?: string;
      watch: boolean;
      json: boolean;
      stage?: string;
      into?: string;
      limit?: string;
      yes: boolean;
      force: boolean;
      help: boolean;
      version: boolean;
    },
    positionals,
    /** The options given, by name, each once. */
    given,
  };
}

/** What `dlq` does: said as such when given without `dlq`. */
const DLQ_ACTIONS = ["list", "replay", "purge"];

/** The command and its arguments; a bare flow file means `run`. */
export function splitCommand(positionals: string[]): [string, string[]] {
  const [first, ...rest] = positionals;
  if (first !== undefined && COMMANDS.includes(first)) return [first, rest];
  if (first !== undefined && !exists(first)) {
    // `replay FLOW` for `dlq replay FLOW`: said as a missing flow file named "replay".
    if (DLQ_ACTIONS.includes(first) && rest.length > 0) {
      throw new UsageError(
        `unknown command "${first}"; did you mean "dlq ${first}" (${
          typedCommand(`dlq ${first} ${rest.join(" ")}`)
        })?`,
      );
    }
    const near = nearest(first, COMMANDS);
    if (near) throw new UsageError(`unknown command "${first}"; did you mean "${near}"?`);
  }
  return ["run", positionals];
}

function exists(path: string): boolean {
  try {
    Deno.statSync(flowPath(path));
    return true;
  } catch {
    return false;
  }
}

/** Refuses arguments a command would otherwise ignore without a word. */
export function noMoreThan(args: string[], n: number, what: string): void {
  if (args.length > n) {
    throw new UsageError(`unexpected argument "${args[n]}": ${what}`);
  }
}

/** The --log-format asked for, read before parsing so a parse error is reported in it. */
export function requestedFormat(argv: string[]): LogFormat {
  const i = argv.indexOf("--log-format");
  return argv.includes("--log-format=json") || (i >= 0 && argv[i + 1] === "json") ? "json" : "text";
}
