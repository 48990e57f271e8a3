/**
 * The millrace command line.
 *
 *   deno task run [FLOW]           run a flow file (default: flows/demo.yaml)
 *   deno task run check FLOW       validate a flow file without running it
 *   deno task run status FLOW      what a durable flow's streams hold right now
 *   deno task run dlq list FLOW    a flow's dead letters (also: dlq replay, dlq purge)
 *
 * Exit codes: 0 done, 1 failed while running (a source failed, or the grace
 * period after a signal ran out: accepted items went unpublished), 2 bad input
 * (command line, flow file, unreadable source, unreachable service), 130
 * stopped by a second signal.
 */
import { parseArgs } from "node:util";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { builtinRegistry } from "./actors/builtins.ts";
import { JsonlDeadLetters } from "./adapters/jsonl_dead_letters.ts";
import { FlowError, loadFlow } from "./config/load_flow.ts";
import { RedisUnreachableError } from "./adapters/redis_connection.ts";
import {
  type DlqAction,
  dlqCommand,
  NotDurableError,
  resetCommand,
  statusCommand,
  UnknownStageError,
} from "./cli/admin.ts";
import { createLogger, type LogFormat, type Logger } from "./engine/log.ts";
import { FlowStartError, type RunningFlow, startFlow } from "./engine/run_flow.ts";
import { type SignalEvent, watchSignals } from "./cli/signals.ts";
import { fitWidth, formatReport, formatTable } from "./cli/summary.ts";
import { parseDuration } from "./config/units.ts";
import { nearest } from "./config/suggest.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const DEMO = join(HERE, "flows", "demo.yaml");

const USAGE = `millrace: typed dataflow for scrape → validate → dedupe → enrich → embed → publish

usage:
  main.ts run [FLOW] [options]   run a flow file (default: flows/demo.yaml, needs no service)
  main.ts check FLOW...          validate flow files and print their stages, without running them
  main.ts status FLOW [--json]   a durable flow's backlog, pending work, consumers, rates and
                                 dead letters per stage, read from its Redis
  main.ts dlq list FLOW [--stage S] [--limit N] [--json]
                                 dead letters, oldest first (a memory flow: its dead_letters.jsonl)
  main.ts dlq replay FLOW [--stage S]
                                 put dead letters back on the input of the stage that failed them
  main.ts dlq purge FLOW [--stage S]
                                 delete dead letters (all, or one stage's)
  main.ts reset FLOW             delete every Redis key of a durable flow, to start it over
  main.ts help                   this text

options:
  --quiet                 print only warnings and errors (and, with --log-format json, the
                          final report line)
  --log-format text|json  json: one JSON object per line on stderr, errors included, for machines
  --grace DURATION        on SIGINT/SIGTERM, how long to drain before stopping hard (default 30s;
                          past it the run exits 1, reporting the items it abandoned)
  --json                  status, dlq list, dlq replay: print JSON instead of text
  --stage S               dlq: only the dead letters of stage S
  --limit N               dlq list: at most N dead letters (default 100)

exit codes: 0 done, 1 failed while running or stopped hard after --grace, 2 bad input,
130 interrupted twice`;

const COMMANDS = ["run", "check", "status", "dlq", "reset", "help"];

const OPTIONS = {
  quiet: { type: "boolean", default: false },
  "log-format": { type: "string", default: "text" },
  grace: { type: "string", default: "30s" },
  json: { type: "boolean", default: false },
  stage: { type: "string" },
  limit: { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const;

class UsageError extends Error {}

/**
 * Parses leniently, then checks each option itself: node:util's own errors
 * ("Unknown option '--quite'. To specify a positional argument starting
 * with a '-', ...") say nothing about the likely typo.
 */
function parseCommandLine(argv: string[]) {
  const { values, positionals, tokens } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: false,
    tokens: true,
    options: OPTIONS,
  });
  for (const token of tokens) {
    if (token.kind !== "option") continue;
    const spec = (OPTIONS as Record<string, { type: string }>)[token.name];
    if (!spec) {
      const near = token.name.length > 1 ? nearest(token.name, Object.keys(OPTIONS)) : undefined;
      throw new UsageError(
        `unknown option ${token.rawName}${near ? `; did you mean --${near}?` : ""}`,
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
      grace: string;
      json: boolean;
      stage?: string;
      limit?: string;
      help: boolean;
    },
    positionals,
  };
}

/** The command and its arguments; a bare flow file means `run`. */
function splitCommand(positionals: string[]): [string, string[]] {
  const [first, ...rest] = positionals;
  if (first !== undefined && COMMANDS.includes(first)) return [first, rest];
  if (first !== undefined && !exists(first)) {
    const near = nearest(first, COMMANDS);
    if (near) throw new UsageError(`unknown command "${first}"; did you mean "${near}"?`);
  }
  return ["run", positionals];
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Refuses arguments a command would otherwise ignore without a word. */
function noMoreThan(args: string[], n: number, what: string): void {
  if (args.length > n) {
    throw new UsageError(`unexpected argument "${args[n]}": ${what}`);
  }
}

/** The --log-format asked for, read before parsing so a parse error is reported in it. */
function requestedFormat(argv: string[]): LogFormat {
  const i = argv.indexOf("--log-format");
  return argv.includes("--log-format=json") || (i >= 0 && argv[i + 1] === "json") ? "json" : "text";
}

/** An error for a person (`error: ...`) or, in json mode, one JSON line. */
function printError(format: LogFormat, error: Error, hint?: string): void {
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
  console.error(`error: ${error.message}`);
  if (hint) console.error(hint);
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv);
  const format = values["log-format"];
  if (format !== "text" && format !== "json") {
    throw new UsageError(`--log-format must be text or json, got "${format}"`);
  }
  const grace = parseDuration(values.grace);
  if (grace === undefined) {
    throw new UsageError(`--grace takes a duration such as 10s, got "${values.grace}"`);
  }
  if (values.help || positionals[0] === "help") {
    console.log(USAGE);
    return 0;
  }
  const [command, rest] = splitCommand(positionals);
  const log = createLogger(format, values.quiet);
  const registry = builtinRegistry();

  if (command === "check") {
    if (!rest[0]) throw new UsageError("check needs a flow file: main.ts check flows/demo.yaml");
    let failed = 0;
    for (const file of rest) {
      try {
        const flow = await loadFlow(file, registry);
        const stages = flow.pipeline.map((s) => s.id).join(" → ");
        const sources = flow.sources.map((s) => `${s.name} (${s.kind})`).join(", ");
        console.log(`${file}: ok: flow ${flow.name}, ${flow.durability} edges`);
        console.log(`  sources: ${sources}\n  pipeline: ${stages}`);
      } catch (error) {
        if (!(error instanceof FlowError)) throw error;
        failed++;
        printError(format, error);
      }
    }
    if (rest.length > 1) {
      console.log(`${rest.length - failed} of ${rest.length} flow files ok`);
    }
    return failed ? 2 : 0;
  }
  if (command === "status") {
    if (!rest[0]) throw new UsageError("status needs a flow file: main.ts status flows/demo.yaml");
    noMoreThan(rest, 1, "status takes one flow file");
    const flow = await loadFlow(rest[0], registry);
    const result = await statusCommand(flow, { json: values.json });
    console.log(result.text);
    return result.code;
  }
  if (command === "reset") {
    if (!rest[0]) {
      throw new UsageError("reset needs a flow file: main.ts reset flows/demo-durable.yaml");
    }
    noMoreThan(rest, 1, "reset takes one flow file");
    const result = await resetCommand(await loadFlow(rest[0], registry));
    console.log(result.text);
    return result.code;
  }
  if (command === "dlq") {
    const [action, file] = rest;
    if (action !== "list" && action !== "replay" && action !== "purge") {
      const near = action === undefined ? undefined : nearest(action, ["list", "replay", "purge"]);
      throw new UsageError(
        `dlq takes list, replay or purge, got "${action ?? ""}"` +
          (near ? `; did you mean "${near}"?` : ""),
      );
    }
    if (!file) throw new UsageError(`dlq ${action} needs a flow file: main.ts dlq ${action} FLOW`);
    noMoreThan(rest, 2, `dlq ${action} takes one flow file`);
    const limit = values.limit === undefined ? undefined : Number(values.limit);
    if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
      throw new UsageError(`--limit takes a positive whole number, got "${values.limit}"`);
    }
    const flow = await loadFlow(file, registry);
    const result = await dlqCommand(flow, action as DlqAction, {
      stage: values.stage,
      limit,
      json: values.json,
    });
    console.log(result.text);
    return result.code;
  }
  noMoreThan(rest, 1, "run takes one flow file");
  return await run(rest[0] ?? DEMO, {
    format,
    quiet: values.quiet,
    grace,
    graceText: values.grace,
    log,
  });
}

async function run(
  file: string,
  opts: { format: LogFormat; quiet: boolean; grace: number; graceText: string; log: Logger },
): Promise<number> {
  const { format, quiet, log } = opts;
  const registry = builtinRegistry();
  const flow = await loadFlow(file, registry);
  const deadLetters = new JsonlDeadLetters(join(flow.outDir, "dead_letters.jsonl"));
  let running: RunningFlow | undefined;
  let progress: { stop(): void } | undefined;
  const onSignal = (event: SignalEvent) => {
    if (event === "exit" || !running) {
      log.error(`${flow.name}: ${running ? "second signal" : "signal"}, exiting now`);
      Deno.exit(130);
    }
    if (event === "stop") {
      // The table is redrawn in place: take it down for the line, then put it back.
      progress?.stop();
      log.warn(`${flow.name}: stopping: draining what was accepted (signal again to exit now)`);
      if (progress) progress = showProgress(running);
      running.stop();
    } else {
      running.kill();
    }
  };
  const signals = await watchSignals(opts.grace, onSignal);
  try {
    running = await startFlow(flow, { registry, log, deadLetters });
    log.info(`${flow.name}: running ${relative(Deno.cwd(), file) || file}`, {
      sources: flow.sources.length,
      stages: flow.pipeline.length,
      out: relative(Deno.cwd(), flow.outDir),
    });
    if (format === "text" && !quiet && Deno.stderr.isTerminal()) progress = showProgress(running);
    const report = await running.done;
    progress?.stop();
    const killed = report.killed
      ? `${flow.name}: grace period of ${opts.graceText} ran out: stopped with ` +
        `${report.inFlight} item${report.inFlight === 1 ? "" : "s"} still in flight; ` +
        (flow.durability === "redis"
          ? "they stay pending in Redis and are delivered again on the next run, not lost"
          : "they were not published")
      : undefined;
    if (format === "json") {
      if (killed) log.error(killed, { inFlight: report.inFlight });
      // The last line is always the report, --quiet or not: it is the result.
      createLogger("json").info(`${flow.name}: ${report.stopped ? "stopped" : "finished"}`, {
        report,
      });
    } else {
      if (!quiet) {
        console.error(formatReport(report));
        const where = flow.durability === "redis"
          ? ` (dead letters in Redis: main.ts dlq list ${file})`
          : " (dead letters in dead_letters.jsonl, with reasons)";
        console.error(
          `output in ${relative(Deno.cwd(), flow.outDir) || "."}/` +
            (report.deadLettered ? where : ""),
        );
      }
      if (killed) log.error(killed);
    }
    return report.killed || report.sources.some((s) => s.errors > 0) ? 1 : 0;
  } finally {
    progress?.stop();
    signals.close();
    await deadLetters.close();
  }
}

/** Redraws the per-stage table in place a few times a second. */
function showProgress(running: RunningFlow): { stop(): void } {
  const enc = new TextEncoder();
  let lines = 0;
  const draw = () => {
    let table = formatTable(
      running.sources.map((s) => s.toJSON()),
      running.stages.map((s) => s.toJSON()),
      Date.now() - running.startedAt,
    );
    const clear = lines ? `\x1b[${lines}A\x1b[J` : "";
    table = fitWidth(table, columns());
    Deno.stderr.writeSync(enc.encode(clear + table + "\n"));
    lines = table.split("\n").length;
  };
  const timer = setInterval(draw, 250);
  return {
    stop() {
      clearInterval(timer);
      if (lines) Deno.stderr.writeSync(enc.encode(`\x1b[${lines}A\x1b[J`));
      lines = 0;
    },
  };
}

/** The terminal's width; 80 when it cannot be read. */
function columns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (error) {
    const format = requestedFormat(Deno.args);
    const usage = error instanceof UsageError ||
      String((error as { code?: unknown })?.code).startsWith("ERR_PARSE_ARGS");
    if (
      error instanceof FlowError || error instanceof FlowStartError ||
      error instanceof RedisUnreachableError || error instanceof NotDurableError ||
      error instanceof UnknownStageError || usage
    ) {
      printError(format, error as Error, usage ? "run `main.ts help` for usage" : undefined);
      code = 2;
    } else {
      const unexpected = error instanceof Error ? error : new Error(String(error));
      if (format === "json") {
        createLogger("json").error(unexpected.message, { stack: unexpected.stack });
      } else console.error(`error: ${unexpected.stack}`);
      code = 1;
    }
  }
  Deno.exit(code);
}
