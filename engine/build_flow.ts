import { heldToAccount } from "./accounted.ts";
import type { ScrapeSource } from "./source_pump.ts";
import { type Actor, actorProblem, type StageContext } from "./actor.ts";
import { FieldError, formatPath, formatProblem } from "./flow_error.ts";
import type { Flow, Locate, SourceEntry, StageEntry } from "./flow.ts";
import type { HttpPool } from "./http.ts";
import { type Logger, withContext } from "./log.ts";
import { type BuildEnv, type Registry, type StageSpec, workersRefused } from "./registry.ts";
import { type PoolOptions, workerPool } from "./worker_pool.ts";
import { errorMessage } from "./errors.ts";
import { maskUrlsIn } from "./mask_url.ts";
import { MAX_REASONS, OTHER_USAGE, StageStats } from "./stats.ts";
import type { WindowOptions } from "./window.ts";

/** Where a component sits in its flow, for naming the flow file's line in an error. */
export interface ComponentPlace {
  /** Path of the component's block, e.g. `["sources", "r"]` or `["pipeline", 3, "publish"]`. */
  path: readonly PropertyKey[];
  file?: string;
  locate?: Locate;
}

/**
 * A component failed to build or open: the flow never started, nothing was
 * written. With a place in a flow file the message is
 * `file:line:column: sources.r.path: why`, pointing at the field when the
 * cause is a FieldError and at the component otherwise; without one it is
 * `flow: component: why`, or `flow: sources.r.path: why` for a FieldError.
 * Either way it names the flow and component once.
 */
export class FlowStartError extends Error {
  /** The flow file, when the flow came from one. */
  readonly file?: string;
  /** 1-based line in the flow file, when known. */
  readonly line?: number;
  /** 1-based column in the flow file, when known. */
  readonly column?: number;
  /** Path of the bad component or field in the flow, e.g. `sources.r.path`; empty when unknown. */
  readonly path: string;

  /**
   * `flow` and `component` name what failed; `place` points into the flow file when it came from
   * one.
   */
  constructor(
    readonly flow: string,
    readonly component: string,
    cause: unknown,
    place?: ComponentPlace,
  ) {
    const why = withoutPrefix(errorMessage(cause), flow, component);
    const field = place
      ? [...place.path, ...(cause instanceof FieldError ? cause.field : [])]
      : undefined;
    const pos = field && place?.locate?.(field, cause instanceof FieldError ? "value" : "key");
    const path = field ? formatPath(field) : "";
    super(
      place?.file
        ? formatProblem(place.file, { line: pos?.line, column: pos?.column, path, message: why })
        : `${flow}: ${cause instanceof FieldError && path ? path : component}: ${why}`,
      { cause },
    );
    this.name = "FlowStartError";
    this.file = place?.file;
    this.line = pos?.line;
    this.column = pos?.column;
    this.path = path;
  }
}

/**
 * A component that names itself (`rvpg/publish: cannot open sink ...`)
 * would otherwise have the flow and stage said twice.
 */
function withoutPrefix(message: string, flow: string, component: string): string {
  const id = component.replace(/^(stage|source) /, "");
  for (const prefix of [`${flow}/${id}: `, `${flow}: ${component}: `, `${component}: `]) {
    if (message.startsWith(prefix)) return message.slice(prefix.length);
  }
  return message;
}

/**
 * A stage of the user's own (a step module, a stage registered in code
 * without `leavesInputs`) gets a batch timeout unless it sets one: one that
 * never returned held its batch, and a run, for ever without a word. The
 * built-ins' outside calls have timeouts of their own.
 */
export const OWN_STAGE_BATCH_TIMEOUT_MS = 5 * 60_000;

/** A stage's batchTimeout in ms, or undefined for none: 0, on workers, or a built-in's default. */
function batchTimeoutOf(entry: StageEntry, spec: StageSpec, workers: number): number | undefined {
  if (workers > 0 || entry.batchTimeout === 0) return undefined;
  return entry.batchTimeout ??
    (spec.leavesInputs === true ? undefined : OWN_STAGE_BATCH_TIMEOUT_MS);
}

export interface BuiltStage {
  id: string;
  kind: string;
  actor: Actor<unknown, unknown>;
  ctx: StageContext;
  stats: StageStats;
  window?: WindowOptions;
  concurrency: number;
  retries: number;
  /** Longest one try of a batch may take, in ms (StageWork.batchTimeout). */
  batchTimeout?: number;
  /**
   * Commit batches in the order they were read even when they finish out
   * of order (a stage on workers): the stages after it see what they would
   * without workers, so a deduper keeps the same copy.
   */
  ordered?: boolean;
}

/** Every component of a flow, built and opened, ready for a runtime to move items. */
export interface BuiltFlow {
  sources: ScrapeSource[];
  stages: BuiltStage[];
  /** Closes the stages and sources (each once; failures are ignored). */
  close(): Promise<void>;
}

/**
 * Builds and opens every source and stage of a checked flow. Sources are
 * checked (`Source.check`) before any stage opens, so a missing file fails
 * the flow before a sink creates its output. Any failure is a
 * FlowStartError, after closing what was already opened.
 */
export async function buildFlow(
  flow: Flow,
  registry: Registry,
  env: BuildEnv,
  kill: AbortSignal,
  log: Logger,
  /** The run's HTTP pool, for sources with a `perHost` of their own. */
  http?: HttpPool,
): Promise<BuiltFlow> {
  const sources: ScrapeSource[] = [];
  const opened: [string, Actor<unknown, unknown>][] = [];
  /**
   * Closes everything, each whatever the others do: a close that throws (at
   * once or later) is logged, and neither stops the rest nor the report.
   */
  const close = async () => {
    const closing = (what: string, close: () => unknown) =>
      (async () => await close())().catch((e) =>
        log.warn(`${flow.name}: ${what} failed to close: ${maskUrlsIn(errorMessage(e))}`)
      );
    await Promise.all(opened.map(([id, a]) => closing(`stage ${id}`, () => a.close?.())));
    await Promise.all(
      sources.map((s) => closing(`source ${s.entry.name}`, () => s.source.close?.())),
    );
  };
  try {
    const place = (path: PropertyKey[]): ComponentPlace => ({
      path,
      file: flow.file,
      locate: flow.locate,
    });
    for (const entry of flow.sources) {
      const spec = registry.sources.get(entry.kind);
      try {
        if (!spec) throw new Error(`unknown source kind ${entry.kind}`);
        const source = await spec.create(entry.config, sourceEnv(env, entry, http));
        sources.push({ entry, source });
        await source.check?.();
      } catch (e) {
        throw new FlowStartError(
          flow.name,
          `source ${entry.name}`,
          e,
          place(["sources", entry.name]),
        );
      }
    }
    const stages: BuiltStage[] = [];
    for (const [i, entry] of flow.pipeline.entries()) {
      const spec = registry.stages.get(entry.kind);
      const stats = new StageStats(entry.id, entry.kind);
      let tallyTold = false; // that its ctx.tally names were folded: once
      const ctx: StageContext = {
        flow: flow.name,
        stage: entry.id,
        signal: kill,
        log: withContext(log, { stage: entry.id }),
        tally: (name, n) => {
          if (stats.tally(name, n) && !tallyTold) {
            tallyTold = true;
            ctx.log.warn(
              `${flow.name}/${entry.id}: more than ${MAX_REASONS} different names given to ` +
                `ctx.tally: the rest are counted as "${OTHER_USAGE}" (a name is a counter of the ` +
                "summary and a metrics series: keep them to a fixed few, such as requests or tokens)",
            );
          }
        },
      };
      try {
        if (!spec) throw new Error(`unknown stage kind ${entry.kind}`);
        const workers = entry.workers ?? 0;
        const refused = workers ? workersRefused(registry, spec, entry.kind, entry.config) : "";
        if (refused) throw new FieldError(["workers"], refused);
        // With workers the stage is built here too: its window, and what
        // opening it tells later stages (the vector length), come from it.
        // Its clients log under its name too (an API client's retries), as its own lines do.
        const local = await spec.create(entry.config, { ...env, log: ctx.log, stage: entry.id });
        const wrong = actorProblem(local);
        if (wrong) throw new Error(wrong);
        const own = heldToAccount(spec, local);
        await own.open?.(ctx);
        opened.push([entry.id, own]);
        const actor = workers ? workerPool(poolOptions(flow, entry, registry, workers), own) : own;
        if (workers) {
          // Closed even if it fails to open: workers already started must end.
          opened.push([`${entry.id} (its workers)`, actor]);
          await actor.open?.(ctx);
        }
        stages.push({
          id: entry.id,
          kind: entry.kind,
          actor,
          ctx,
          stats,
          window: local.window ?? spec.window?.(entry.config),
          // Two batches per worker: one running, one on its way.
          concurrency: Math.max(entry.concurrency, 2 * workers),
          retries: entry.retries,
          batchTimeout: batchTimeoutOf(entry, spec, workers),
          ...(workers ? { ordered: true } : {}),
        });
      } catch (e) {
        throw new FlowStartError(
          flow.name,
          `stage ${entry.id}`,
          e,
          place(["pipeline", i, entry.kind]),
        );
      }
    }
    return { sources, stages, close };
  } catch (e) {
    await close();
    throw e;
  }
}

function poolOptions(
  flow: Flow,
  entry: StageEntry,
  registry: Registry,
  workers: number,
): PoolOptions {
  return {
    module: registry.worker!.module,
    workers,
    kind: entry.kind,
    config: entry.config,
    flow: flow.name,
    stage: entry.id,
    baseDir: flow.baseDir,
    outDir: flow.outDir,
  };
}

/** The env a source is built with: its own HTTP client when it sets `perHost`. */
function sourceEnv(env: BuildEnv, entry: SourceEntry, http?: HttpPool): BuildEnv {
  const log = withContext(env.log, { source: entry.name });
  const polled = entry.every !== undefined || entry.cron !== undefined;
  const every = entry.every === undefined ? {} : { every: entry.every };
  return http && entry.perHost
    ? { ...env, log, polled, ...every, http: http.client(entry.perHost) }
    : { ...env, log, polled, ...every };
}
