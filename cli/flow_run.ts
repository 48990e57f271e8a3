import { existsSync } from "node:fs";
import { join } from "node:path";
import { JsonlDeadLetters } from "../adapters/sinks/jsonl_dead_letters.ts";
import { StdoutClosedError } from "../adapters/sinks/stdout_sink.ts";
import { FlowError, loadFlow } from "../config/load_flow.ts";
import { endingError } from "../engine/errors.ts";
import { type Flow, isPolling } from "../engine/flow.ts";
import { createLogger, type LogFormat, type Logger } from "../engine/log.ts";
import { maskUrl, maskUrlsIn } from "../engine/mask_url.ts";
import { FlowStartError } from "../engine/build_flow.ts";
import { RedisLostWritesError } from "../engine/redis/redis_runtime.ts";
import { RedisLostFlowError } from "../engine/redis/until_redis.ts";
import { isNoPermission } from "../engine/redis/no_permission.ts";
import type { Registry } from "../engine/registry.ts";
import {
  type FlowReport,
  inFlight,
  makeReport,
  type RunningFlow,
  startFlow,
} from "../engine/run_flow.ts";
import { DEAD_LETTERS_FILE, type DeadLetters } from "../engine/dead_letters.ts";
import type { FlowWatch } from "./flow_watch.ts";
import { formatReport } from "./summary.ts";
import { shortRetentions } from "./short_retention.ts";
import { noPublish } from "./no_publish.ts";
import { unusedRedis } from "./unused_redis.ts";
import {
  shownFlowError,
  shownPath,
  shownPlace,
  shownStartError,
  typedCommand,
} from "./user_dir.ts";
import { type Waiting, waitingInRedis } from "./waiting_in_redis.ts";

export interface FlowRunOptions {
  registry: Registry;
  format: LogFormat;
  quiet: boolean;
  graceText: string;
  /** Logs above the live table; each flow's lines carry its name. */
  log: Logger;
  /** The dashboard and metrics watching this flow (`--port`). */
  watch?: FlowWatch;
  /** The names of the other flows of this run, which an edit may not take. */
  otherNames?: (self: FlowRun) => string[];
}

/**
 * One flow file of `deno task run`, run to its end: its start line, its
 * summary and its exit code. `reload` (--watch) checks the file again and,
 * when it is valid, drains the running flow and starts the new one in its
 * place; an invalid file is refused and the running flow goes on.
 */
export class FlowRun {
  running?: RunningFlow;
  /** run() returned: nothing of this flow is left to drain. */
  ended = false;
  #flow: Flow;
  #next?: Flow;
  #stopping = false;
  #killed = false;
  #reloading = Promise.resolve();

  constructor(readonly file: string, flow: Flow, private readonly opts: FlowRunOptions) {
    this.#flow = flow;
  }

  /** This flow's logger: above the live table, its name on each line. */
  get log(): Logger {
    return this.opts.log;
  }

  get name(): string {
    return this.#flow.name;
  }

  /** Runs the flow (and the flows swapped in for it) to the end; resolves to its exit code. */
  async run(): Promise<number> {
    try {
      return await this.#runAll();
    } finally {
      this.ended = true;
    }
  }

  async #runAll(): Promise<number> {
    // The flow that ran before a swap: run again if the new one cannot start.
    let previous: Flow | undefined;
    let swap: { oldPublished: number } | undefined;
    for (;;) {
      let result: { code: number; report: FlowReport };
      try {
        result = await this.#runOnce(this.#flow, swap);
      } catch (error) {
        // An edit that checks can still fail to open (a sink it cannot reach,
        // Redis refusing a fuse): the run goes on with the flow it had.
        if (!(error instanceof FlowStartError) || !previous || this.#stopping) throw error;
        this.#say(
          "error",
          `${this.name}: the new ${shownPath(this.file)} could not start, so the flow it ` +
            `replaced runs again: ${maskUrlsIn(shownStartError(error).message)}`,
        );
        this.#flow = previous;
        previous = undefined;
        swap = undefined;
        continue;
      }
      const next = this.#next;
      this.#next = undefined;
      if (!next || this.#stopping) return result.code;
      swap = { oldPublished: result.report.published };
      previous = this.#flow;
      this.#flow = next;
    }
  }

  /** The first signal: drain what was accepted, and swap nothing in. */
  stop(): void {
    this.#stopping = true;
    this.running?.stop();
  }

  /** Grace ran out: stop hard, now or as soon as the flow is open. */
  kill(): void {
    this.#stopping = true;
    this.#killed = true;
    this.running?.kill();
  }

  /** The file changed: check it, then swap it in after a drain, or say why not. */
  reload(): Promise<void> {
    this.#reloading = this.#reloading.then(async () => {
      if (this.#stopping) return;
      let flow: Flow;
      try {
        flow = await loadFlow(this.file, this.opts.registry);
      } catch (error) {
        if (!(error instanceof FlowError)) throw error;
        this.#say(
          "error",
          `${this.name}: ${shownPath(this.file)} changed but cannot be loaded; ` +
            `the running flow goes on:\n${shownFlowError(error).message}`,
        );
        return;
      }
      const taken = this.opts.otherNames?.(this) ?? [];
      if (taken.includes(flow.name)) {
        this.#say(
          "error",
          `${this.name}: ${shownPath(this.file)} changed to name its flow "${flow.name}", as ` +
            `another flow file of this run does: their outputs and Redis keys would mix; the ` +
            `running flow goes on`,
        );
        return;
      }
      const moved = durableMove(this.#flow, flow);
      if (moved) {
        this.#say(
          "error",
          `${this.name}: ${shownPath(this.file)} changed the durable flow's ${moved}: what waits ` +
            `in Redis under the old one would be left there, and the sources read again under ` +
            `the new; the running flow goes on (stop it, and start the new file, to move on)`,
        );
        return;
      }
      this.#next = flow;
      this.#say(
        "info",
        `${this.name}: ${shownPath(this.file)} changed: draining the running flow to swap in ` +
          `the new one`,
      );
      this.running?.stop();
    });
    return this.#reloading;
  }

  #say(level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>): void {
    this.opts.log[level](message, fields);
  }

  /** Runs `flow` once; `swap`, when it replaces a flow that drained, says so once it started. */
  async #runOnce(
    flow: Flow,
    swap?: { oldPublished: number },
  ): Promise<{ code: number; report: FlowReport }> {
    const { format, quiet, registry } = this.opts;
    const log = this.opts.log;
    const file = this.file;
    const watch = this.opts.watch;
    const letterFile = new JsonlDeadLetters(join(flow.outDir, DEAD_LETTERS_FILE));
    let deadLetters: DeadLetters = letterFile;
    if (watch) deadLetters = watch.deadLetters(deadLetters);
    try {
      const running = this.running = await startFlow(flow, {
        registry,
        log,
        deadLetters,
        onBatch: watch?.onBatch,
        command: (args) => typedCommand(args, file),
      });
      if (swap) this.#say("info", `${flow.name}: swapped in the new ${shownPath(file)}`, swap);
      await watch?.started(running, log);
      // A signal, or an edit saved while this flow was starting, stops it at once.
      if (this.#killed) running.kill();
      else if (this.#stopping || this.#next) running.stop();
      // Which Redis, said up front: a flow's `${REDIS_URL:-...}` default is
      // taken without a word when REDIS_URL is unset.
      const redis = flow.durability === "redis" ? maskUrl(flow.redis!) : undefined;
      log.info(
        `${flow.name}: running ${shownPath(file)}` + (redis ? ` on Redis ${redis}` : ""),
        {
          sources: flow.sources.length,
          stages: flow.pipeline.length,
          out: shownPath(flow.outDir),
          ...(redis ? { redis } : {}),
        },
      );
      for (const w of [...shortRetentions(flow), ...noPublish(flow), ...unusedRedis(flow)]) {
        log.warn(`${flow.name}: ${shownPlace(file, w)}${w.message}`);
      }
      // A FlowEndingError (stdout's reader gone) ends the run with no report,
      // and so does Redis giving work back after the flow drained, or losing
      // the flow's streams: made here from the live counters, with what it
      // left unfinished.
      let ended: Error | undefined;
      let unfinished: RedisLostWritesError | RedisLostFlowError | undefined;
      const report: FlowReport = await running.done.catch((error) => {
        if (error instanceof RedisLostWritesError || error instanceof RedisLostFlowError) {
          unfinished = error;
        } else if (!(ended = endingError(error))) throw error;
        return {
          ...makeReport(flow, running.startedAt, true, running.sources, running.stages),
          inFlight: inFlight(flow, running.sources, running.stages),
        };
      });
      // Named once: a Redis call's error starts with what made it, the flow's name first.
      const endedLine = ended &&
        `${ownLine(flow.name, ended.message)}: stopped; ${report.inFlight} item` +
          `${report.inFlight === 1 ? "" : "s"} in flight ` +
          (flow.durability === "redis"
            ? "stay pending in Redis and are delivered again on the next run"
            : "were not published");
      // Letters a failed write did not record: said, each as the line it would have been, since
      // that is all there is of their items (they are counted among the dead letters).
      const unwritten = letterFile.unwritten;
      const unwrittenLine = unwritten.length > 0 &&
        `${flow.name}: ${unwritten.length} dead letter${unwritten.length === 1 ? "" : "s"} ` +
          `could not be written to ${shownPath(letterFile.path)}; each as its line would have ` +
          "been, to add to the file by hand:";
      // Killed holding nothing: only the goodbye (a sink's close, Redis's last answers) was cut.
      const idle = report.killed && report.inFlight === 0;
      const killed = idle
        ? `${flow.name}: grace period of ${this.opts.graceText} ran out with no item in flight: ` +
          "what was left undone was the goodbye to Redis or a sink, which did not answer in time"
        : report.killed
        ? `${flow.name}: grace period of ${this.opts.graceText} ran out: stopped with ` +
          `${report.inFlight} item${report.inFlight === 1 ? "" : "s"} still in flight; ` +
          (flow.durability === "redis"
            ? "they stay pending in Redis and are delivered again on the next run, not lost"
            // A sink's write under way is not cut short by the stop: its items may be in the
            // output, uncounted (a review found 500 of 540 such items in items.jsonl).
            : "they are lost, but for those a sink was writing as it ran out, which may be in " +
              "its output though not counted as published")
        : undefined;
      const swapped = this.#next !== undefined && !this.#stopping;
      // A durable process that drains finishes only the batches it holds:
      // what waits on the Redis edges stays for the next run, or another
      // process, and the summary alone would read like the whole of the work.
      // Asked only when the line is printed (not under --quiet in text): it costs a connection.
      const left = flow.durability === "redis" && report.stopped && !report.killed &&
          !ended && !swapped && !(unfinished instanceof RedisLostFlowError) &&
          (format === "json" || !quiet)
        ? (await waitingInRedis(flow)) ?? null
        : undefined;
      const waiting = left === undefined ? undefined : waitingLine(flow.name, file, left);
      if (format === "json") {
        if (waiting) log.info(waiting, left === null ? {} : { waiting: left });
        if (killed) log[idle ? "warn" : "error"](killed, { inFlight: report.inFlight });
        if (endedLine) log.error(endedLine, { inFlight: report.inFlight });
        if (unwrittenLine) {
          log.error(unwrittenLine, { letters: unwritten.map((l) => JSON.parse(l)) });
        }
        if (unfinished) log.error(unfinished.message);
        // The last line of a flow is always its report, --quiet or not: it is the result.
        createLogger("json").info(
          `${flow.name}: ${swapped ? "swapped out" : report.stopped ? "stopped" : "finished"}`,
          { flow: flow.name, report },
        );
      } else {
        if (!quiet) {
          log.info(formatReport(report));
          const where = unfinished instanceof RedisLostFlowError
            ? " (the dead letters were in Redis, which no longer holds them)"
            : flow.durability === "redis"
            ? ` (dead letters in Redis: ${typedCommand("dlq list", file)})`
            : unwritten.length >= report.deadLettered
            ? " (its dead letters could not be written: see below)"
            : unwritten.length > 0
            ? ` (dead letters in dead_letters.jsonl, with reasons, but for ${unwritten.length}: ` +
              "see below)"
            : " (dead letters in dead_letters.jsonl, with reasons)";
          // Not where nothing was written (sinks elsewhere, or none): it named a directory
          // that was not there.
          if (report.deadLettered || existsSync(flow.outDir)) {
            log.info(`output in ${shownPath(flow.outDir)}/` + (report.deadLettered ? where : ""));
          }
          if (waiting) log.info(waiting);
        }
        if (killed) log[idle ? "warn" : "error"](killed);
        if (endedLine) log.error(endedLine);
        if (unwrittenLine) {
          log.error(unwrittenLine);
          // Whatever the log level (--quiet): they are all there is of their items.
          for (const line of unwritten) console.error(line);
        }
        if (unfinished) log.error(unfinished.message);
      }
      // 141 = 128 + SIGPIPE: what a shell reports for `cat big | head -2`'s cat.
      // A right Redis's user lacks is bad input, as a password it refused at the start.
      const code = ended
        ? (ended instanceof StdoutClosedError ? 141 : isNoPermission(ended) ? 2 : 1)
        : (report.killed && !idle) || unfinished || failedSource(flow, report)
        ? 1
        : 0;
      return { code, report };
    } finally {
      this.running = undefined;
      await deadLetters.close?.();
    }
  }
}

/**
 * Whether a source's failed read fails the run: in a run that finished, any
 * (what it should have read is not there); in one stopped, a one-shot
 * source's, which never reads again, or a polled source's last read. A
 * polled source tries again at its next tick: a flow that met one 500 in a
 * week must not exit 1 at every stop.
 */
function failedSource(flow: Flow, report: FlowReport): boolean {
  const polled = new Set(flow.sources.filter(isPolling).map((s) => s.name));
  return report.sources.some((s) =>
    s.errors > 0 && (!report.stopped || !polled.has(s.name) || s.failing === true)
  );
}

/**
 * What of a durable flow's place in Redis (its durability, Redis, prefix or
 * name) `next` changes, as `what (old to new)`; undefined when none. A swap
 * drains what this process holds, not the flow: the entries waiting on its
 * edges stay where they are, for a flow at the same place to go on with.
 */
function durableMove(running: Flow, next: Flow): string | undefined {
  if (running.durability !== "redis") return undefined;
  const changes: [string, string | undefined, string | undefined][] = [
    ["durability", running.durability, next.durability],
    ["Redis", running.redis && maskUrl(running.redis), next.redis && maskUrl(next.redis)],
    ["durable.prefix", running.durable.prefix, next.durable.prefix],
    ["name", running.name, next.name],
  ];
  const changed = changes.find(([, was, now]) => was !== now);
  return changed && `${changed[0]} (${changed[1]} to ${changed[2]})`;
}

/**
 * What a drained durable run left in Redis, in a line: a drain finishes the
 * batches the process holds, not the flow, and the summary alone would read
 * like the whole of the work. `null`: Redis did not say in time.
 */
function waitingLine(name: string, file: string, left: Waiting | null): string {
  const status = typedCommand("status", file);
  if (left === null) {
    return `${name}: stopped: what the sources emitted and no stage has taken yet, if any, ` +
      `stays in Redis, not lost; the next run goes on with it (${status} shows how much)`;
  }
  if (left.entries === 0) {
    return `${name}: stopped: nothing the sources emitted waits in Redis ` +
      "(all of it was published, dropped or dead-lettered)";
  }
  const items = left.items === 1 ? "1 item" : `${left.items} items`;
  const entries = left.entries === 1 ? "1 entry" : `${left.entries} entries`;
  const about = left.atMost ? "at most" : "about";
  const verb = left.items === 1 ? "waits" : "wait";
  return `${name}: stopped: ${about} ${items} (${entries}) ${verb} in Redis, not lost; ` +
    `the next run goes on with them (${status} shows where)`;
}

/** `message` as a line of the flow `name`: its name first, once. */
function ownLine(name: string, message: string): string {
  return message.startsWith(`${name}: `) || message.startsWith(`${name}/`)
    ? message
    : `${name}: ${message}`;
}
