import { fileURLToPath } from "node:url";
import { builtinRegistry } from "../builtins.ts";
import { loadFlow } from "../config/load_flow.ts";
import { MAX_TIMER_MS, parseDuration } from "../config/units.ts";
import { nearest } from "../config/suggest.ts";
import {
  consoleExport,
  createLogger,
  LOG_LEVELS,
  type LogLevel,
  printOut,
  terminalSafe,
} from "../engine/log.ts";
import { type DlqAction, dlqCommand, resetCommand, statusCommand } from "./admin.ts";
import { checkOptions, noMoreThan, parseCommandLine, splitCommand, UsageError } from "./args.ts";
import { checkCommand } from "./check_command.ts";
import { confirmer } from "./confirm.ts";
import { USAGE } from "./help.ts";
import { runCommand } from "./run_command.ts";
import { testCommand } from "./test_command.ts";
import { exampleCommand, flowPath } from "./user_dir.ts";
import { versionText } from "./version.ts";

/**
 * status, dlq and reset read a flow's Redis keys and build none of its
 * sources and stages: they need none of the secrets those configs take.
 */
const ADMIN = { components: false };
const DEMO = fileURLToPath(new URL("../flows/demo.yaml", import.meta.url));

/**
 * Runs the command a command line names, with its arguments checked first,
 * and returns its exit code. Errors are thrown for main.ts to report. Flow
 * paths are read from the directory the command was typed in (user_dir.ts).
 */
export async function dispatch(argv: string[]): Promise<number> {
  const { values, positionals, given } = parseCommandLine(argv);
  const format = values["log-format"];
  if (format !== "text" && format !== "json") {
    throw new UsageError(`--log-format must be text or json, got "${format}"`);
  }
  const grace = parseDuration(values.grace);
  if (grace === undefined || grace > MAX_TIMER_MS) {
    throw new UsageError(
      `--grace takes a duration such as 10s, at most 24d, got "${values.grace}"`,
    );
  }
  // `--help` after any command line prints the help, as commands conventionally do; `help`
  // and `--version` take nothing else, said rather than ignored (a flow given with --version
  // ran nothing and exited 0).
  if (!values.help && (positionals[0] === "help" || values.version)) {
    const what = positionals[0] === "help" ? "help" : "--version";
    const extra = what === "help" ? positionals[1] : positionals[0];
    if (extra !== undefined) {
      throw new UsageError(`unexpected argument "${extra}": ${what} takes none`);
    }
    checkOptions(what, given);
  }
  if (values.help || positionals[0] === "help") {
    printOut(USAGE);
    return 0;
  }
  if (values.version) {
    printOut(versionText());
    return 0;
  }
  const [command, rest] = splitCommand(positionals);
  checkOptions(command === "dlq" ? `dlq ${rest[0]}` : command, given);
  if (values.quiet && values["log-level"] !== undefined) {
    // Two answers to one question: which one was meant is a guess.
    throw new UsageError("--quiet is --log-level warn: give one of them, not both");
  }
  const level = values["log-level"] ?? (values.quiet ? "warn" : "info");
  if (!LOG_LEVELS.includes(level as LogLevel)) {
    throw new UsageError(`--log-level must be ${LOG_LEVELS.join(", ")}, got "${level}"`);
  }
  const log = createLogger(format, { level: level as LogLevel });
  const registry = builtinRegistry();

  if (command === "check") {
    if (!rest[0]) {
      throw new UsageError(
        `check needs a flow file: ${exampleCommand("check", "flows/demo.yaml")}`,
      );
    }
    return await checkCommand(rest.map(flowPath), registry, format);
  }
  if (command === "test") {
    if (!rest[0]) {
      throw new UsageError(
        `test needs flow test files or folders: ${exampleCommand("test", "flows")}`,
      );
    }
    return await testCommand(rest.map(flowPath), format);
  }
  if (command === "status") {
    if (!rest[0]) {
      throw new UsageError(
        `status needs a flow file: ${exampleCommand("status", "flows/demo-durable.yaml")}`,
      );
    }
    noMoreThan(rest, 1, "status takes one flow file");
    const flow = await loadFlow(flowPath(rest[0]), registry, Deno.env.toObject(), ADMIN);
    const result = await statusCommand(flow, { json: values.json });
    printOut(terminalSafe(result.text));
    return result.code;
  }
  if (command === "reset") {
    if (!rest[0]) {
      throw new UsageError(
        `reset needs a flow file: ${exampleCommand("reset", "flows/demo-durable.yaml")}`,
      );
    }
    noMoreThan(rest, 1, "reset takes one flow file");
    const flow = await loadFlow(flowPath(rest[0]), registry, Deno.env.toObject(), ADMIN);
    // A memory flow has nothing to reset: say so before asking for --yes.
    const confirm = flow.durability === "redis"
      ? confirmer(values.yes, "reset", `every Redis key of flow ${flow.name}`)
      : undefined;
    const result = await resetCommand(flow, { confirm, force: values.force });
    printOut(terminalSafe(result.text));
    return result.code;
  }
  if (command === "dlq") {
    const [action, file] = rest;
    if (action !== "list" && action !== "replay" && action !== "purge") {
      const near = action === undefined ? undefined : nearest(action, ["list", "replay", "purge"]);
      throw new UsageError(
        action === undefined
          ? `dlq takes list, replay or purge and a flow file: ${exampleCommand("dlq list FLOW")}`
          : `dlq takes list, replay or purge, got "${action}"` +
            (near ? `; did you mean "${near}"?` : ""),
      );
    }
    if (!file) {
      throw new UsageError(
        `dlq ${action} needs a flow file: ${exampleCommand(`dlq ${action} FLOW`)}`,
      );
    }
    noMoreThan(rest, 2, `dlq ${action} takes one flow file`);
    const limit = values.limit === undefined ? undefined : Number(values.limit);
    if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
      throw new UsageError(`--limit takes a positive whole number, got "${values.limit}"`);
    }
    const flow = await loadFlow(flowPath(file), registry, Deno.env.toObject(), ADMIN);
    const confirm = action === "purge" && flow.durability === "redis"
      ? confirmer(
        values.yes,
        "dlq purge",
        `the dead letters${values.stage ? ` of stage ${values.stage}` : ""} of flow ${flow.name}`,
      )
      : undefined;
    const result = await dlqCommand(flow, action as DlqAction, {
      stage: values.stage,
      into: values.into,
      limit,
      json: values.json,
      confirm,
    });
    printOut(terminalSafe(result.text));
    return result.code;
  }
  if (consoleExport() === "capture") {
    log.info(
      "OTEL_DENO_CONSOLE=capture (the default): warnings and errors are exported at their " +
        "level, info lines are not (Deno would print them on stdout); set " +
        "OTEL_DENO_CONSOLE=replace to export every line at its level",
    );
  }
  return await runCommand(rest.length === 0 ? [DEMO] : rest.map(flowPath), {
    format,
    quiet: level === "warn" || level === "error",
    grace,
    graceText: values.grace,
    log,
    watch: values.watch,
    serve: serveOptions(values.port, values.host),
  });
}

/** `--port N [--host H]`: where the HTTP server listens; none without --port. */
function serveOptions(
  port?: string,
  host?: string,
): { port: number; hostname: string } | undefined {
  if (port === undefined) {
    if (host !== undefined) {
      throw new UsageError("--host needs --port: run FLOW --port 9464 --host H");
    }
    return undefined;
  }
  const n = Number(port);
  if (!/^\d+$/.test(port) || n > 65535) {
    throw new UsageError(`--port takes a port number 0-65535 (0: any free port), got "${port}"`);
  }
  return { port: n, hostname: host ?? "127.0.0.1" };
}
