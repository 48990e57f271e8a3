/**
 * The durable benchmark: the flow of bench/pipeline.ts (one source, five
 * trivial stages) with `durability: redis`, in one process and in two
 * processes sharing it, next to a hand-written ioredis relay over the same
 * five hops measured in the same run, against a redis-server this file
 * starts on a free port. Also counts Redis commands per item per hop from
 * INFO commandstats (a MULTI counts as MULTI, EXEC and each command in it; a
 * script as EVAL and each command it calls).
 *
 *   deno run -A bench/durable.ts [--items N] [--rounds R]   this section alone
 *   (bench/main.ts runs it as one of its sections)
 *
 * Items/s runs from the first item's emission (its envelope's seenAt) to the
 * last batch the last stage finished, so process start-up and the drain
 * check after the last item are not counted; Redis commands are counted for
 * the whole run, idle polling included.
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import type { Actor } from "../engine/actor.ts";
import { MemoryDeadLetters } from "../engine/dead_letters.ts";
import { DEFAULT_DURABLE, type Flow } from "../engine/flow.ts";
import { memoryLogger } from "../engine/log.ts";
import { startFlow } from "../engine/run_flow.ts";
import { benchFlow, benchRegistry } from "./pipeline.ts";
import { roundRatios } from "./round_ratios.ts";
import { z } from "zod";

/** Stage streams between the six actors: source→validate … embed→publish. */
export const HOPS = 5;
const SELF = fileURLToPath(import.meta.url);
const PERMS = ["--allow-read", "--allow-env", "--allow-net", "--allow-sys"];

export interface DurableFigure {
  items: number;
  itemsPerSec: number;
  /** INFO commandstats calls during the run / items / hops. */
  commandsPerItemHop: number;
}

/** A redis-server of the benchmark's own, on a free port, keeping nothing on disk. */
export class BenchRedis {
  private constructor(readonly port: number, readonly child: Deno.ChildProcess) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<BenchRedis> {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const child = new Deno.Command("redis-server", {
      args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    for (const deadline = Date.now() + 5000; Date.now() < deadline;) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        return new BenchRedis(port, child);
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    child.kill("SIGKILL");
    await child.status;
    throw new Error(`redis-server did not start on port ${port}`);
  }

  async stop(): Promise<void> {
    this.child.kill("SIGKILL");
    await this.child.status;
  }
}

/** Whether `redis-server` can be run here. */
export async function haveRedisServer(): Promise<boolean> {
  try {
    return (await new Deno.Command("redis-server", { args: ["--version"], stdout: "null" })
      .output())
      .success;
  } catch {
    return false;
  }
}

/** Sum of every command's calls in INFO commandstats, leaving out the bench's own INFO/CONFIG. */
async function commandCalls(redis: Redis): Promise<number> {
  const info = await redis.info("commandstats");
  let calls = 0;
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (m[1] === "info" || m[1].startsWith("config")) continue;
    calls += Number(m[2]);
  }
  return calls;
}

async function freshStats(redis: Redis): Promise<void> {
  await redis.flushall();
  await redis.config("RESETSTAT");
}

// ---------------------------------------------------------------------------
// The engine: the pipeline.ts flow over Redis, in worker processes.

/** What a worker process prints on stdout when its flow is drained. */
interface WorkerOutput {
  /** Earliest seenAt of an item its last stage finished (epoch ms). */
  firstSeen: number;
  /** When its last stage finished its last batch (epoch ms). */
  lastAt: number;
  published: number;
}

/** The bench flow with Redis edges; its last stage also notes times. */
function durableFlow(url: string, items: number): Flow {
  const flow = benchFlow({ items, batch: 1000 });
  const last = flow.pipeline[flow.pipeline.length - 1];
  return {
    ...flow,
    durability: "redis",
    redis: url,
    durable: DEFAULT_DURABLE,
    pipeline: [...flow.pipeline.slice(0, -1), { ...last, kind: "finish" }],
  };
}

/** Worker mode: runs the flow until it is drained, then prints a WorkerOutput line. */
async function worker(url: string, items: number): Promise<void> {
  const out: WorkerOutput = { firstSeen: Infinity, lastAt: 0, published: 0 };
  const finish: Actor = {
    handle(batch, o) {
      for (let i = 0; i < batch.length; i++) {
        if (batch[i].seenAt < out.firstSeen) out.firstSeen = batch[i].seenAt;
        o.emit(batch[i]);
      }
      out.lastAt = Date.now();
    },
  };
  const registry = benchRegistry({ items, batch: 1000 })
    .stage({
      kind: "finish",
      summary: "notes times",
      schema: z.object({}),
      // It changes no item and emits each once: the engine's own cost is measured, not a copy's.
      leavesInputs: true,
      create: () => finish,
    });
  const running = await startFlow(durableFlow(url, items), {
    registry,
    log: memoryLogger(),
    deadLetters: new MemoryDeadLetters(),
  });
  const report = await running.done;
  out.published = report.published;
  console.log(JSON.stringify(out));
}

/** Runs the flow in `processes` worker processes sharing one Redis. */
export async function runDurableEngine(
  redis: BenchRedis,
  items: number,
  processes: number,
): Promise<DurableFigure> {
  const admin = new Redis({ port: redis.port, host: "127.0.0.1" });
  try {
    await freshStats(admin);
    const outputs = await Promise.all(
      Array.from({ length: processes }, async () => {
        const r = await new Deno.Command(Deno.execPath(), {
          args: ["run", ...PERMS, SELF, "worker", redis.url, String(items)],
          stdout: "piped",
          stderr: "inherit",
        }).output();
        if (!r.success) throw new Error(`durable bench worker failed (exit ${r.code})`);
        const text = new TextDecoder().decode(r.stdout).trim().split("\n").pop()!;
        return JSON.parse(text) as WorkerOutput;
      }),
    );
    const calls = await commandCalls(admin);
    const published = outputs.reduce((n, o) => n + o.published, 0);
    if (published !== items) throw new Error(`published ${published} of ${items} items`);
    const busy = outputs.filter((o) => o.published > 0);
    const first = Math.min(...busy.map((o) => o.firstSeen));
    const last = Math.max(...busy.map((o) => o.lastAt));
    return {
      items,
      itemsPerSec: items / (Math.max(1, last - first) / 1000),
      commandsPerItemHop: calls / items / HOPS,
    };
  } finally {
    await admin.quit();
  }
}

// ---------------------------------------------------------------------------
// The baselines: a hand-written relay, one item per entry or micro-batched.

const GROUP = "relay";
type ReadReply = [string, [string, string[]][]][] | null;

/**
 * What a relay written directly against ioredis costs over the same hops:
 * a producer XADDs `perEntry` items per entry (a JSON array; pipelined, 500
 * items at a time); each hop reads 500 items' worth of entries with
 * XREADGROUP, parses each entry and XADDs it re-encoded to the next stream,
 * and XACKs what it read, in one pipeline; the last hop only parses and
 * acknowledges. One process, one connection per hop. With `perEntry` equal
 * to the engine's entryItems it pays Redis per entry as the engine does, so
 * what remains between the two is the engine's own work.
 */
export async function runRawRelay(
  redis: BenchRedis,
  items: number,
  perEntry = 1,
): Promise<DurableFigure> {
  const conn = () => new Redis({ port: redis.port, host: "127.0.0.1" });
  const admin = conn();
  const streams = Array.from({ length: HOPS }, (_, i) => `relay:${i}`);
  const hops = streams.map(conn);
  const producer = conn();
  try {
    await freshStats(admin);
    for (const s of streams) await admin.xgroup("CREATE", s, GROUP, "0", "MKSTREAM");
    const statsBefore = await commandCalls(admin);
    const started = performance.now();
    const produce = (async () => {
      const seenAt = Date.now();
      for (let i = 0; i < items; i += 500) {
        const p = producer.pipeline();
        let entry: unknown[] = [];
        for (let k = i; k < Math.min(items, i + 500); k++) {
          const payload = { title: "item", url: "https://example.com/a/" + k, score: k % 1000 };
          entry.push({
            id: String(k),
            event: "e" + k,
            source: "counting",
            seenAt,
            attempts: 0,
            payload,
          });
          if (entry.length === perEntry || k === Math.min(items, i + 500) - 1) {
            p.xadd(streams[0], "*", "b", JSON.stringify(entry));
            entry = [];
          }
        }
        await p.exec();
      }
    })();
    const count = Math.max(1, Math.ceil(500 / perEntry));
    const relays = hops.map(async (r, hop) => {
      let seen = 0;
      while (seen < items) {
        const reply = await r.xreadgroup(
          "GROUP",
          GROUP,
          "c",
          "COUNT",
          count,
          "BLOCK",
          1000,
          "STREAMS",
          streams[hop],
          ">",
        ) as ReadReply;
        if (!reply) continue;
        const entries = reply[0][1];
        const p = r.pipeline();
        const ids: string[] = [];
        for (const [id, fields] of entries) {
          const batch = JSON.parse(fields[1]) as unknown[];
          if (hop + 1 < HOPS) p.xadd(streams[hop + 1], "*", "b", JSON.stringify(batch));
          ids.push(id);
          seen += batch.length;
        }
        p.xack(streams[hop], GROUP, ...ids);
        await p.exec();
      }
    });
    await Promise.all([produce, ...relays]);
    const secs = (performance.now() - started) / 1000;
    const calls = (await commandCalls(admin)) - statsBefore;
    return { items, itemsPerSec: items / secs, commandsPerItemHop: calls / items / HOPS };
  } finally {
    await Promise.all([admin, producer, ...hops].map((c) => c.quit()));
  }
}

// ---------------------------------------------------------------------------

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

/** Runs and prints the durable section: best of `rounds`, each side interleaved. */
export async function printDurableSection(items: number, rounds: number): Promise<void> {
  console.log(
    `## durable flow over Redis Streams, 6 actors with trivial stages, ${fmt(items)} items, ` +
      `best of ${rounds}`,
  );
  if (!(await haveRedisServer())) {
    console.log("skipped: redis-server is not on PATH\n");
    return;
  }
  const redis = await BenchRedis.start();
  const runs = {
    raw: [] as DurableFigure[],
    batched: [] as DurableFigure[],
    one: [] as DurableFigure[],
    two: [] as DurableFigure[],
  };
  try {
    for (let r = 0; r < rounds; r++) {
      // Interleaved, so a noisy neighbour hurts every side alike.
      runs.raw.push(await runRawRelay(redis, items));
      runs.batched.push(await runRawRelay(redis, items, DEFAULT_DURABLE.entryItems));
      runs.one.push(await runDurableEngine(redis, items, 1));
      runs.two.push(await runDurableEngine(redis, items, 2));
    }
  } finally {
    await redis.stop();
  }
  const best = (list: DurableFigure[]) =>
    list.reduce((a, b) => (b.itemsPerSec > a.itemsPerSec ? b : a));
  const [raw, batched, one, two] = [runs.raw, runs.batched, runs.one, runs.two].map(best);
  const cmds = (f: DurableFigure) => `${f.commandsPerItemHop.toFixed(3)} Redis commands/item/hop`;
  console.log(`engine, 1 process:         ${fmt(one.itemsPerSec)} items/s, ${cmds(one)}`);
  console.log(`engine, 2 processes:       ${fmt(two.itemsPerSec)} items/s, ${cmds(two)}`);
  console.log(
    `raw ioredis relay, ${HOPS} hops:  ${fmt(raw.itemsPerSec)} items/s, ${cmds(raw)} ` +
      "(baseline, same run: one item per entry)",
  );
  console.log(
    `raw relay, ${DEFAULT_DURABLE.entryItems} items/entry: ${fmt(batched.itemsPerSec)} items/s, ` +
      `${cmds(batched)} (baseline, same run: the engine's entry size)`,
  );
  console.log(`ratio 1 process / baseline:    ${(one.itemsPerSec / raw.itemsPerSec).toFixed(2)}x`);
  const vsBatched = one.itemsPerSec / batched.itemsPerSec;
  console.log(`ratio 1 process / micro-batched relay: ${vsBatched.toFixed(2)}x`);
  console.log(
    `  ${roundRatios(runs.one.map((f, r) => f.itemsPerSec / runs.batched[r].itemsPerSec))}`,
  );
  console.log(`ratio 2 processes / baseline:  ${(two.itemsPerSec / raw.itemsPerSec).toFixed(2)}x`);
  console.log(
    `Redis commands per item and hop, engine (1 process) / baseline: ` +
      `${(one.commandsPerItemHop / raw.commandsPerItemHop).toFixed(3)}x\n`,
  );
}

if (import.meta.main) {
  if (Deno.args[0] === "worker") {
    await worker(Deno.args[1], Number(Deno.args[2]));
    Deno.exit(0);
  }
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      items: { type: "string", default: "100000" },
      rounds: { type: "string", default: "1" },
    },
  });
  await printDurableSection(Number(values.items), Number(values.rounds));
}
