/**
 * The "real pipeline" benchmark: the demo flow's own stages (flows/demo.yaml:
 * validate, dedupe with near duplicates, enrich with all steps, local embed
 * 256-d, JSONL publish) on the generator source, in memory and durable (one
 * and two processes over a redis-server of its own, each also with
 * `durable.fuse`, and one with `concurrency: 2` on dedupe, without and
 * with fuse; with --big, memory at 10x the items, and both sizes again
 * with V8's own heap defaults instead of the run task's limit; with
 * --workers N, memory with enrich on N stage workers, then enrich and
 * embed, and durable fused with enrich on them),
 * next to a baseline measured in the same run: each actor's `handle`
 * called directly on the same pre-built batches in a loop, no engine. The engine's overhead is the
 * ratio of the two; per-stage µs per item say where the time goes. Neither
 * side's clock counts building the actors: an engine run's starts once the
 * flow is open, and its opening time is printed apart.
 *
 *   deno run -A bench/real_pipeline.ts [--items N] [--short] [--big] [--workers N]
 *   (bench/main.ts runs it as its "pipeline" section)
 *
 * Every run is a process of its own, so peak RSS (the kernel's VmHWM, which
 * counts worker threads too) is measured from a clean heap, started with the
 * V8 flags of `deno task run` (deno.json) so it measures what users run.
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { builtinRegistry } from "../builtins.ts";
import { parseFlow } from "../config/load_flow.ts";
import type { Actor, Outcome, StageContext } from "../engine/actor.ts";
import type { DeadLetters } from "../engine/dead_letters.ts";
import type { Flow } from "../engine/flow.ts";
import { type Envelope, envelope, type RawItem } from "../engine/item.ts";
import { memoryLogger } from "../engine/log.ts";
import { startFlow } from "../engine/run_flow.ts";
import { BenchRedis, haveRedisServer } from "./durable.ts";

const SELF = fileURLToPath(import.meta.url);
const DEMO = fileURLToPath(new URL("../flows/demo.yaml", import.meta.url));
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"];

/** What one measured run (a process) prints on its last line. */
export interface RunFigure {
  mode: string;
  items: number;
  published: number;
  /**
   * From the flow's first item (its actors and sinks open) to the last item
   * published, or the baseline's loop: neither counts building the actors.
   */
  secs: number;
  /** Engine runs: opening the flow (building and opening actors and sinks), not in `secs`. */
  openSecs?: number;
  peakRss: number;
  /** Baseline only: reading the source and making envelopes, not in `secs`. */
  sourceSecs?: number;
  /**
   * CPU seconds of the process (user + system, all its threads: GC and
   * workers too) over `secs`; summed over the processes of a durable run.
   * Another process's load moves it less than it moves wall time.
   */
  cpuSecs: number;
  /** Per stage: ms inside handle() and items it received. */
  stages: { id: string; busyMs: number; received: number }[];
}

/**
 * A durable run's setting besides the demo's own: `durable.fuse` (true, or
 * "all"), two batches of dedupe at once (the stage that waits on Redis
 * most), or fuse and that.
 */
type Variant = "fuse" | "fuse: all" | "dedupe concurrency: 2" | "fuse, dedupe concurrency: 2";

/** The demo flow with `count` generated items, its outputs in `out`. */
function demoFlow(
  count: number,
  out: string,
  opts: {
    redis?: string;
    workers?: number;
    /** The stages `workers` applies to; default enrich and embed. */
    onWorkers?: string[];
    prefix?: string;
    variant?: Variant;
  } = {},
): Flow {
  const flow = parseFlow(Deno.readTextFileSync(DEMO), DEMO, builtinRegistry(), {});
  const source = flow.sources[0];
  const config = { ...(source.config as Record<string, unknown>), count };
  return {
    ...flow,
    outDir: out,
    sources: [{ ...source, config }],
    ...(opts.redis
      ? {
        durability: "redis" as const,
        redis: opts.redis,
        durable: {
          ...flow.durable,
          prefix: opts.prefix ?? "bench",
          fuse: opts.variant === "fuse: all" ? "all" : opts.variant?.startsWith("fuse") === true,
        },
      }
      : {}),
    // Workers go on the stages named, by default the two that cost most per item.
    pipeline: flow.pipeline.map((s) =>
      opts.workers && (opts.onWorkers ?? ["enrich", "embed"]).includes(s.kind)
        ? { ...s, workers: opts.workers }
        : opts.variant?.endsWith("dedupe concurrency: 2") && s.kind === "dedupe"
        ? { ...s, concurrency: 2 }
        : s
    ),
  };
}

/** CPU seconds this process has used, all threads. */
function cpuSecs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** The kernel's peak RSS of this process (threads included), or a sampled one elsewhere. */
function peakRss(sampled: number): number {
  try {
    const m = Deno.readTextFileSync("/proc/self/status").match(/^VmHWM:\s+(\d+) kB/m);
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return sampled;
}

/**
 * Dead letters written nowhere: MemoryDeadLetters would keep every invalid
 * item (4% of the generator's), memory that grows with the items and that a
 * real run, writing them to a file, does not hold.
 */
const forgetDeadLetters: DeadLetters = { write: () => Promise.resolve() };

/** Runs the flow in this process and returns its figure (engine mode). */
async function runEngine(flow: Flow, items: number, mode: string): Promise<RunFigure> {
  let sampled = Deno.memoryUsage().rss;
  const opening = performance.now();
  // Opening builds the actors (eld's tables, about 0.4 s), which the baseline does
  // off the clock too: the clocks start when startFlow returns and the source runs.
  const running = await startFlow(flow, {
    registry: builtinRegistry(),
    log: memoryLogger(),
    deadLetters: forgetDeadLetters,
  });
  const cpu = cpuSecs();
  const started = performance.now();
  const last = running.stages[running.stages.length - 1];
  // The last time the last stage's count moved: a durable flow's drain check
  // after the last item is not the pipeline's work.
  let lastAt = performance.now();
  let lastSeen = 0;
  const timer = setInterval(() => {
    sampled = Math.max(sampled, Deno.memoryUsage().rss);
    if (last.emitted !== lastSeen) [lastSeen, lastAt] = [last.emitted, performance.now()];
  }, 20);
  const report = await running.done;
  clearInterval(timer);
  if (last.emitted !== lastSeen) lastAt = performance.now();
  return {
    mode,
    items,
    published: report.published,
    secs: (lastAt - started) / 1000,
    openSecs: (started - opening) / 1000,
    cpuSecs: cpuSecs() - cpu,
    peakRss: peakRss(sampled),
    stages: report.stages.map((s) => ({ id: s.id, busyMs: s.busyMs, received: s.received })),
  };
}

/** One stage of the baseline's chain: its actor, what its window holds, its time and items. */
interface Link {
  actor: Actor<unknown, unknown>;
  c: StageContext;
  size?: number;
  held: Envelope<unknown>[];
  ms: number;
  n: number;
}

/** A collector like the engine's: what the baseline passes to the next stage. */
class Collect implements Outcome<unknown> {
  out: Envelope<unknown>[] = [];
  emit(item: Envelope<unknown>): void {
    this.out.push(item);
  }
  drop(): void {}
  reject(): void {}
}

/**
 * The baseline: the same stages built from the same flow, each `handle`
 * called on pre-built batches in a loop; what a stage emits, gathered to
 * the next stage's window size when it has one, is the next stage's input.
 * Only the calls to `handle` are timed.
 */
async function runBaseline(flow: Flow, items: number): Promise<RunFigure> {
  const registry = builtinRegistry();
  const log = memoryLogger();
  const ctx = (stage: string): StageContext => ({
    flow: flow.name,
    stage,
    signal: new AbortController().signal,
    log,
  });
  const env = { flow: flow.name, baseDir: flow.baseDir, outDir: flow.outDir, log, registry };
  // The source's batches, as envelopes, made before any clock runs.
  const source = await registry.sources.get(flow.sources[0].kind)!.create(
    flow.sources[0].config,
    env,
  );
  // What the engine's source pump also does: read the source, wrap each item in an envelope.
  const batches: Envelope<unknown>[][] = [];
  const read = performance.now();
  for await (const raws of source.read(new AbortController().signal)) {
    batches.push((raws as RawItem[]).map((r) => envelope(r, flow.sources[0].name)));
  }
  const sourceMs = performance.now() - read;
  // Each source batch goes down the chain at once, as in the engine (a
  // windowed stage gathers its window's size first), so the baseline holds
  // no more in memory than the source's batches and pays no GC for more.
  const chain: Link[] = [];
  for (const entry of flow.pipeline) {
    const spec = registry.stages.get(entry.kind)!;
    const actor = await spec.create(entry.config, { ...env, vectors: {} });
    const c = ctx(entry.id);
    await actor.open?.(c);
    const window = actor.window ?? spec.window?.(entry.config);
    chain.push({ actor, c, size: window?.size, held: [] as Envelope<unknown>[], ms: 0, n: 0 });
  }
  let published = 0;
  const cpu = cpuSecs();
  const down = async (from: number, batch: Envelope<unknown>[], last: boolean) => {
    if (from === chain.length) return void (published += batch.length);
    const st = chain[from];
    let todo = [batch];
    if (st.size) {
      for (const item of batch) st.held.push(item);
      todo = [];
      while (st.held.length >= st.size || (last && st.held.length > 0)) {
        todo.push(st.held.splice(0, st.size));
      }
    }
    for (const b of todo) {
      if (b.length === 0) continue;
      const out = new Collect();
      st.n += b.length;
      const started = performance.now();
      await st.actor.handle(b, out, st.c);
      st.ms += performance.now() - started;
      await down(from + 1, out.out, last);
    }
    if (last && todo.length === 0) await down(from + 1, [], true);
  };
  for (const [i, batch] of batches.entries()) await down(0, batch, i === batches.length - 1);
  const cpuUsed = cpuSecs() - cpu;
  for (const st of chain) await st.actor.close?.();
  const stages = chain.map((st) => ({ id: st.c.stage, busyMs: st.ms, received: st.n }));
  const total = chain.reduce((n, st) => n + st.ms, 0);
  return {
    mode: "baseline",
    items,
    published,
    secs: total / 1000,
    cpuSecs: cpuUsed,
    sourceSecs: sourceMs / 1000,
    peakRss: peakRss(Deno.memoryUsage().rss),
    stages,
  };
}

/**
 * The V8 flags `deno task run` starts millrace with (deno.json's run task),
 * so that the bench measures what users run.
 */
function runTaskV8Flags(): string | null {
  const config = JSON.parse(Deno.readTextFileSync(new URL("../deno.json", import.meta.url)));
  const task = config.tasks?.run;
  const command = typeof task === "string" ? task : task?.command;
  if (typeof command !== "string") throw new Error("bench: deno.json has no run task");
  return command.match(/--v8-flags=(\S+)/)?.[1] ?? null;
}

const RUN_V8 = runTaskV8Flags();

/**
 * Runs one measurement in a fresh process: `mode` is baseline, memory, or
 * durable; with `v8` flags passed as `--v8-flags` (the run task's unless
 * told otherwise; null for none: V8's own defaults).
 */
async function inChild(args: string[], v8: string | null = RUN_V8): Promise<RunFigure[]> {
  const flags = v8 ? [`--v8-flags=${v8}`] : [];
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, ...flags, SELF, "child", ...args],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`real pipeline bench: ${args.join(" ")} failed`);
  return new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l));
}

/**
 * A child's `workers` argument: how many workers, and on which stages
 * (`1:enrich`); a bare count puts them on enrich and embed.
 */
function workersArg(workers: number, stages?: string[]): string {
  return stages ? `${workers}:${stages.join(",")}` : String(workers);
}

async function durableRun(
  redis: BenchRedis,
  items: number,
  processes: number,
  workers: string,
  variant?: Variant,
): Promise<RunFigure> {
  const prefix = `bench${crypto.randomUUID().slice(0, 8)}`;
  const args = ["durable", String(items), workers, redis.url, prefix, variant ?? ""];
  const runs = await Promise.all(
    Array.from(
      { length: processes },
      () => inChild(args).then((r) => r[0]),
    ),
  );
  const stages = runs[0].stages.map((s, i) => ({
    id: s.id,
    busyMs: runs.reduce((n, r) => n + r.stages[i].busyMs, 0),
    received: runs.reduce((n, r) => n + r.stages[i].received, 0),
  }));
  return {
    mode: `durable, ${processes} process${processes > 1 ? "es" : ""}${
      variant ? `, ${variant}` : ""
    }`,
    items,
    published: runs.reduce((n, r) => n + r.published, 0),
    secs: Math.max(...runs.map((r) => r.secs)),
    openSecs: Math.max(...runs.map((r) => r.openSecs ?? 0)),
    cpuSecs: runs.reduce((n, r) => n + r.cpuSecs, 0),
    peakRss: Math.max(...runs.map((r) => r.peakRss)),
    stages,
  };
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const mib = (n: number) => (n / 2 ** 20).toFixed(0) + " MiB";

function line(f: RunFigure, base: RunFigure): string {
  const perStage = f.stages
    .map((s) => `${s.id} ${(s.busyMs * 1000 / Math.max(1, s.received)).toFixed(1)}`)
    .join(", ");
  const rate = f.items / f.secs;
  const ratio = f.mode === "baseline" ? "" : `, ${(f.secs / base.secs).toFixed(2)}x baseline time`;
  return `${f.mode.padEnd(40)} ${fmt(rate).padStart(7)} items/s, peak RSS ${
    mib(f.peakRss).padStart(8)
  }${ratio}, CPU ${(f.cpuSecs * 1e6 / f.items).toFixed(0)} µs/item\n${
    "".padEnd(42)
  }µs/item: ${perStage}${f.openSecs === undefined ? "" : `; opened in ${f.openSecs.toFixed(2)}s`}`;
}

/** Runs and prints the section. */
export async function printRealPipelineSection(
  opts: { items: number; big: boolean; workers: number },
): Promise<void> {
  const { items } = opts;
  console.log(
    `## real pipeline: the demo flow's stages (validate, dedupe near, enrich all, ` +
      `embed local 256-d, jsonl), generator source, ${fmt(items)} items`,
  );
  console.log(
    `every run a fresh process with ${
      RUN_V8 ? `--v8-flags=${RUN_V8}, as \`deno task run\`` : "no --v8-flags, as `deno task run`"
    } (deno.json) unless it says otherwise`,
  );
  const [base] = await inChild(["baseline", String(items)]);
  const runs: RunFigure[] = [base];
  runs.push((await inChild(["memory", String(items), "0"]))[0]);
  if (opts.workers) {
    const n = opts.workers;
    const enrich = (await inChild(["memory", String(items), workersArg(n, ["enrich"])]))[0];
    runs.push({ ...enrich, mode: `memory, enrich workers: ${n}` });
    const both = (await inChild(["memory", String(items), workersArg(n)]))[0];
    runs.push({ ...both, mode: `memory, enrich+embed workers: ${n}` });
  }
  if (await haveRedisServer()) {
    const redis = await BenchRedis.start();
    try {
      runs.push(await durableRun(redis, items, 1, "0"));
      runs.push(await durableRun(redis, items, 2, "0"));
      runs.push(await durableRun(redis, items, 1, "0", "fuse"));
      runs.push(await durableRun(redis, items, 2, "0", "fuse"));
      runs.push(await durableRun(redis, items, 1, "0", "fuse: all"));
      runs.push(await durableRun(redis, items, 2, "0", "fuse: all"));
      runs.push(await durableRun(redis, items, 1, "0", "dedupe concurrency: 2"));
      runs.push(await durableRun(redis, items, 1, "0", "fuse, dedupe concurrency: 2"));
      if (opts.workers) {
        const n = opts.workers;
        const w = await durableRun(redis, items, 1, workersArg(n, ["enrich"]), "fuse");
        runs.push({ ...w, mode: `durable, 1 process, fuse, enrich workers: ${n}` });
      }
    } finally {
      await redis.stop();
    }
  } else console.log("durable runs skipped: redis-server is not on PATH");
  for (const r of runs) {
    if (r.published !== base.published) {
      throw new Error(`${r.mode}: published ${r.published}, the baseline ${base.published}`);
    }
    console.log(line(r, base));
  }
  const mem = runs[1];
  const source = base.sourceSecs ?? 0;
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  console.log(
    `baseline: actors ${base.secs.toFixed(2)}s, and ${source.toFixed(2)}s more to read the ` +
      `generator and make envelopes; the engine in memory: ${mem.secs.toFixed(2)}s`,
  );
  console.log(
    `engine overhead in memory: ${pct(mem.secs / base.secs - 1)} over the actors alone, ` +
      `${pct(mem.secs / (base.secs + source) - 1)} over actors + source`,
  );
  if (opts.big) {
    const big = items * 10;
    const [large] = await inChild(["memory", String(big), "0"]);
    console.log(
      `memory, ${fmt(big)} items: ${fmt(big / large.secs)} items/s, peak RSS ${
        mib(large.peakRss)
      }` +
        `; 10x the items -> peak RSS x${(large.peakRss / mem.peakRss).toFixed(2)} (flat is x1)`,
    );
    // Without the run task's heap limit V8 lets old space grow to up to 4x
    // the live heap after a full collection (README, Memory).
    const [small4] = await inChild(["memory", String(items), "0"], null);
    const [large4] = await inChild(["memory", String(big), "0"], null);
    console.log(
      `memory, V8's defaults (no --v8-flags): ${fmt(items)} items ${
        fmt(items / small4.secs)
      } items/s, ` +
        `peak RSS ${mib(small4.peakRss)}; ${fmt(big)} items ${fmt(big / large4.secs)} items/s, ` +
        `peak RSS ${mib(large4.peakRss)}; 10x the items -> peak RSS x${
          (large4.peakRss / small4.peakRss).toFixed(2)
        }`,
    );
  }
  console.log();
}

if (import.meta.main) {
  if (Deno.args[0] === "child") {
    const [, mode, n, workers, redis, prefix, variant] = Deno.args;
    const items = Number(n);
    const out = await Deno.makeTempDir({ prefix: "millrace-bench-" });
    try {
      const [count, stages] = (workers ?? "0").split(":");
      const flow = demoFlow(items, out, {
        workers: Number(count),
        onWorkers: stages?.split(","),
        redis,
        prefix,
        variant: (variant || undefined) as Variant | undefined,
      });
      const figure = mode === "baseline"
        ? await runBaseline(flow, items)
        : await runEngine(flow, items, mode);
      console.log(JSON.stringify(figure));
    } finally {
      await Deno.remove(out, { recursive: true });
    }
    Deno.exit(0);
  }
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      items: { type: "string", default: "100000" },
      short: { type: "boolean", default: false },
      big: { type: "boolean", default: false },
      workers: { type: "string", default: "0" },
    },
  });
  await printRealPipelineSection({
    items: values.short ? 10_000 : Number(values.items),
    big: values.big,
    workers: Number(values.workers),
  });
}
