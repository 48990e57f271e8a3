import type { ScrapeSource } from "../actors/scraper.ts";
import type { Actor, StageContext } from "./actor.ts";
import type { Flow } from "./flow.ts";
import type { Logger } from "./log.ts";
import type { BuildEnv, Registry } from "./registry.ts";
import { errorMessage } from "./stage_runner.ts";
import { StageStats } from "./stats.ts";
import type { WindowOptions } from "./window.ts";

/** A component failed to build or open: the flow never started, nothing was written. */
export class FlowStartError extends Error {
  constructor(readonly flow: string, readonly component: string, cause: unknown) {
    super(`${flow}: ${component}: ${errorMessage(cause)}`, { cause });
    this.name = "FlowStartError";
  }
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
): Promise<BuiltFlow> {
  const sources: ScrapeSource[] = [];
  const opened: Actor<unknown, unknown>[] = [];
  const close = async () => {
    await Promise.allSettled(opened.map((a) => a.close?.()));
    await Promise.allSettled(sources.map((s) => s.source.close?.()));
  };
  try {
    for (const entry of flow.sources) {
      const spec = registry.sources.get(entry.kind);
      try {
        if (!spec) throw new Error(`unknown source kind ${entry.kind}`);
        const source = await spec.create(entry.config, env);
        sources.push({ entry, source });
        await source.check?.();
      } catch (e) {
        throw new FlowStartError(flow.name, `source ${entry.name}`, e);
      }
    }
    const stages: BuiltStage[] = [];
    for (const entry of flow.pipeline) {
      const spec = registry.stages.get(entry.kind);
      const ctx: StageContext = { flow: flow.name, stage: entry.id, signal: kill, log };
      try {
        if (!spec) throw new Error(`unknown stage kind ${entry.kind}`);
        const actor = await spec.create(entry.config, env);
        await actor.open?.(ctx);
        opened.push(actor);
        stages.push({
          id: entry.id,
          kind: entry.kind,
          actor,
          ctx,
          stats: new StageStats(entry.id, entry.kind),
          window: spec.window?.(entry.config),
          concurrency: entry.concurrency,
          retries: entry.retries,
        });
      } catch (e) {
        throw new FlowStartError(flow.name, `stage ${entry.id}`, e);
      }
    }
    return { sources, stages, close };
  } catch (e) {
    await close();
    throw e;
  }
}
