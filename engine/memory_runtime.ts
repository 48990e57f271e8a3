import { buildFlow } from "./build_flow.ts";
import { Channel } from "./channel.ts";
import type { DeadLetters } from "./dead_letters.ts";
import type { Flow } from "./flow.ts";
import type { Envelope } from "./item.ts";
import type { Logger } from "./log.ts";
import { MemoryEdge } from "./memory_edge.ts";
import type { Registry } from "./registry.ts";
import type { Runtime } from "./runtime.ts";
import { pumpSource } from "./source_pump.ts";
import { SourceStats } from "./stats.ts";

/**
 * A flow in one process, its edges bounded channels: one step per stage,
 * and a source pump that sends to the first channel and closes it when
 * every source is done, so the stages drain and close in cascade.
 */
export async function openMemoryRuntime(flow: Flow, opts: {
  registry: Registry;
  deadLetters: DeadLetters;
  log: Logger;
  stop: AbortSignal;
  kill: AbortSignal;
  backoffBase?: number;
}): Promise<Runtime> {
  const { log, stop, kill } = opts;
  // One HTTP state for the run, its buckets in this process (no `durable` given).
  const http = opts.registry.http?.(flow.http, { flow: flow.name, log });
  const env = {
    flow: flow.name,
    baseDir: flow.baseDir,
    outDir: flow.outDir,
    log,
    registry: opts.registry,
    ...(http ? { http: http.client() } : {}),
    vectors: {},
  };
  const built = await buildFlow(flow, opts.registry, env, kill, log, http);
  const channels = built.stages.map(() => new Channel<Envelope<unknown>>(flow.capacity));
  const sources = built.sources.map((s) => new SourceStats(s.entry.name, s.entry.kind));
  return {
    built,
    sources,
    loops: built.stages.map((stage, i) => ({
      stages: [{ ...stage, backoffBase: opts.backoffBase }],
      edge: new MemoryEdge(channels[i], channels[i + 1], opts.deadLetters, kill),
      window: stage.window,
      concurrency: stage.concurrency,
      ordered: stage.ordered,
    })),
    async pump() {
      const first = channels[0];
      try {
        await Promise.all(built.sources.map((s, i) => {
          const urgent = s.entry.priority === "high";
          const outlet = {
            emit: async (
              items: Envelope<unknown>[],
              _checkpoint: unknown,
              _done: boolean,
              accepted?: (n: number) => void,
            ) => {
              if (items.length === 0 || first.trySend(items, urgent)) return;
              // A batch over the channel's capacity goes in by parts, each counted as it is in.
              await first.send(items, kill, urgent, accepted);
            },
          };
          return pumpSource(s, sources[i], outlet, { signal: stop, log, flow: flow.name });
        }));
      } finally {
        first.close();
      }
    },
    backlog: () => channels.map((ch) => ch.size),
    kill: () => channels.forEach((ch) => ch.abandon()),
    close: async () => {},
  };
}
