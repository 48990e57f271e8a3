import { builtinRegistry } from "../builtins.ts";
import { loadFlow } from "../config/load_flow.ts";
import type { LogFormat, Logger } from "../engine/log.ts";
import { UsageError } from "./args.ts";
import { FlowRun } from "./flow_run.ts";
import { type Progress, showProgress } from "./progress.ts";
import { type SignalEvent, watchSignals } from "./signals.ts";
import { shownPath } from "./user_dir.ts";
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
  },
): Promise<number> {
  const { format, quiet } = opts;
  let progress: Progress | undefined;
  // While the live table is up, log lines are printed above it, not drawn over.
  const around = (print: () => void) => progress ? progress.above(print) : print();
  const registry = builtinRegistry();
  const flows = [];
  for (const file of files) flows.push(await loadFlow(file, registry));
  const names = flows.map((f) => f.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) {
    throw new UsageError(
      `two flow files are named "${twice}" (${
        files.filter((_, i) => names[i] === twice).map(shownPath).join(", ")
      }); give each flow its own name: their outputs and Redis keys would mix`,
    );
  }
  const runs: FlowRun[] = flows.map((flow, i) => {
    // In json, each line says which flow it is about; text lines name it already.
    const field = (f?: Record<string, unknown>) =>
      format === "json" ? { flow: runs[i].name, ...f } : f;
    const log: Logger = {
      info: (m, f) => around(() => opts.log.info(m, field(f))),
      warn: (m, f) => around(() => opts.log.warn(m, field(f))),
      error: (m, f) => around(() => opts.log.error(m, field(f))),
    };
    return new FlowRun(files[i], flow, { ...opts, registry, log });
  });
  const onSignal = (event: SignalEvent) => {
    if (event === "exit" || runs.every((r) => !r.running)) {
      const what = runs.some((r) => r.running) ? "second signal" : "signal";
      around(() => opts.log.error(`${names.join(", ")}: ${what}, exiting now`));
      Deno.exit(130);
    }
    if (event === "stop") {
      around(() =>
        opts.log.warn(
          `${names.join(", ")}: stopping: draining what was accepted (signal again to exit now)`,
        )
      );
      for (const run of runs) run.stop();
    } else {
      for (const run of runs) run.kill();
    }
  };
  const signals = await watchSignals(opts.grace, onSignal);
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
  try {
    if (format === "text" && !quiet && Deno.stderr.isTerminal()) {
      progress = showProgress(() => runs.flatMap((r) => r.running ? [r.running] : []));
    }
    const codes = await Promise.all(runs.map((run) => run.run()));
    return Math.max(...codes);
  } finally {
    progress?.stop();
    for (const w of watchers) w.close();
    signals.close();
  }
}
