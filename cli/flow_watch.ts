import type { Redis } from "ioredis";
import type { DeadLetter, DeadLetters } from "../engine/dead_letters.ts";
import { errorMessage } from "../engine/errors.ts";
import type { Flow } from "../engine/flow.ts";
import { type Logger, withContext } from "../engine/log.ts";
import { closeRedis, connectRedis } from "../engine/redis/connection.ts";
import { type FlowKeys, flowKeys, LANES } from "../engine/redis/keys.ts";
import { groupState } from "../engine/redis/redis_info.ts";
import type { RunningFlow } from "../engine/run_flow.ts";
import { isPolling } from "../engine/flow.ts";
import { dlqReplay, parseEntry, type ReplayResult } from "./dead_letter_queue.ts";
import {
  type History,
  HISTORY_MINUTES,
  HistoryRecorder,
  MemoryHistory,
  type Minute,
  RedisHistory,
} from "./history.ts";
import { type EdgeState, FlowMetrics } from "./metrics.ts";

/** Dead letters and log lines the dashboard lists: the most recent ones. */
const KEEP = 100;

/** A dead letter as the dashboard lists it. */
export interface LetterView {
  id: string;
  stage: string;
  reason: string;
  attempts: number;
  time: string;
  /** The item's id and a short look at its payload. */
  item: string;
  payload: string;
}

/** A warning or error the flow logged. */
export interface LogLine {
  time: string;
  level: "warn" | "error";
  message: string;
}

/**
 * What the HTTP server shows of one run: its metrics, its readiness, and
 * the dashboard's snapshot (stages, edges, sources, dead letters, recent
 * errors, tokens, per-minute history). Owned by the run (run_command.ts),
 * which hands it its log lines, its dead letters and, once started, the
 * running flow. A durable flow gets a Redis connection of its own here,
 * for PING, the edges' backlog, the dead-letter stream and the history.
 */
export class FlowWatch {
  readonly metrics: FlowMetrics;
  readonly errors: LogLine[] = [];
  readonly #letters: LetterView[] = [];
  #lettersTotal = 0;
  #running?: RunningFlow;
  #finished = false;
  #redis?: Redis;
  readonly #keys: FlowKeys;
  #history: History = new MemoryHistory();
  #recorder?: HistoryRecorder;
  #noRedis?: string;
  /** The run's logger, once `logger` wrapped it: replays asked over HTTP are said there. */
  #log?: Logger;

  constructor(readonly flow: Flow, readonly opts: { replay: boolean; historyEveryMs?: number }) {
    this.metrics = new FlowMetrics(flow.name, { durable: flow.durability === "redis" });
    this.#keys = flowKeys(flow.name, flow.durable.prefix);
  }

  get durable(): boolean {
    return this.flow.durability === "redis";
  }

  /** The run's logger, keeping its warnings and errors for the dashboard. */
  logger(log: Logger): Logger {
    this.#log ??= log;
    const keep = (level: LogLine["level"], message: string) => {
      this.errors.push({ time: new Date().toISOString(), level, message });
      if (this.errors.length > KEEP) this.errors.shift();
    };
    return {
      debug: log.debug,
      info: log.info,
      warn: (m, f) => (keep("warn", m), log.warn(m, f)),
      error: (m, f) => (keep("error", m), log.error(m, f)),
      with: (context) => this.logger(withContext(log, context)),
    };
  }

  /** The memory flow's dead-letter writer, keeping the last ones for the dashboard. */
  deadLetters(inner: DeadLetters): DeadLetters {
    return {
      write: async (entries: readonly DeadLetter[]) => {
        await inner.write(entries);
        const time = new Date().toISOString();
        for (const [i, d] of entries.entries()) {
          this.#letters.push(letterView(`${this.#lettersTotal + i + 1}`, d, time));
          if (this.#letters.length > KEEP) this.#letters.shift();
        }
        this.#lettersTotal += entries.length;
      },
      close: () => inner.close?.(),
    };
  }

  /** The stage loop's batch hook, for RunOptions.onBatch. */
  onBatch = (stage: { id: string }, items: number, ms: number): void =>
    this.metrics.observeBatch(stage.id, items, ms);

  /** The flow is running: counters, edges and history from now on. */
  async started(running: RunningFlow, log: Logger): Promise<void> {
    this.#running = running;
    if (this.durable) {
      try {
        this.#redis = await connectRedis(this.flow.redis!, {
          name: `millrace:${this.flow.name}:watch`,
        });
        this.#history = new RedisHistory(this.#redis, this.#keys);
      } catch (error) {
        // The flow runs on; /readyz says Redis is not answering.
        this.#noRedis = errorMessage(error);
        log.warn(`${this.flow.name}: the dashboard cannot reach Redis`, { error: this.#noRedis });
      }
    }
    // While Redis does not answer, the edge gauges are left out of a scrape, not failed nor zero.
    // A scrape leaves the edge gauges out rather than wait on a Redis that does not answer.
    this.metrics.watch(running, () => withTimeout(this.edges(), REDIS_READ_MS).catch(() => []));
    this.#recorder = new HistoryRecorder(
      this.#history,
      () => this.counters(),
      (error) => log.warn(`${this.flow.name}: history not saved`, { error: errorMessage(error) }),
    );
    this.#recorder.start(this.opts.historyEveryMs);
  }

  /** The run ended: readiness goes, the last minute is saved. */
  async finished(): Promise<void> {
    this.#finished = true;
    await this.#recorder?.stop();
  }

  async close(): Promise<void> {
    if (this.#redis) await closeRedis(this.#redis);
  }

  /** Why the flow is not ready, or undefined when it is: started, not ended, its Redis answering. */
  async notReady(): Promise<string | undefined> {
    if (this.#finished) return "the flow has ended";
    if (!this.#running) return "the flow is starting";
    if (this.#noRedis) return `Redis: ${this.#noRedis}`;
    if (!this.#redis) return undefined;
    try {
      await withTimeout(this.#redis.ping(), 1000);
      return undefined;
    } catch (error) {
      return `Redis does not answer PING: ${errorMessage(error)}`;
    }
  }

  /** Backlog and pending per stage: channel sizes in memory; group state over Redis. */
  async edges(): Promise<EdgeState[]> {
    const running = this.#running;
    if (!running) return [];
    if (!this.#redis) {
      // In hand: what reached the stage's channel, less what still waits
      // on it and what the stage finished. Window contents count too.
      const backlog = running.backlog?.() ?? [];
      let sent = running.sources.reduce((n, s) => n + s.emitted, 0);
      return running.stages.map((s, i) => {
        const waiting = Math.max(0, backlog[i] ?? 0);
        const finished = s.emitted + s.droppedTotal + s.rejectedTotal + s.failed;
        const state = {
          stage: s.id,
          backlog: waiting,
          pending: Math.max(0, sent - waiting - finished),
        };
        sent = s.emitted;
        return state;
      });
    }
    const redis = this.#redis;
    return await Promise.all(this.flow.pipeline.map(async (s) => {
      const states = await Promise.all(
        LANES.map((lane) => groupState(redis, this.#keys.input(s.id, lane), s.id)),
      );
      return {
        stage: s.id,
        backlog: states.reduce((n, g) => n + g.undelivered, 0),
        pending: states.reduce((n, g) => n + g.pending, 0),
      };
    }));
  }

  /** The counters the history keeps per minute. */
  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.#running?.stages ?? []) {
      out[`${s.id}:in`] = s.received;
      out[`${s.id}:out`] = s.emitted;
      out[`${s.id}:dead`] = s.rejectedTotal + s.failed;
      if (s.tokens) out.tokens = (out.tokens ?? 0) + s.tokens;
    }
    return out;
  }

  /** The last 24 h per minute, the current minute's unsaved counts included. */
  async history(): Promise<Minute[]> {
    const now = Math.floor(Date.now() / 60_000);
    const minutes = await withTimeout(this.#history.read(now - HISTORY_MINUTES + 1), REDIS_READ_MS)
      .catch(() => [] as Minute[]);
    const unsaved = this.#recorder?.unsaved() ?? {};
    if (Object.keys(unsaved).length === 0) return minutes;
    let last = minutes.at(-1);
    if (last?.t !== now) minutes.push(last = { t: now, counts: {} });
    for (const [k, n] of Object.entries(unsaved)) last.counts[k] = (last.counts[k] ?? 0) + n;
    return minutes;
  }

  /** The most recent dead letters, newest first: this run's (memory) or the stream's (Redis). */
  async letters(): Promise<{ total: number; recent: LetterView[] }> {
    if (!this.#redis) return { total: this.#lettersTotal, recent: [...this.#letters].reverse() };
    const [total, entries] = await Promise.all([
      this.#redis.xlen(this.#keys.dlq),
      this.#redis.xrevrange(this.#keys.dlq, "+", "-", "COUNT", 50),
    ]);
    return {
      total,
      recent: entries.map(([id, fields]) => {
        const e = parseEntry(id, fields);
        return {
          id: e.id,
          stage: e.stage,
          reason: e.problem ?? e.reason,
          attempts: e.attempts,
          time: e.time,
          item: e.item?.id ?? "",
          payload: short(e.item?.payload),
        };
      }),
    };
  }

  /** Puts dead letters back (durable flows only; the server asks for the token first). */
  async replay(ids: string[]): Promise<ReplayResult> {
    if (!this.#redis) throw new Error("replay needs a durable flow");
    const result = await dlqReplay(this.#redis, this.#keys, {
      ids,
      pipeline: this.flow.pipeline.map((s) => s.id),
    });
    // An admin action over HTTP leaves a trace in the run's log.
    const per = Object.entries(result.replayed).map(([s, n]) => `${s} ${n}`).join(", ");
    this.#log?.info(
      `${this.flow.name}: replayed ${ids.length - result.skipped.length} of ${ids.length} ` +
        `dead letters asked for over HTTP${per ? ` (${per})` : ""}`,
    );
    return result;
  }

  /** What the dashboard draws, once a second. */
  async snapshot(): Promise<Record<string, unknown>> {
    const running = this.#running;
    // What Redis did not answer is null, unknown: 0 said "nothing waits" in an outage.
    const [edges, letters] = await Promise.all([
      withTimeout(this.edges(), REDIS_READ_MS).catch(() => undefined),
      withTimeout(this.letters(), REDIS_READ_MS).catch(() => ({ total: null, recent: [] })),
    ]);
    const edgeOf = edges && new Map(edges.map((e) => [e.stage, e]));
    const stages = running?.stages.map((s) => ({
      id: s.id,
      kind: s.kind,
      in: s.received,
      out: s.emitted,
      dropped: s.droppedTotal,
      deadLetters: s.rejectedTotal + s.failed,
      batches: s.batches,
      busyMs: Math.round(s.busyMs),
      tokens: s.tokens,
      backlog: edgeOf ? edgeOf.get(s.id)?.backlog ?? 0 : null,
      pending: edgeOf ? edgeOf.get(s.id)?.pending ?? 0 : null,
    })) ?? this.flow.pipeline.map((s) => ({ id: s.id, kind: s.kind }));
    const polling = new Map(this.flow.sources.map((s) => [s.name, isPolling(s)]));
    const sources = running?.sources.map((s) => ({
      name: s.name,
      kind: s.kind,
      emitted: s.emitted,
      reads: s.reads,
      errors: s.errors,
      lastError: s.lastError,
      lastRead: s.lastRead ? new Date(s.lastRead).toISOString() : null,
      state: s.reading
        ? "reading"
        : s.reads === 0
        ? (this.durable ? "not held here" : "waiting")
        : polling.get(s.name)
        ? "waiting for next poll"
        : "done",
    })) ?? [];
    return {
      flow: this.flow.name,
      durability: this.flow.durability,
      state: this.#finished ? "finished" : running ? "running" : "starting",
      startedAt: running ? new Date(running.startedAt).toISOString() : null,
      now: new Date().toISOString(),
      stages,
      sources,
      tokens: running?.stages.reduce((n, s) => n + s.tokens, 0) ?? 0,
      deadLetters: letters,
      errors: [...this.errors].reverse(),
      replay: this.opts.replay && this.durable,
    };
  }
}

function letterView(id: string, d: DeadLetter, time: string): LetterView {
  return {
    id,
    stage: d.stage,
    reason: d.reason,
    attempts: d.attempts,
    time,
    item: d.item.id,
    payload: short(d.item.payload),
  };
}

/** A payload cut to a line, for the table. */
function short(payload: unknown): string {
  const text = payload === undefined ? "" : JSON.stringify(payload) ?? "";
  return text.length > 100 ? text.slice(0, 97) + "..." : text;
}

/**
 * How long a scrape or a snapshot waits for what it reads from Redis: a
 * frozen or absent Redis made /metrics and /api/snapshot wait out the 30 s
 * reply timeout, longer than a Prometheus scrape's 10 s.
 */
const REDIS_READ_MS = 1_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
