import type { DeadLetters } from "./dead_letters.ts";
import { openRedisRuntime } from "./redis/redis_runtime.ts";
import type { Flow } from "./flow.ts";
import { createLogger, type Logger, withContext } from "./log.ts";
import { openMemoryRuntime } from "./memory_runtime.ts";
import type { Registry } from "./registry.ts";
import { runStageLoop } from "./stage_loop.ts";
import type { SourceStats, SourceStatsJson, StageStats, StageStatsJson } from "./stats.ts";

export { FlowStartError } from "./build_flow.ts";

/** What `runFlow` and `startFlow` need besides the flow. */
export interface RunOptions {
  /** Where the flow's kinds are found: the one the flow was checked against. */
  registry: Registry;
  /** Where the run reports; default text on stderr. */
  log?: Logger;
  /** Where dead letters go in memory mode; the caller owns and closes it. Durable flows use Redis. */
  deadLetters: DeadLetters;
  /** Backoff base for retries in ms (default 100). */
  backoffBase?: number;
  /** Told of every batch a stage handled (items, ms): the metrics' histograms. */
  onBatch?: (stage: StageStats, items: number, ms: number) => void;
  /**
   * A millrace command for this flow as the person who started it would
   * type it (`command("reset")`), for the lines that suggest one; default
   * `deno task run ARGS FILE`. The command line knows their directory and
   * how they reached the repository; the engine does not.
   */
  command?: (args: string) => string;
}

/** What a finished run did, stage by stage (in this process). */
export interface FlowReport {
  /** The flow name. */
  flow: string;
  /** Wall time from start to the end of the drain. */
  durationMs: number;
  /**
   * Wall time building and opening the stages and sinks before the start
   * (an embeddings API's start check waiting out a 429, say): not in durationMs.
   */
  openMs?: number;
  /** True when the run was stopped before its sources were done. */
  stopped: boolean;
  /** Each source's counters, in flow order. */
  sources: SourceStatsJson[];
  /** Each stage's counters, in flow order. */
  stages: StageStatsJson[];
  /** Items the last stage passed on: what reached every sink. */
  published: number;
  /** Items sent to dead letters by every stage (and, over Redis, by a source: see SourceStats). */
  deadLettered: number;
  /** True when `kill` ended the run: work in hand was abandoned. */
  killed: boolean;
  /**
   * Items this process had accepted but not finished when killed: never
   * published. In memory they are gone; in a durable flow they stay pending
   * in Redis and are delivered again. 0 unless `killed`.
   */
  inFlight: number;
}

/** A flow that is running: live counters, and the two ways to stop it. */
export interface RunningFlow {
  /** The flow being run. */
  readonly flow: Flow;
  /** Each source's live counters. */
  readonly sources: readonly SourceStats[];
  /** Each stage's live counters. */
  readonly stages: readonly StageStats[];
  /** Epoch ms the run started. */
  readonly startedAt: number;
  /** Items waiting on each stage's input, in memory; undefined for Redis edges (ask Redis). */
  backlog?(): number[];
  /** Graceful: sources stop, edges drain, windows flush, sinks close. */
  stop(): void;
  /** At once: work in hand is abandoned (never acknowledged in durable mode). */
  kill(): void;
  /** Resolves with the report once the run has ended, however it ended. */
  readonly done: Promise<FlowReport>;
}

/** Summarises counters into the report a finished run returns. */
export function makeReport(
  flow: Flow,
  startedAt: number,
  stopped: boolean,
  sources: readonly SourceStats[],
  stages: readonly StageStats[],
): FlowReport {
  return {
    flow: flow.name,
    durationMs: Date.now() - startedAt,
    stopped,
    sources: sources.map((s) => s.toJSON()),
    stages: stages.map((s) => s.toJSON()),
    published: stages[stages.length - 1].emitted,
    deadLettered: stages.reduce(
      (n, s) => n + s.rejectedTotal + s.failed,
      sources.reduce((n, s) => n + s.deadLettered, 0),
    ),
    killed: false,
    inFlight: 0,
  };
}

/**
 * Items accepted but not finished. In memory, whatever the sources emitted
 * and no stage published, dropped or dead-lettered is in a stage or on an
 * edge. In a durable flow the edges are Redis streams, where nothing is
 * lost, so only what the stages hold counts.
 */
export function inFlight(
  flow: Flow,
  sources: readonly SourceStats[],
  stages: readonly StageStats[],
): number {
  const settled = (s: StageStats) => s.droppedTotal + s.rejectedTotal + s.failed;
  if (flow.durability === "redis") {
    return stages.reduce((n, s) => n + Math.max(0, s.received - s.emitted - settled(s)), 0);
  }
  const emitted = sources.reduce((n, s) => n + s.emitted, 0);
  const finished = stages.reduce((n, s) => n + settled(s), stages[stages.length - 1].emitted);
  return Math.max(0, emitted - finished);
}

/**
 * Builds every component of a checked flow, opens them, then runs it: the
 * sources' pump and one stage loop per step, joined by the edges of the
 * flow's mode (bounded channels in memory, Redis Streams with `durability:
 * redis`). Any build or open failure is a FlowStartError before a single
 * item moves.
 */
export async function startFlow(flow: Flow, opts: RunOptions): Promise<RunningFlow> {
  const log = withContext(opts.log ?? createLogger(), { flow: flow.name });
  const opening = Date.now();
  const stopCtl = new AbortController();
  const killCtl = new AbortController();
  const signals = { log, stop: stopCtl.signal, kill: killCtl.signal };
  const runtime = flow.durability === "redis"
    ? await openRedisRuntime(flow, { ...opts, ...signals })
    : await openMemoryRuntime(flow, { ...opts, ...signals });
  const stats = runtime.built.stages.map((s) => s.stats);
  const onBatch = opts.onBatch;
  if (onBatch) { for (const s of stats) s.onBatch = (items, ms) => onBatch(s, items, ms); }
  const startedAt = Date.now();
  const openMs = startedAt - opening;
  let drained = false;
  const watching = runtime.drained?.then((d) => {
    drained = d;
    if (d) stopCtl.abort();
  });

  const done = (async (): Promise<FlowReport> => {
    // The failure that ended the run: the first, not the first in the list
    // of tasks; the ones after it are its echoes (a stage before it whose
    // send it cut: "send on a closed channel").
    let cause: { error: unknown } | undefined;
    const tasks = [runtime.pump(), ...runtime.loops.map(runStageLoop)].map((task) =>
      task.catch((error) => {
        cause ??= { error };
        // A step that dies takes the flow with it: stop everything rather
        // than let the steps before it wait for ever on a full edge.
        killCtl.abort(error);
        stopCtl.abort();
        runtime.kill();
        throw error;
      })
    );
    try {
      await Promise.allSettled(tasks);
      if (cause) throw cause.error;
      if (drained) await runtime.confirmDrained?.();
      const stopped = runtime.drained ? !drained : stopCtl.signal.aborted;
      return { ...makeReport(flow, startedAt, stopped, runtime.sources, stats), openMs };
    } finally {
      stopCtl.abort();
      await watching?.catch(() => {});
      await runtime.built.close();
      await runtime.close();
    }
  })();

  return runningFlow({
    flow,
    sources: runtime.sources,
    stages: stats,
    startedAt,
    stopCtl,
    killCtl,
    done,
    onKill: () => runtime.kill(),
    ...(runtime.inFlight ? { inFlight: runtime.inFlight } : {}),
    ...(runtime.backlog ? { backlog: runtime.backlog } : {}),
  });
}

/** The handle of a started flow: live counters, and stop/kill wired to its two signals. */
export function runningFlow(parts: {
  flow: Flow;
  sources: readonly SourceStats[];
  stages: readonly StageStats[];
  startedAt: number;
  stopCtl: AbortController;
  killCtl: AbortController;
  done: Promise<FlowReport>;
  /** Extra work of a kill, such as ending blocked reads at once. */
  onKill?: () => void;
  backlog?: () => number[];
  /** The runtime's own count of what is in flight (Runtime.inFlight). */
  inFlight?: () => number;
}): RunningFlow {
  const { stopCtl, killCtl, onKill, inFlight: held, ...rest } = parts;
  // Set only when the kill came first: a run a stage failure already ended
  // still reports that failure.
  let killed = false;
  const killedReport = (report?: FlowReport): FlowReport => ({
    ...(report ?? makeReport(rest.flow, rest.startedAt, true, rest.sources, rest.stages)),
    stopped: true,
    killed: true,
    inFlight: held?.() ?? inFlight(rest.flow, rest.sources, rest.stages),
  });
  // A kill makes every blocked send and read throw; those errors are how the
  // run stops, not what went wrong, so the run still ends with a report.
  const ended = rest.done.then(
    (report) => killed ? killedReport(report) : report,
    (error) => {
      if (killed) return killedReport();
      throw error;
    },
  );
  // A kill does not wait past KILL_SETTLE_MS for calls that cannot end
  // sooner (a Redis that stopped answering: each call waits out its reply
  // timeout): the report is made from the counters, and what is left
  // behind ends on its own, or with the process.
  let settle: (report: FlowReport) => void = () => {};
  const cut = new Promise<FlowReport>((resolve) => settle = resolve);
  const done = Promise.race([ended, cut]);
  return {
    ...rest,
    done,
    stop: () => stopCtl.abort(),
    kill: () => {
      if (!killCtl.signal.aborted) {
        killed = true;
        const timer = setTimeout(() => settle(killedReport()), KILL_SETTLE_MS);
        ended.finally(() => clearTimeout(timer)).catch(() => {});
      }
      stopCtl.abort();
      killCtl.abort(new Error("killed"));
      onKill?.();
    },
  };
}

/** How long a killed run's report waits for its tasks to end before it is made without them. */
export const KILL_SETTLE_MS = 2_000;

/** Runs a flow to the end (or until `signal` asks it to stop gracefully). */
export async function runFlow(
  flow: Flow,
  opts: RunOptions & { signal?: AbortSignal },
): Promise<FlowReport> {
  const running = await startFlow(flow, opts);
  opts.signal?.addEventListener("abort", () => running.stop(), { once: true });
  if (opts.signal?.aborted) running.stop();
  return running.done;
}
