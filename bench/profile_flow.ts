/**
 * Where the demo flow's main thread spends its time: runs flows/demo.yaml's
 * stages on the generator source (in memory, or durable over a redis-server
 * of its own) under V8's sampling CPU profiler, through node:inspector (this
 * Deno has no --cpu-prof), and prints the share of samples per function,
 * self and inclusive, "(idle)" being the time the thread waited:
 *
 *   deno run -A bench/profile_flow.ts [--items N] [--durable [--fuse | --fuse-all]] [--workers N] [--top K]
 *   deno run -A bench/profile_flow.ts --trivial [--durable] [--items N]
 *
 * `--trivial` profiles the engine section's flow instead (bench/pipeline.ts:
 * a counting source and five pass-through stages, in memory), where what is
 * left is the engine's own work per item.
 * `--workers N` runs enrich and embed on N stage workers (their own threads
 * are not sampled: only what the main thread does and waits for).
 */
import inspector from "node:inspector";
import { parseArgs } from "node:util";
import { builtinRegistry } from "../builtins.ts";
import { parseFlow } from "../config/load_flow.ts";
import type { Flow } from "../engine/flow.ts";
import { memoryLogger } from "../engine/log.ts";
import { startFlow } from "../engine/run_flow.ts";
import { BenchRedis } from "./durable.ts";
import { benchFlow, benchRegistry } from "./pipeline.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

const USAGE =
  "usage: deno run -A bench/profile_flow.ts [--items N] [--durable [--fuse | --fuse-all]] [--workers N] [--top K]\n" +
  "       deno run -A bench/profile_flow.ts --trivial [--items N] [--top K]";

let values;
try {
  ({ values } = parseArgs({
    args: Deno.args,
    options: {
      items: { type: "string", default: "20000" },
      durable: { type: "boolean", default: false },
      fuse: { type: "boolean", default: false },
      "fuse-all": { type: "boolean", default: false },
      trivial: { type: "boolean", default: false },
      workers: { type: "string", default: "0" },
      top: { type: "string", default: "25" },
      help: { type: "boolean", default: false },
    },
  }));
} catch (error) {
  console.error(`profile_flow: ${(error as Error).message}\n${USAGE}`);
  Deno.exit(2);
}
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const items = Number(values.items), workers = Number(values.workers), top = Number(values.top);

const session = new inspector.Session();
session.connect();
const post = <T>(method: string, params: object = {}) =>
  new Promise<T>((resolve, reject) =>
    session.post(method, params, (e: Error | null, r?: object) => e ? reject(e) : resolve(r as T))
  );

const demo = new URL("../flows/demo.yaml", import.meta.url).pathname;
const parsed = parseFlow(Deno.readTextFileSync(demo), demo, builtinRegistry(), {});
const out = await Deno.makeTempDir({ prefix: "millrace-profile-" });
const redis = values.durable ? await BenchRedis.start() : undefined;
const trivial = { items, batch: 1000 };
/** Over the bench's own redis-server when --durable, with the step layout `fuse` asks. */
const overRedis = (fuse?: boolean | "all") =>
  redis
    ? {
      durability: "redis" as const,
      redis: redis.url,
      durable: { ...parsed.durable, prefix: "profile", ...(fuse === undefined ? {} : { fuse }) },
    }
    : {};
const flow: Flow = values.trivial ? { ...benchFlow(trivial), ...overRedis() } : {
  ...parsed,
  outDir: out,
  sources: [{
    ...parsed.sources[0],
    config: { ...(parsed.sources[0].config as Record<string, unknown>), count: items },
  }],
  pipeline: parsed.pipeline.map((s) =>
    workers && (s.kind === "enrich" || s.kind === "embed") ? { ...s, workers } : s
  ),
  ...overRedis(values["fuse-all"] ? "all" : values.fuse),
};

try {
  await post("Profiler.enable");
  await post("Profiler.setSamplingInterval", { interval: 500 });
  await post("Profiler.start");
  const started = performance.now();
  const running = await startFlow(flow, {
    registry: values.trivial ? benchRegistry(trivial) : builtinRegistry(),
    log: memoryLogger(),
    deadLetters: { write: () => Promise.resolve() },
  });
  const report = await running.done;
  const secs = (performance.now() - started) / 1000;
  const { profile } = await post<{ profile: { nodes: ProfileNode[]; samples: number[] } }>(
    "Profiler.stop",
  );
  const mode = values.trivial
    ? `${redis ? "durable, 1 process" : "memory"}, trivial stages`
    : `${
      redis
        ? `durable, 1 process${values["fuse-all"] ? ", fuse: all" : values.fuse ? ", fused" : ""}`
        : "memory"
    }${workers ? `, workers: ${workers}` : ""}`;
  console.log(
    `${mode}: ${items} items, ${report.published} published, ${Math.round(items / secs)} items/s`,
  );
  print(profile.nodes, profile.samples, top);
} finally {
  await redis?.stop();
  await Deno.remove(out, { recursive: true });
}

/** Prints the top functions by inclusive and by self share of the samples. */
function print(nodes: ProfileNode[], samples: number[], top: number): void {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (id: number) => {
    const f = byId.get(id)!.callFrame;
    return `${f.functionName || "(anonymous)"} ${f.url.split("/").pop()}:${f.lineNumber + 1}`;
  };
  const self = new Map<string, number>(), inclusive = new Map<string, number>();
  for (const id of samples) {
    self.set(name(id), (self.get(name(id)) ?? 0) + 1);
    const seen = new Set<string>();
    for (let p: number | undefined = id; p !== undefined; p = parent.get(p)) {
      const k = name(p);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + 1);
    }
  }
  const show = (title: string, counts: Map<string, number>) => {
    console.log(`--- ${title}`);
    for (const [k, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${(n / samples.length * 100).toFixed(1).padStart(5)}%  ${k}`);
    }
  };
  show("inclusive", inclusive);
  show("self", self);
  // Self time by the part of the tree a function lives in: the engine
  // against the actors and adapters it runs, and V8's own work.
  const parts = new Map<string, number>();
  for (const id of samples) {
    const { url, functionName } = byId.get(id)!.callFrame;
    const dir = url.match(/\/(engine|actors|adapters|cli|config)\//)?.[1];
    const part = dir
      ? dir + "/"
      : url.startsWith("file:")
      ? "(other files)"
      : url
      ? "(deno, npm)"
      : functionName.startsWith("RegExp:")
      ? "(regular expressions)"
      : functionName.startsWith("op_")
      ? "(deno ops)"
      : name(id);
    parts.set(part, (parts.get(part) ?? 0) + 1);
  }
  show("self, by part of the tree", parts);
}
