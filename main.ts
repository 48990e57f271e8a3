/**
 * The millrace command line.
 *
 *   deno task run [FLOW]           run a flow file (default: flows/demo.yaml)
 *   deno task run check FLOW       validate a flow file without running it
 *   deno task run status FLOW      what a durable flow's streams hold right now
 *   deno task run dlq list FLOW    a flow's dead letters (also: dlq replay, dlq purge)
 *
 * Exit codes: 0 done, 1 failed while running, 2 bad input (flow file,
 * unreadable source, unreachable service), 130 stopped by a second signal.
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
} from "./engine/durable/admin.ts";
import { createLogger } from "./engine/log.ts";
import { FlowStartError, type RunningFlow, startFlow } from "./engine/run_flow.ts";
import { formatReport, formatTable } from "./engine/summary.ts";
import { parseDuration } from "./config/units.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const DEMO = join(HERE, "flows", "demo.yaml");

const USAGE = `millrace: typed dataflow for scrape → validate → dedupe → enrich → embed → publish

usage:
  main.ts run [FLOW] [options]   run a flow file (default: flows/demo.yaml, needs no service)
  main.ts check FLOW             validate a flow file and print its stages, without running it
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
  --quiet                 print only warnings, errors and nothing at the end
  --log-format text|json  json: one JSON object per line on stderr, for machines
  --grace DURATION        on SIGINT/SIGTERM, how long to drain before giving up (default 30s)
  --json                  status, dlq list, dlq replay: print JSON instead of text
  --stage S               dlq: only the dead letters of stage S
  --limit N               dlq list: at most N dead letters (default 100)

exit codes: 0 done, 1 failed while running, 2 bad input, 130 interrupted twice`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quiet: { type: "boolean", default: false },
      "log-format": { type: "string", default: "text" },
      grace: { type: "string", default: "30s" },
      json: { type: "boolean", default: false },
      stage: { type: "string" },
      limit: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const format = values["log-format"];
  if (format !== "text" && format !== "json") {
    throw new UsageError(`--log-format must be text or json, got "${format}"`);
  }
  const grace = parseDuration(values.grace);
  if (grace === undefined) {
    throw new UsageError(`--grace takes a duration such as 10s, got "${values.grace}"`);
  }
  const commands = ["run", "check", "status", "dlq", "reset", "help"];
  const [command, ...rest] = commands.includes(positionals[0])
    ? positionals
    : ["run", ...positionals];
  if (values.help || command === "help") {
    console.log(USAGE);
    return 0;
  }
  const log = createLogger(format, values.quiet);
  const registry = builtinRegistry();

  if (command === "check") {
    if (!rest[0]) throw new UsageError("check needs a flow file: main.ts check flows/demo.yaml");
    const flow = await loadFlow(rest[0], registry);
    const stages = flow.pipeline.map((s) => s.id).join(" → ");
    const sources = flow.sources.map((s) => `${s.name} (${s.kind})`).join(", ");
    console.log(`${rest[0]}: ok: flow ${flow.name}, ${flow.durability} edges`);
    console.log(`  sources: ${sources}\n  pipeline: ${stages}`);
    return 0;
  }
  if (command === "status") {
    if (!rest[0]) throw new UsageError("status needs a flow file: main.ts status flows/demo.yaml");
    const flow = await loadFlow(rest[0], registry);
    const result = await statusCommand(flow, { json: values.json });
    console.log(result.text);
    return result.code;
  }
  if (command === "reset") {
    if (!rest[0]) {
      throw new UsageError("reset needs a flow file: main.ts reset flows/demo-durable.yaml");
    }
    const result = await resetCommand(await loadFlow(rest[0], registry));
    console.log(result.text);
    return result.code;
  }
  if (command === "dlq") {
    const [action, file] = rest;
    if (action !== "list" && action !== "replay" && action !== "purge") {
      throw new UsageError(`dlq takes list, replay or purge, got "${action ?? ""}"`);
    }
    if (!file) throw new UsageError(`dlq ${action} needs a flow file: main.ts dlq ${action} FLOW`);
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
  if (command !== "run") throw new UsageError(`unknown command "${command}"`);

  const file = rest[0] ?? DEMO;
  const flow = await loadFlow(file, registry);
  const deadLetters = new JsonlDeadLetters(join(flow.outDir, "dead_letters.jsonl"));
  const running = await startFlow(flow, { registry, log, deadLetters });
  log.info(`${flow.name}: running ${relative(Deno.cwd(), file) || file}`, {
    sources: flow.sources.length,
    stages: flow.pipeline.length,
    out: relative(Deno.cwd(), flow.outDir),
  });
  const progress = format === "text" && !values.quiet && Deno.stderr.isTerminal()
    ? showProgress(running)
    : undefined;
  const unsignal = onSignals(running, grace, log);
  try {
    const report = await running.done;
    progress?.stop();
    if (format === "json") {
      log.info(`${flow.name}: ${report.stopped ? "stopped" : "finished"}`, { report });
    } else if (!values.quiet) {
      console.error(formatReport(report));
      const where = flow.durability === "redis"
        ? ` (dead letters in Redis: main.ts dlq list ${file})`
        : " (dead letters in dead_letters.jsonl, with reasons)";
      console.error(
        `output in ${relative(Deno.cwd(), flow.outDir) || "."}/` +
          (report.deadLettered ? where : ""),
      );
    }
    return report.sources.some((s) => s.errors > 0) ? 1 : 0;
  } finally {
    progress?.stop();
    unsignal();
    await deadLetters.close();
  }
}

/** Redraws the per-stage table in place a few times a second. */
function showProgress(running: RunningFlow): { stop(): void } {
  const enc = new TextEncoder();
  let lines = 0;
  const draw = () => {
    const table = formatTable(
      running.sources.map((s) => s.toJSON()),
      running.stages.map((s) => s.toJSON()),
      Date.now() - running.startedAt,
    );
    const clear = lines ? `\x1b[${lines}A\x1b[J` : "";
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

/**
 * First SIGINT/SIGTERM: stop the sources and let what was accepted drain
 * through every stage; past `grace`, abandon it. Second: exit at once.
 */
function onSignals(running: RunningFlow, grace: number, log: ReturnType<typeof createLogger>) {
  let stopping = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const handler = () => {
    if (stopping) {
      log.error(`${running.flow.name}: second signal, exiting now`);
      Deno.exit(130);
    }
    stopping = true;
    log.warn(
      `${running.flow.name}: stopping: draining what was accepted (signal again to exit now)`,
    );
    running.stop();
    timer = setTimeout(() => {
      log.error(`${running.flow.name}: still draining after ${grace} ms, giving up`);
      running.kill();
    }, grace);
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, handler);
  return () => {
    clearTimeout(timer);
    for (const s of signals) Deno.removeSignalListener(s, handler);
  };
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (error) {
    const usage = error instanceof UsageError ||
      String((error as { code?: unknown })?.code).startsWith("ERR_PARSE_ARGS");
    if (
      error instanceof FlowError || error instanceof FlowStartError ||
      error instanceof RedisUnreachableError || error instanceof NotDurableError || usage
    ) {
      console.error(`error: ${(error as Error).message}`);
      if (usage) console.error("run `main.ts help` for usage");
      code = 2;
    } else {
      console.error(`error: ${error instanceof Error ? error.stack : String(error)}`);
      code = 1;
    }
  }
  Deno.exit(code);
}
