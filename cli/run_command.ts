import { builtinRegistry } from "../builtins.ts";
import { loadFlow } from "../config/load_flow.ts";
import { watchHeap } from "./heap_watch.ts";
import { errorMessage } from "../engine/errors.ts";
import type { Flow } from "../engine/flow.ts";
import type { PublishConfig } from "../actors/publisher.ts";
import { type LogFormat, type Logger, withContext } from "../engine/log.ts";
import { countHttpRequests } from "./counted_http.ts";
import { isLoopbackAddress, serveWatch, type WatchServer } from "./watch_server.ts";
import { UsageError } from "./args.ts";
import { flowFailure } from "./exit_code.ts";
import { FlowRun } from "./flow_run.ts";
import { drawsTable, type Progress, showProgress } from "./progress.ts";
import { type SignalEvent, watchSignals } from "./signals.ts";
import { shownPath } from "./user_dir.ts";
import { stdoutKind } from "./stdout_kind.ts";
import { watchFile } from "./watch_file.ts";

/**
 * `deno task run [run] FLOW...`: runs each flow file to its end, side by
 * side in this process, with the live table on a terminal and each flow's
 * summary (or, in json mode, its report line) when it ends. The first
 * SIGINT/SIGTERM drains every flow; past `grace` they are stopped hard
 * (exit 1); a second signal exits at once (130). The exit code is the
 * highest of the flows': non-zero when any failed. With `watch`, a flow
 * file that changes is checked and swapped in after a drain (flow_run.ts).
 */
export async function runCommand(
  files: string[],
  opts: {
    format: LogFormat;
    quiet: boolean;
    grace: number;
    graceText: string;
    log: Logger;
    watch?: boolean;
    /** Serve metrics, health and the dashboard here (`--port`, `--host`). */
    serve?: { port: number; hostname: string };
  },
): Promise<number> {
  const { format, quiet } = opts;
  let progress: Progress | undefined;
  // While the live table is up, log lines are printed above it, not drawn over.
  const around = (print: () => void) => progress ? progress.above(print) : print();
  const registry = builtinRegistry();
  const flows: Flow[] = [];
  for (const file of files) flows.push(await loadFlow(file, registry));
  const names = flows.map((f) => f.name);
  /** Whether a flow's in-flight items outlive this process (what the stop lines then say). */
  const durable = flows.some((f) => f.durability === "redis");
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) {
    throw new UsageError(
      `two flow files are named "${twice}" (${
        files.filter((_, i) => names[i] === twice).map(shownPath).join(", ")
      }); give each flow its own name: a run tells its flows apart by name in every log line, ` +
        `table and report, and, unless their output: and durable.prefix differ, their outputs and ` +
        `Redis keys would mix (or run them as separate processes)`,
    );
  }
  if (opts.serve && flows.length > 1) {
    throw new UsageError(
      `--port serves the dashboard and metrics of one flow file, and ${flows.length} were ` +
        "named: run one process per flow to serve each",
    );
  }
  if (opts.serve && opts.watch) {
    throw new UsageError(
      "--port does not go with --watch: the dashboard and metrics serve one run of a flow",
    );
  }
  const above = (inner: Logger): Logger => ({
    debug: (m, f) => around(() => inner.debug?.(m, f)),
    info: (m, f) => around(() => inner.info(m, f)),
    warn: (m, f) => around(() => inner.warn(m, f)),
    error: (m, f) => around(() => inner.error(m, f)),
    with: (context) => above(withContext(inner, context)),
  });
  // The dashboard and metrics of the one flow, when --port asks for them.
  const token = opts.serve ? Deno.env.get("MILLRACE_TOKEN") : undefined;
  if (token === "") {
    throw new UsageError(
      "MILLRACE_TOKEN is set but empty, which would ask for no token: give it a value " +
        "(e.g. openssl rand -hex 32) or unset it",
    );
  }
  // HTTP clients trim a header's value: a token with a space at either end could never be sent;
  // and a header is bytes, which clients and servers read as different characters past ASCII.
  if (token !== undefined && (token.trim() !== token || !/^[\x21-\x7e]+$/.test(token))) {
    throw new UsageError(
      "MILLRACE_TOKEN may hold only printable ASCII with no spaces, or no request can send it " +
        "as sent (clients trim header values, and read other characters differently); " +
        "e.g. openssl rand -hex 32",
    );
  }
  // Imported only then: prom-client and the dashboard stay unloaded otherwise.
  const watch = opts.serve &&
    new (await import("./flow_watch.ts")).FlowWatch(flows[0], { replay: token !== undefined });
  let server: WatchServer | undefined;
  // In json, each line says which flow it is about; text lines name it already.
  const runs: FlowRun[] = flows.map((flow, i) => {
    let log = above(withContext(opts.log, { flow: flow.name }));
    if (watch) log = watch.logger(log);
    return new FlowRun(files[i], flow, {
      ...opts,
      registry,
      log,
      watch: watch || undefined,
      otherNames: (self) => runs.filter((r) => r !== self).map((r) => r.name),
    });
  });
  // The names now: --watch may have swapped in a flow under another one.
  const current = () => runs.map((r) => r.name).join(", ");
  const onSignal = (event: SignalEvent) => {
    // One flow's lines carry its name in a JSON log, as its own lines do.
    const flowLog = runs.length === 1 ? withContext(opts.log, { flow: runs[0].name }) : opts.log;
    // A flow still opening is stopped once open (FlowRun.stop): only when
    // every flow has ended is there nothing to drain. Grace that runs out
    // while none has opened (Redis away, say) leaves nothing to stop hard.
    const opening = runs.every((r) => r.ended || !r.running);
    if (event === "exit" || runs.every((r) => r.ended) || (event === "kill" && opening)) {
      const what = event === "kill"
        ? "grace period ran out before the flow opened"
        : runs.some((r) => r.running)
        ? "second signal"
        : "signal";
      // A durable flow loses nothing by it: say so, or the exit reads as a loss.
      const kept = durable && runs.some((r) => r.running)
        ? " (what was in flight stays pending in Redis: the next run takes it up)"
        : "";
      around(() => flowLog.error(`${current()}: ${what}, exiting now${kept}`));
      Deno.exit(130);
    }
    if (event === "stop") {
      around(() =>
        flowLog.warn(
          `${current()}: stopping: draining what was accepted (signal again to exit now${
            durable ? "; what is in flight then stays pending in Redis for the next run" : ""
          })`,
        )
      );
      for (const run of runs) run.stop();
    } else {
      for (const run of runs) run.kill();
    }
  };
  // Before the server says where it listens: a signal right after must drain, not kill.
  const signals = await watchSignals(opts.grace, onSignal);
  if (watch) {
    countHttpRequests(registry, (host, status) => watch.metrics.countRequest(host, status));
    try {
      server = serveWatch(watch, { ...opts.serve!, token });
    } catch (error) {
      signals.close();
      const { hostname, port } = opts.serve!;
      if (error instanceof Deno.errors.AddrInUse) {
        throw new UsageError(
          `--port ${port}: ${hostname}:${port} is in use by another program; ` +
            "choose another port (--port 0 takes a free one)",
        );
      }
      if (error instanceof Deno.errors.AddrNotAvailable) {
        throw new UsageError(`--host ${hostname}: not an address of this machine`);
      }
      // Deno says a name it cannot resolve with a plain Error.
      if (/failed to lookup address/i.test(errorMessage(error))) {
        throw new UsageError(`--host ${hostname}: no such host (give an address, e.g. 0.0.0.0)`);
      }
      throw error;
    }
    const { hostname, port } = server.addr;
    const url = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}/`;
    runs[0].log.info(
      `${flows[0].name}: dashboard, /metrics, /healthz and /readyz on ${url}` +
        (token ? " (bearer token from MILLRACE_TOKEN)" : ""),
      { url, token: token !== undefined },
    );
    if (token !== undefined && token.length < 16) {
      runs[0].log.warn(
        `${flows[0].name}: MILLRACE_TOKEN is ${token.length} characters, short enough to guess: ` +
          "use 32 or more random ones (openssl rand -hex 32)",
      );
    }
    if (!token && !isLoopbackAddress(hostname)) {
      runs[0].log.warn(
        `${flows[0].name}: the dashboard on ${url} answers anyone who can reach it: ` +
          "set MILLRACE_TOKEN to ask for a bearer token",
      );
    }
  }
  const watchers = opts.watch
    ? runs.map((run) =>
      watchFile(
        run.file,
        () =>
          run.reload().catch((e) =>
            around(() => opts.log.error(`${run.name}: reload failed: ${e}`))
          ),
      )
    )
    : [];
  const heap = watchHeap((message, fields) =>
    around(() => opts.log.warn(`${current()}: ${message}`, fields))
  );
  try {
    const table = drawsTable({
      text: format === "text" && !quiet,
      stderr: Deno.stderr.isTerminal(),
      stdout: stdoutKind(),
      printsItems: flows.some(printsItems),
    });
    if (table) {
      progress = showProgress(
        () => runs.flatMap((r) => r.running ? [r.running] : []),
        flows.length > 1,
      );
    }
    // With several flows, one that cannot start or fails is said and ends alone: the others
    // went down with it, undrained and unreported (their accepted items with them).
    const codes = await Promise.all(
      runs.map((run) =>
        runs.length === 1 ? run.run() : run.run().catch((error: unknown) => {
          const { code, message } = flowFailure(error);
          run.log.error(message.startsWith(`${run.name}: `) ? message : `${run.name}: ${message}`);
          return code;
        })
      ),
    );
    // Among several summaries, the one that failed is easy to miss: the last line names it.
    const failed = flows.flatMap((f, i) => codes[i] !== 0 ? [`${f.name} (exit ${codes[i]})`] : []);
    if (flows.length > 1 && failed.length > 0) {
      opts.log.error(
        `${failed.length} of ${flows.length} flows did not finish cleanly: ${failed.join(", ")}`,
      );
    }
    return Math.max(...codes);
  } finally {
    progress?.stop();
    heap.close();
    for (const w of watchers) w.close();
    signals.close();
    await watch?.finished();
    await server?.close();
    await watch?.close();
  }
}

/** Whether a flow publishes to the stdout sink. */
function printsItems(flow: Flow): boolean {
  return flow.pipeline.some((stage) =>
    stage.kind === "publish" &&
    (stage.config as PublishConfig).sinks.some((sink) => sink.kind === "stdout")
  );
}
