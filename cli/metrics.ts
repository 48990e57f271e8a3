import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { RunningFlow } from "../engine/run_flow.ts";
import type { SourceStats, StageStats } from "../engine/stats.ts";

/** Items waiting on a stage's input and items read but not finished. */
export interface EdgeState {
  stage: string;
  backlog: number;
  pending: number;
}

/** A series' labels besides `flow`. */
type Labels = Record<string, string>;

/** Upper bounds of the items-per-batch histogram. */
const BATCH_ITEMS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

/** Hosts that get a label of their own in millrace_http_requests_total; the rest count as `other`. */
export const MAX_HOSTS = 100;
const OTHER_HOSTS = "other";

/**
 * The Prometheus metrics of one run, through prom-client (it runs as is
 * under Deno with no extra permission). Counters that the engine already
 * keeps (StageStats) are read at scrape time rather than counted twice;
 * only what the engine does not keep is observed here: each batch's size
 * and duration (the stage loop's `onBatch` hook) and each HTTP request.
 */
export class FlowMetrics {
  readonly registry = new Registry();
  readonly #flow: string;
  #running?: RunningFlow;
  #edges: () => Promise<EdgeState[]> = () => Promise.resolve([]);
  readonly #batchSeconds: Histogram<"flow" | "stage">;
  readonly #batchItems: Histogram<"flow" | "stage">;
  readonly #requests: Counter<"host" | "status">;

  /**
   * `durable`: the edges are Redis streams, whose gauges count entries
   * (micro-batches of up to `durable.entryItems` items), named `_entries`;
   * in memory they count items, named `_items`. One name for both would
   * put two units under one metric.
   */
  constructor(flow: string, opts: { durable?: boolean } = {}) {
    this.#flow = flow;
    const registers = [this.registry];
    // deno-lint-ignore no-this-alias
    const metrics = this;
    /** A collect that sets each row's series (labels besides `flow`, value) afresh. */
    const series = <T>(rows: () => readonly T[], read: (r: T) => [Labels, number][]) =>
      function (this: Counter<string> | Gauge<string>) {
        this.reset();
        for (const r of rows()) {
          for (const [labels, n] of read(r)) {
            if (this instanceof Gauge) this.set({ flow, ...labels }, n);
            else this.inc({ flow, ...labels }, metrics.#peak(this, labels, n));
          }
        }
      };
    const stages = () => this.#running?.stages ?? [];
    const fromStats = (read: (s: StageStats) => [string, number][]) =>
      series(
        stages,
        (s) => read(s).map(([outcome, n]) => [{ stage: s.id, ...(outcome ? { outcome } : {}) }, n]),
      );
    new Counter({
      name: "millrace_items_total",
      help: "Items by stage and outcome: in (received), out (passed on), dropped, dead_letter.",
      labelNames: ["flow", "stage", "outcome"],
      registers,
      collect: fromStats((s) => [
        ["in", s.received],
        ["out", s.emitted],
        ["dropped", s.droppedTotal],
        ["dead_letter", s.rejectedTotal + s.failed],
      ]),
    });
    new Counter({
      name: "millrace_stage_retries_total",
      help: "Batches a stage tried again after a failed try, the tries of an outage included.",
      labelNames: ["flow", "stage"],
      registers,
      collect: fromStats((s) => [["", s.retries]]),
    });
    new Counter({
      name: "millrace_stage_usage_total",
      help: "What a stage counted of its work: requests, cached answers, merge updates, tokens.",
      labelNames: ["flow", "stage", "what"],
      registers,
      collect: series(stages, (s) => [...s.usage].map(([what, n]) => [{ stage: s.id, what }, n])),
    });
    const sources = () => this.#running?.sources ?? [];
    const perSource = (read: (s: SourceStats) => number | undefined) =>
      series(sources, (s) => {
        const n = read(s);
        return n === undefined ? [] : [[{ source: s.name }, n]];
      });
    new Counter({
      name: "millrace_source_items_total",
      help: "Items a source emitted into the flow.",
      labelNames: ["flow", "source"],
      registers,
      collect: perSource((s) => s.emitted),
    });
    new Counter({
      name: "millrace_source_reads_total",
      help: "Reads (polls) a source made, failed ones included.",
      labelNames: ["flow", "source"],
      registers,
      collect: perSource((s) => s.reads),
    });
    new Counter({
      name: "millrace_source_errors_total",
      help: "Reads of a source that failed (see the log, or the report's lastError).",
      labelNames: ["flow", "source"],
      registers,
      collect: perSource((s) => s.errors),
    });
    new Counter({
      name: "millrace_source_dead_letters_total",
      help: "Items a source dead-lettered before any stage saw them (JSON could not hold them).",
      labelNames: ["flow", "source"],
      registers,
      collect: perSource((s) => s.deadLettered),
    });
    new Gauge({
      name: "millrace_source_last_success_timestamp_seconds",
      help:
        "When a source's last read that did not fail ended, in Unix seconds; absent before one.",
      labelNames: ["flow", "source"],
      registers,
      collect: perSource((s) => s.lastOk === undefined ? undefined : s.lastOk / 1000),
    });
    new Counter({
      name: "millrace_embed_tokens_total",
      help: "Tokens sent to the embedding model, by stage.",
      labelNames: ["flow", "stage"],
      registers,
      collect: fromStats((s) => s.kind === "embed" ? [["", s.tokens]] : []),
    });
    this.#batchSeconds = new Histogram({
      name: "millrace_stage_batch_seconds",
      help: "Time a stage's handle took per batch, in seconds.",
      labelNames: ["flow", "stage"],
      registers,
    });
    this.#batchItems = new Histogram({
      name: "millrace_batch_items",
      help: "Items per batch a stage handled.",
      labelNames: ["flow", "stage"],
      buckets: BATCH_ITEMS,
      registers,
    });
    const edges = (pick: (e: EdgeState) => number) =>
      async function (this: Gauge<string>) {
        this.reset();
        for (const e of await metrics.edgeStates()) this.set({ flow, stage: e.stage }, pick(e));
      };
    const unit = opts.durable ? "entries" : "items";
    new Gauge({
      name: `millrace_edge_backlog_${unit}`,
      help: opts.durable
        ? "Stream entries on a stage's input not yet delivered to its group."
        : "Items waiting on a stage's input channel, not yet read.",
      labelNames: ["flow", "stage"],
      registers,
      collect: edges((e) => e.backlog),
    });
    new Gauge({
      name: `millrace_edge_pending_${unit}`,
      help: opts.durable
        ? "Stream entries delivered to a stage and not acknowledged (XPENDING)."
        : "Items a stage read and has not finished.",
      labelNames: ["flow", "stage"],
      registers,
      collect: edges((e) => e.pending),
    });
    this.#requests = new Counter({
      name: "millrace_http_requests_total",
      help: "HTTP requests the flow's sources made, by host and status (error: no status).",
      labelNames: ["host", "status"],
      registers,
    });
  }

  /** The run whose counters the scrape reads, and how to read its edges. */
  watch(running: RunningFlow, edges: () => Promise<EdgeState[]>): void {
    this.#running = running;
    this.#edges = edges;
    this.#peaks.clear();
  }

  /** The highest value each counter series of this run has shown (see #peak). */
  readonly #peaks = new Map<string, number>();

  /**
   * A counter's value, never below what a scrape saw before: the engine
   * takes back a count it made early (an item counted emitted that its
   * durable commit turned into a dead letter), and a Prometheus counter
   * that goes down reads as a restart, with spikes in rate() and increase().
   */
  #peak(metric: Counter<string> | Gauge<string>, labels: Labels, n: number): number {
    const key = `${(metric as unknown as { name: string }).name}\u0000${JSON.stringify(labels)}`;
    const peak = Math.max(n, this.#peaks.get(key) ?? 0);
    this.#peaks.set(key, peak);
    return peak;
  }

  /**
   * The edge gauges' read, once per render (two gauges share it), dropped
   * when the render ends rather than by a timer: a read kept past its
   * scrape showed the next scrape a mid-run state ("pending" after the end).
   */
  #edgeRead?: Promise<EdgeState[]>;
  edgeStates(): Promise<EdgeState[]> {
    this.#edgeRead ??= this.#edges();
    return this.#edgeRead;
  }

  /** The stage loop's hook: one batch of `items` that took `ms`. */
  observeBatch(stage: string, items: number, ms: number): void {
    const labels = { flow: this.#flow, stage };
    this.#batchSeconds.observe(labels, ms / 1000);
    this.#batchItems.observe(labels, items);
  }

  /**
   * Counts one request under its host, or under `other` past the first
   * MAX_HOSTS hosts: links followed and sitemaps can name hosts without
   * end, and each label value is a series the scraper keeps for good.
   */
  countRequest(host: string, status: number | "error" | "robots"): void {
    if (!this.#hosts.has(host)) {
      if (this.#hosts.size >= MAX_HOSTS) host = OTHER_HOSTS;
      else this.#hosts.add(host);
    }
    this.#requests.inc({ host, status: String(status) });
  }
  readonly #hosts = new Set<string>();

  /** The exposition text, and its content type. */
  async render(): Promise<{ text: string; contentType: string }> {
    try {
      return { text: await this.registry.metrics(), contentType: this.registry.contentType };
    } finally {
      this.#edgeRead = undefined;
    }
  }
}
