/**
 * Runs one behaviour test on either kind of edge: `memory` (channels in
 * this process) or `redis` (Redis Streams on a redis-server the test
 * starts). A test gets an `Edge`: it builds its flow with `edge.flow`, runs
 * it, and reads dead letters and what is left on the edges the same way in
 * both modes, so a test is written once and registered for each mode:
 * `for (const mode of MODES) edgeTest(mode, "name", {}, async (edge) => ...)`.
 */
import type { Redis } from "ioredis";
import { defineFlow } from "../../config/define_flow.ts";
import { decodeEntry } from "../../engine/redis/codec.ts";
import { MemoryDeadLetters } from "../../engine/dead_letters.ts";
import type { Flow } from "../../engine/flow.ts";
import type { Envelope } from "../../engine/item.ts";
import { memoryLogger } from "../../engine/log.ts";
import type { Registry } from "../../engine/registry.ts";
import { type FlowReport, type RunningFlow, startFlow } from "../../engine/run_flow.ts";
import {
  client,
  deadLetters as streamDeadLetters,
  edges,
  flowKeys,
  haveRedis,
  type RedisServer,
  withRedis,
} from "./redis/_harness.ts";
import { conformanceRegistry, keyOf, Probe } from "./_conformance_registry.ts";

export type Mode = "memory" | "redis";
export const MODES: readonly Mode[] = ["memory", "redis"];

const FLOW = "conform";

/** A dead letter as either mode keeps it, with its item's key. */
export interface Letter {
  stage: string;
  reason: string;
  attempts: number;
  key: string;
  /** The dead item's payload. */
  payload: unknown;
}

/** One test's view of the edge its flow runs on. */
export interface Edge {
  readonly mode: Mode;
  readonly probe: Probe;
  /** A checked flow on this edge (durability, Redis URL and output set here). */
  flow(input: { sources: Record<string, unknown>; pipeline: unknown[] }): Flow;
  start(flow: Flow): Promise<RunningFlow>;
  /** Runs a flow of one-shot sources until it finishes by itself. */
  run(flow: Flow): Promise<FlowReport>;
  deadLetters(): Promise<Letter[]>;
  /**
   * What the stopped flow left on its edges: items not yet read (they wait
   * for the next run) and entries read but never acknowledged. Nothing in
   * memory, where a stopped flow has no edges.
   */
  leftOnEdges(): Promise<{ waiting: string[]; pending: number }>;
}

/**
 * Registers `[mode] name`. A redis test starts its own redis-server, and is
 * ignored (with the warning tests/_redis_server.ts prints) where there is
 * none, unless CI=true.
 */
export function edgeTest(
  mode: Mode,
  name: string,
  opts: { ignore?: boolean },
  fn: (edge: Edge) => Promise<void>,
): void {
  const inCI = Deno.env.get("CI") === "true";
  Deno.test({
    name: `[${mode}] ${name}`,
    ignore: opts.ignore || (mode === "redis" && !haveRedis && !inCI),
    fn: async () => {
      const out = await Deno.makeTempDir({ prefix: "millrace-conform-" });
      try {
        if (mode === "memory") return await fn(memoryEdge(out));
        if (!haveRedis) throw new Error("redis-server is not on PATH, and CI=true requires it");
        await withRedis(async (server) => {
          const redis = client(server);
          try {
            await fn(redisEdge(out, server, redis));
          } finally {
            redis.disconnect();
          }
        });
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    },
  });
}

function makeFlow(registry: Registry, extra: Record<string, unknown>): Edge["flow"] {
  return (input) => defineFlow({ name: FLOW, ...extra, ...input }, registry);
}

function memoryEdge(out: string): Edge {
  const probe = new Probe();
  const registry = conformanceRegistry(probe);
  const letters = new MemoryDeadLetters();
  const start = (flow: Flow) =>
    startFlow(flow, { registry, deadLetters: letters, log: memoryLogger(), backoffBase: 1 });
  return {
    mode: "memory",
    probe,
    flow: makeFlow(registry, { output: out }),
    start,
    run: async (flow) => await (await start(flow)).done,
    deadLetters: () =>
      Promise.resolve(letters.entries.map((l) => ({
        stage: l.stage,
        reason: l.reason,
        attempts: l.attempts,
        key: keyOf(l.item),
        payload: (l.item as Envelope<unknown>).payload,
      }))),
    leftOnEdges: () => Promise.resolve({ waiting: [], pending: 0 }),
  };
}

function redisEdge(out: string, server: RedisServer, redis: Redis): Edge {
  const probe = new Probe();
  const registry = conformanceRegistry(probe);
  const keys = flowKeys(FLOW);
  const start = (flow: Flow) =>
    startFlow(flow, {
      registry,
      deadLetters: new MemoryDeadLetters(),
      log: memoryLogger(),
      backoffBase: 1,
    });
  return {
    mode: "redis",
    probe,
    flow: makeFlow(registry, { output: out, durability: "redis", redis: server.url }),
    start,
    run: async (flow) => await (await start(flow)).done,
    deadLetters: async () =>
      (await streamDeadLetters(redis, keys)).map((l) => ({
        stage: l.stage,
        reason: l.reason,
        attempts: l.attempts,
        key: keyOf(l.item as Envelope<unknown>),
        payload: (l.item as Envelope<unknown>).payload,
      })),
    leftOnEdges: async () => {
      const waiting: string[] = [];
      let pending = 0;
      for (const edge of await edges(redis, keys)) {
        pending += edge.pending;
        const groups = await redis.xinfo("GROUPS", edge.key) as unknown[][];
        const group = groups.map(fields).find((g) => g.name === edge.group);
        const last = String(group?.["last-delivered-id"] ?? "0-0");
        for (const [id, list] of await redis.xrange(edge.key, `(${last}`, "+")) {
          waiting.push(...(decodeEntry(id, list).items ?? []).map(keyOf));
        }
      }
      return { waiting, pending };
    },
  };
}

function fields(reply: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = reply[i + 1];
  return out;
}

export { waitFor } from "./redis/_harness.ts";
