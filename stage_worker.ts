/**
 * The module a stage's Web Workers run (`workers: N` on a pipeline stage):
 * it builds stages from the built-in registry, so a worker holds the same
 * actor the main thread would. See engine/worker_pool.ts.
 */
import { builtinRegistry } from "./builtins.ts";
import { serveStage } from "./engine/stage_host.ts";

serveStage(builtinRegistry());
