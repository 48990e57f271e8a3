/**
 * A worker process for the durable end-to-end tests: runs a flow file the
 * way `main.ts run FLOW --log-format json` does (SIGTERM stops gracefully,
 * the last stderr line is `{"msg": "...finished", "report": {...}}`), with
 * test-only components added to the built-in registry:
 *
 * - source `numbered`: `count` items `{title: "item <i>", url, text}`, in
 *   batches of `batch`; the indexes in `poison` get "POISON" in their title.
 *   It remembers how far it got (checkpoint/resume), like a real cursor.
 * - source `tick-log`: on each read, appends "<tick> <pid>" to the Redis list
 *   `list`, where <tick> is the cron tick its flow stored as being polled
 *   (`tickKey`), and yields one item for it: a count of polls, each named
 *   by the tick it was for and the process that made it; with `hangFrom: N`,
 *   the Nth read and those after it hang once logged, until the flow stops.
 * - stage `poison`: passes items on, but throws on an item whose title holds
 *   "POISON", unless MILLRACE_TEST_POISON_FIXED=1 (the cause was fixed); with
 *   MILLRACE_TEST_POISON_EXIT=1 it kills its process instead (exit code 3).
 * - stage `slow`: passes items on after sleeping `ms` per batch.
 * - sink `flaky`: refuses every write while MILLRACE_TEST_SINK_DOWN=1 (a sink that is down).
 * - sink `crash-after`: takes every batch; with MILLRACE_TEST_CRASH_AFTER=N,
 *   its Nth write waits 300 ms (the other sinks of the publish stage have
 *   written the batch by then) and kills the process (exit code 3): a crash
 *   after the sinks wrote a batch and before it was acknowledged.
 *
 * Usage: _worker.ts FLOW.yaml
 */
import { Redis } from "ioredis";
import { z } from "zod";
import { builtinRegistry } from "../../../builtins.ts";
import { loadFlow } from "../../../config/load_flow.ts";
import type { Actor } from "../../../engine/actor.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import type { RawItem } from "../../../engine/item.ts";
import { createLogger } from "../../../engine/log.ts";
import type { Registry } from "../../../engine/registry.ts";
import { startFlow } from "../../../engine/run_flow.ts";
import type { Source } from "../../../engine/source.ts";

export const numberedSchema = z.strictObject({
  count: z.int().min(0).describe("Items to make. Required."),
  batch: z.int().positive().default(100).describe("Items per yielded batch. Default 100."),
  poison: z.array(z.int().min(0)).default([])
    .describe("Indexes whose title holds POISON. Default none."),
  textBytes: z.int().min(0).default(0)
    .describe("Length of each item's filler text, to make items heavy. Default 0."),
});

/** The item the `numbered` source makes at index `i`: tests compute expected ids from it. */
export function numberedItem(i: number, poison = false, textBytes = 0): RawItem {
  return {
    title: `${poison ? "POISON " : ""}item ${i}`,
    url: `https://example.com/items/${i}`,
    text: `body of item ${i} ` + "x".repeat(textBytes),
  };
}

function numberedSource(config: z.output<typeof numberedSchema>): Source {
  const poison = new Set(config.poison);
  let next = 0;
  return {
    async *read(signal) {
      while (next < config.count) {
        signal.throwIfAborted();
        const end = Math.min(config.count, next + config.batch);
        const batch: RawItem[] = [];
        for (let i = next; i < end; i++) {
          batch.push(numberedItem(i, poison.has(i), config.textBytes));
        }
        next = end;
        yield batch;
      }
    },
    checkpoint: () => ({ next }),
    resume(position) {
      next = (position as { next: number } | undefined)?.next ?? 0;
    },
  };
}

const tickLogSchema = z.strictObject({
  redis: z.string().describe("Redis URL of the list. Required."),
  tickKey: z.string().describe("The flow's tick key of this source. Required."),
  list: z.string().describe("List each poll is appended to. Required."),
  hangFrom: z.int().positive().optional()
    .describe("From this read on, a read hangs after it is logged until the flow stops it."),
});

function tickLogSource(config: z.output<typeof tickLogSchema>): Source {
  const redis = new Redis(config.redis, { maxRetriesPerRequest: 1 });
  return {
    async *read(signal) {
      const tick = await redis.get(config.tickKey);
      const polls = await redis.rpush(config.list, `${tick} ${Deno.pid}`);
      if (config.hangFrom !== undefined && polls >= config.hangFrom) {
        await new Promise((_, reject) => signal?.addEventListener("abort", reject));
      }
      yield [{ title: `tick ${tick}`, url: `https://example.com/ticks/${tick}`, text: "" }];
    },
    close: () => redis.disconnect(),
  };
}

const poisonActor: Actor = {
  handle(batch, out) {
    const fixed = Deno.env.get("MILLRACE_TEST_POISON_FIXED") === "1";
    for (const item of batch) {
      if (!fixed && String(item.payload.title).includes("POISON")) {
        // A poison item that takes its process down, as a native crash or an OOM would.
        if (Deno.env.get("MILLRACE_TEST_POISON_EXIT") === "1") Deno.exit(3);
        throw new Error(`poison item ${item.id} (${item.payload.title})`);
      }
    }
    for (const item of batch) out.emit(item);
  },
};

const slowSchema = z.strictObject({
  ms: z.int().min(0).default(10).describe("Sleep per batch in ms. Default 10."),
});

/** The built-in registry plus the test-only components above. */
export function workerRegistry(): Registry {
  return builtinRegistry()
    .source({
      kind: "numbered",
      summary: "numbered test items",
      schema: numberedSchema,
      create: (config) => numberedSource(config),
    })
    .source({
      kind: "tick-log",
      summary: "logs each poll with its cron tick",
      schema: tickLogSchema,
      create: (config) => tickLogSource(config),
    })
    .stage({
      kind: "poison",
      summary: "throws on POISON items",
      schema: z.strictObject({}),
      create: () => poisonActor,
    })
    .sink({
      kind: "crash-after",
      summary: "kills its process after its Nth write",
      schema: z.strictObject({}),
      create: () => {
        const after = Number(Deno.env.get("MILLRACE_TEST_CRASH_AFTER") ?? "0");
        let writes = 0;
        return {
          async write() {
            if (after > 0 && ++writes === after) {
              await new Promise((r) => setTimeout(r, 300));
              Deno.exit(3);
            }
          },
        };
      },
    })
    .sink({
      kind: "flaky",
      summary: "refuses every write while MILLRACE_TEST_SINK_DOWN=1",
      schema: z.strictObject({}),
      create: () => ({
        write() {
          if (Deno.env.get("MILLRACE_TEST_SINK_DOWN") === "1") throw new Error("sink is down");
          return Promise.resolve();
        },
      }),
    })
    .stage({
      kind: "slow",
      summary: "passes items on after a pause",
      schema: slowSchema,
      create: (config: z.output<typeof slowSchema>): Actor => ({
        async handle(batch, out) {
          await new Promise((r) => setTimeout(r, config.ms));
          for (const item of batch) out.emit(item);
        },
      }),
    });
}

if (import.meta.main) {
  const log = createLogger("json");
  const registry = workerRegistry();
  const flow = await loadFlow(Deno.args[0], registry);
  const running = await startFlow(flow, { registry, log, deadLetters: new MemoryDeadLetters() });
  log.info(`${flow.name}: worker ${Deno.pid} running`);
  const stop = () => running.stop();
  Deno.addSignalListener("SIGTERM", stop);
  const report = await running.done;
  Deno.removeSignalListener("SIGTERM", stop);
  log.info(`${flow.name}: ${report.stopped ? "stopped" : "finished"}`, { report });
  Deno.exit(0);
}
