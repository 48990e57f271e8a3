import { join } from "node:path";
import { builtinRegistry } from "../builtins.ts";
import { JsonlDeadLetters } from "../adapters/sinks/jsonl_dead_letters.ts";
import { loadFlow } from "../config/load_flow.ts";
import { createLogger, type LogFormat, type Logger, printErr, withContext } from "../engine/log.ts";
import type { DeadLetters } from "../engine/dead_letters.ts";
import { endingError } from "../engine/errors.ts";
import { maskUrl } from "../engine/mask_url.ts";
import {
  type FlowReport,
  inFlight,
  makeReport,
  type RunningFlow,
  startFlow,
} from "../engine/run_flow.ts";
import { StdoutClosedError } from "../adapters/sinks/stdout_sink.ts";
import { type Progress, showProgress } from "./progress.ts";
import { type SignalEvent, watchSignals } from "./signals.ts";
import { formatReport } from "./summary.ts";
import { countHttpRequests } from "./counted_http.ts";
import { FlowWatch } from "./flow_watch.ts";
import { serveWatch, type WatchServer } from "./watch_server.ts";
import { shownPath } from "./user_dir.ts";

/**
 * `deno task run [run] FLOW`: runs a flow to its end, with the live table on a
 * terminal and the summary (or, in json mode, the report line) last. The
 * first SIGINT/SIGTERM drains what was accepted; past `grace` the run is
 * stopped hard (exit 1); a second signal exits at once (130).
 */
export async function runCommand(
  file: string,
  opts: {
    format: LogFormat;
    quiet: boolean;
    grace: number;
    graceText: string;
    log: Logger;
    /** Serve metrics, health and the dashboard here (`--port`, `--host`). */
    watch?: { port: number; hostname: string };
  },
): Promise<number> {
  const { format, quiet } = opts;
  let progress: Progress | undefined;
  // While the live table is up, log lines are printed above it, not drawn over.
  const around = (print: () => void) => progress ? progress.above(print) : print();
  const above = (inner: Logger): Logger => ({
    debug: (m, f) => around(() => inner.debug?.(m, f)),
    info: (m, f) => around(() => inner.info(m, f)),
    warn: (m, f) => around(() => inner.warn(m, f)),
    error: (m, f) => around(() => inner.error(m, f)),
    with: (context) => above(withContext(inner, context)),
  });
  let log = above(opts.log);
  const registry = builtinRegistry();
  const flow = await loadFlow(file, registry);
  let deadLetters: DeadLetters = new JsonlDeadLetters(join(flow.outDir, "dead_letters.jsonl"));
  const token = opts.watch ? Deno.env.get("MILLRACE_TOKEN") || undefined : undefined;
  const watch = opts.watch && new FlowWatch(flow, { replay: token !== undefined });
  let server: WatchServer | undefined;
  if (watch) {
    log = watch.logger(log);
    deadLetters = watch.deadLetters(deadLetters);
    countHttpRequests(registry, (host, status) => watch.metrics.countRequest(host, status));
    server = serveWatch(watch, { ...opts.watch!, token });
    const { hostname, port } = server.addr;
    const url = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}/`;
    log.info(
      `${flow.name}: dashboard, /metrics, /healthz and /readyz on ${url}` +
        (token ? " (bearer token from MILLRACE_TOKEN)" : ""),
      { url, token: token !== undefined },
    );
  }
  let running: RunningFlow | undefined;
  const onSignal = (event: SignalEvent) => {
    if (event === "exit" || !running) {
      log.error(`${flow.name}: ${running ? "second signal" : "signal"}, exiting now`);
      Deno.exit(130);
    }
    if (event === "stop") {
      log.warn(`${flow.name}: stopping: draining what was accepted (signal again to exit now)`);
      running.stop();
    } else {
      running.kill();
    }
  };
  const signals = await watchSignals(opts.grace, onSignal);
  try {
    running = await startFlow(flow, { registry, log, deadLetters, onBatch: watch?.onBatch });
    await watch?.started(running, log);
    // Which Redis, said up front: a flow's `${REDIS_URL:-...}` default is
    // taken without a word when REDIS_URL is unset.
    const redis = flow.durability === "redis" ? maskUrl(flow.redis!) : undefined;
    log.info(
      `${flow.name}: running ${shownPath(file)}` +
        (redis ? ` on Redis ${redis}` : ""),
      {
        sources: flow.sources.length,
        stages: flow.pipeline.length,
        out: shownPath(flow.outDir),
        ...(redis ? { redis } : {}),
      },
    );
    if (format === "text" && !quiet && Deno.stderr.isTerminal()) progress = showProgress(running);
    // A FlowEndingError (stdout's reader gone) ends the run with no report:
    // made here from the live counters, with what it left unfinished.
    const started = running;
    let ended: Error | undefined;
    const report: FlowReport = await running.done.catch((error) => {
      if (!(ended = endingError(error))) throw error;
      return {
        ...makeReport(flow, started.startedAt, true, started.sources, started.stages),
        inFlight: inFlight(flow, started.sources, started.stages),
      };
    });
    progress?.stop();
    const endedLine = ended &&
      `${flow.name}: ${ended.message}: stopped; ${report.inFlight} item` +
        `${report.inFlight === 1 ? "" : "s"} in flight ` +
        (flow.durability === "redis"
          ? "stay pending in Redis and are delivered again on the next run"
          : "were not published");
    const killed = report.killed
      ? `${flow.name}: grace period of ${opts.graceText} ran out: stopped with ` +
        `${report.inFlight} item${report.inFlight === 1 ? "" : "s"} still in flight; ` +
        (flow.durability === "redis"
          ? "they stay pending in Redis and are delivered again on the next run, not lost"
          : "they were not published")
      : undefined;
    if (format === "json") {
      if (killed) log.error(killed, { inFlight: report.inFlight });
      if (endedLine) log.error(endedLine, { inFlight: report.inFlight });
      // The last line is always the report, --quiet or not: it is the result.
      createLogger("json").info(`${flow.name}: ${report.stopped ? "stopped" : "finished"}`, {
        report,
      });
    } else {
      if (!quiet) {
        printErr(formatReport(report));
        const where = flow.durability === "redis"
          ? ` (dead letters in Redis: deno task run dlq list ${shownPath(file)})`
          : " (dead letters in dead_letters.jsonl, with reasons)";
        printErr(
          `output in ${shownPath(flow.outDir)}/` +
            (report.deadLettered ? where : ""),
        );
      }
      if (killed) log.error(killed);
      if (endedLine) log.error(endedLine);
    }
    // 141 = 128 + SIGPIPE: what a shell reports for `cat big | head -2`'s cat.
    if (ended) return ended instanceof StdoutClosedError ? 141 : 1;
    return report.killed || report.sources.some((s) => s.errors > 0) ? 1 : 0;
  } finally {
    progress?.stop();
    signals.close();
    await watch?.finished();
    await server?.close();
    await watch?.close();
    await deadLetters.close?.();
  }
}
