/**
 * millrace: the programmatic API. A flow built here runs through the same
 * code as a flow file: `defineFlow` applies the same schema and stage-order
 * checks as `loadFlow`, and both hand a checked `Flow` to `runFlow`.
 *
 * For tests of flows and custom stages, `testing.ts` beside this module has
 * a source from a list (`memorySource`, kind `memory`), a sink that collects
 * (`MemorySink`, kind `collect`), and `runTestFlow`, which runs a flow in
 * memory or over Redis and returns what reached each sink and every dead
 * letter.
 *
 * @example
 * ```ts
 * import { builtinRegistry, defineFlow, MemoryDeadLetters, runFlow } from "./mod.ts";
 * import { z } from "zod";
 *
 * const registry = builtinRegistry().stage({
 *   kind: "shout",
 *   summary: "upper-cases titles",
 *   schema: z.strictObject({}),
 *   create: () => ({
 *     handle(batch, out) {
 *       for (const item of batch) {
 *         out.emit({ ...item, payload: { ...item.payload, title: String(item.payload.title).toUpperCase() } });
 *       }
 *     },
 *   }),
 * });
 * const output = await Deno.makeTempDir();
 * const flow = defineFlow({
 *   name: "example",
 *   output,
 *   sources: { gen: { kind: "generator", count: 100 } },
 *   pipeline: [{ validate: {} }, { shout: {} }, { publish: [{ jsonl: { path: "items.jsonl" } }] }],
 * }, registry);
 * const report = await runFlow(flow, { registry, deadLetters: new MemoryDeadLetters() });
 * console.log(report.published);
 * await Deno.remove(output, { recursive: true });
 * ```
 *
 * @module
 */
export { builtinRegistry } from "./builtins.ts";
export {
  type PumpOptions,
  pumpSource,
  type ScrapeSource,
  type SourceOutlet,
} from "./engine/source_pump.ts";
export { defineFlow } from "./config/define_flow.ts";
export type { FlowDefinition } from "./config/flow_schema.ts";
export { FlowError, loadFlow, parseFlow, parseFlowWithSteps } from "./config/load_flow.ts";
export type { StepSpec } from "./config/step_modules.ts";
export { bytes, duration } from "./config/units.ts";
export type { Actor, Outcome, StageContext } from "./engine/actor.ts";
export { Channel, ChannelClosedError } from "./engine/channel.ts";
export { type DeadLetter, type DeadLetters, MemoryDeadLetters } from "./engine/dead_letters.ts";
export { isRetryable, PermanentError, type RetryHint } from "./engine/errors.ts";
export type { DurableOptions, Flow, Locate, SourceEntry, StageEntry } from "./engine/flow.ts";
export type { Problem } from "./engine/flow_error.ts";
export type {
  CountRequest,
  HttpClient,
  HttpContext,
  HttpFactory,
  HttpOptions,
  HttpPool,
  HttpRequest,
  HttpResponse,
  PerHost,
} from "./engine/http.ts";
export type { Clock } from "./engine/schedule.ts";
export type { SourceStats, SourceStatsJson, StageStats, StageStatsJson } from "./engine/stats.ts";
export type { Table, VectorIndex, VectorMode } from "./adapters/sinks/_pg_table.ts";
export {
  type EnrichedItem,
  type Envelope,
  envelope,
  type Fact,
  itemId,
  type RawItem,
  type ValidItem,
} from "./engine/item.ts";
export {
  createLogger,
  type LineOut,
  type LogFormat,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  memoryLogger,
} from "./engine/log.ts";
export {
  type BuildEnv,
  Registry,
  type SinkSpec,
  type SourceSpec,
  type Spec,
  type StageSpec,
  type VectorShape,
} from "./engine/registry.ts";
export {
  type FlowReport,
  FlowStartError,
  runFlow,
  type RunningFlow,
  type RunOptions,
  startFlow,
} from "./engine/run_flow.ts";
export type { Sink } from "./engine/sink.ts";
export type { Source } from "./engine/source.ts";
export { type Batch, chunks, Window, type WindowOptions } from "./engine/window.ts";
export type { Commit, Delivery, Edge, Fence, Item } from "./engine/edge.ts";
export type { EmbeddingClient } from "./adapters/embeddings/embedding_client.ts";
export { HashingEmbedder } from "./adapters/embeddings/hashing_embedder.ts";
export { JsonlDeadLetters } from "./adapters/sinks/jsonl_dead_letters.ts";
export { OpenAIEmbeddings } from "./adapters/embeddings/openai_embeddings.ts";
export { PostgresSink } from "./adapters/sinks/postgres_sink.ts";
export { QdrantSink } from "./adapters/sinks/qdrant_sink.ts";
export { RedisStreamSink } from "./adapters/sinks/redis_stream_sink.ts";
export {
  closeRedis,
  type ConnectOptions,
  connectRedis,
  maskUrl,
  RedisConnectionLostError,
  type RedisEvent,
  type RedisEventDetail,
  RedisUnreachableError,
} from "./engine/redis/connection.ts";
export { type FlowKeys, flowKeys, type Lane } from "./engine/redis/keys.ts";
export { RedisAwayError, RedisScript } from "./engine/redis/redis_script.ts";
export { RedisLostWritesError } from "./engine/redis/redis_runtime.ts";
export {
  type ConsumerStatus,
  type FlowStatus,
  flowStatus,
  type LaneStatus,
  type SourceStatus,
  type StageStatus,
} from "./cli/status.ts";
export {
  type DlqEntry,
  type DlqFilter,
  dlqList,
  dlqPurge,
  dlqReplay,
  type ReplayResult,
} from "./cli/dead_letter_queue.ts";
