/**
 * Redis CPU per item of the demo flow's durable run (bench/real_pipeline.ts's
 * durable child: flows/demo.yaml's stages over Redis Streams, one process),
 * per script and per command, from Redis's own counters, so that a loaded
 * machine moves the figures less than it moves wall time:
 *
 *   deno run -A bench/redis_costs.ts [--items N] [--rounds R] [--against DIR]... [--fuse] [--fuse-all]
 *
 * `--fuse` also runs this checkout with `durable.fuse`, as a column of its own;
 * `--fuse-all` with `fuse: all`.
 * Each round runs this checkout and then each `--against` checkout (a `git
 * worktree` of an older commit) on one redis-server of the bench's own,
 * flushed and with its stats reset (CONFIG RESETSTAT, SLOWLOG RESET) before
 * each run. Redis's whole CPU (INFO cpu, user + system: parsing and replies
 * included); each command's calls and µs from INFO commandstats (a script's
 * µs include the commands it calls, which are also counted on their own);
 * and each script's µs from SLOWLOG, which logs calls over 50 µs (every
 * script call of a batch takes longer; the commands scripts call rarely do,
 * and any logged is left out), each named by what its keys say it is, with
 * the share of the scripts' commandstats µs it covers. A figure is the median
 * round's µs (or calls) per generated item.
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { BenchRedis } from "./durable.ts";

const HERE = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"];

/** What one run of one checkout cost Redis. */
interface Costs {
  itemsPerSec: number;
  /** Redis CPU (user + system) over the run, µs. */
  cpuUs: number;
  /** Script name -> [calls, µs] from SLOWLOG. */
  scripts: Map<string, [number, number]>;
  /** Command -> [calls, µs] from INFO commandstats (scripts' own calls included). */
  stats: Map<string, [number, number]>;
}

/** What a script is, from the keys and arguments SLOWLOG kept of one call. */
function scriptName(args: string[]): string {
  const text = args.slice(2).join(" ");
  if (text.includes(":near") && text.includes(":m:")) return "script: near match+merge";
  if (text.includes(":near")) return "script: near match";
  if (text.includes(":m:") && text.includes(":k:")) return "script: dedupe claim+merge";
  if (text.includes(":m:")) return "script: dedupe merge";
  if (/:k:/.test(text) && args[2] !== "0") return "script: dedupe claim/release";
  const input = args[3]?.match(/:in:([^:\s]+)/);
  if (input) return `script: commit of ${input[1]}`;
  return "script: other";
}

async function cpuUs(redis: Redis): Promise<number> {
  const info = await redis.info("cpu");
  const num = (name: string) => Number(info.match(new RegExp(`^${name}:([\\d.]+)`, "m"))![1]);
  return (num("used_cpu_user") + num("used_cpu_sys")) * 1e6;
}

/** Runs `root`'s durable demo child once against a fresh `redis`. */
/** A column: a checkout, and its flow's `durable.fuse`. */
interface Run {
  root: string;
  fuse: boolean | "all";
}

async function runOnce({ root, fuse }: Run, bench: BenchRedis, items: number): Promise<Costs> {
  const redis = new Redis(bench.url);
  try {
    await redis.flushall();
    await redis.config("SET", "slowlog-log-slower-than", "50");
    await redis.config("SET", "slowlog-max-len", "1000000");
    await redis.slowlog("RESET");
    await redis.config("RESETSTAT");
    const before = await cpuUs(redis);
    const prefix = `costs${crypto.randomUUID().slice(0, 8)}`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...PERMS, `${root}/bench/real_pipeline.ts`, "child", "durable", String(items)]
        .concat(["0", bench.url, prefix, fuse === "all" ? "fuse: all" : fuse ? "fuse" : ""]),
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`redis costs: the durable run of ${root} failed`);
    const figure = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
    const cpu = await cpuUs(redis) - before;
    const log = await redis.slowlog("GET", -1) as [number, number, number, string[]][];
    const scripts = new Map<string, [number, number]>();
    for (const [, , us, args] of log) {
      const cmd = args[0].toLowerCase();
      if (cmd !== "evalsha" && cmd !== "eval") continue;
      const name = scriptName(args);
      const t = scripts.get(name) ?? [0, 0];
      scripts.set(name, [t[0] + 1, t[1] + us]);
    }
    const stats = new Map<string, [number, number]>();
    const info = await redis.info("commandstats");
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
      if (m[1] === "info" || m[1].startsWith("config") || m[1].startsWith("slowlog")) continue;
      stats.set(m[1], [Number(m[2]), Number(m[3])]);
    }
    return { itemsPerSec: items / figure.secs, cpuUs: cpu, scripts, stats };
  } finally {
    redis.disconnect();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** Prints each checkout's median figures per item side by side. */
function print(columns: Run[], runs: Costs[][], items: number): void {
  const col = (s: string) => s.padStart(14);
  const label = (s: string) => s.padEnd(38);
  const row = (name: string, f: (c: Costs) => number, digits = 1) =>
    console.log(label(name) + runs.map((rs) => col(median(rs.map(f)).toFixed(digits))).join(""));
  const sum = (m: Map<string, [number, number]>, names?: string[]) =>
    [...m].reduce((n, [k, v]) => n + (!names || names.includes(k) ? v[1] : 0), 0);
  const keys = (f: (c: Costs) => Map<string, [number, number]>) => {
    const all = [...new Set(runs.flatMap((rs) => rs.flatMap((c) => [...f(c).keys()])))];
    const first = (k: string) => runs[0].reduce((n, c) => n + (f(c).get(k)?.[1] ?? 0), 0);
    return all.sort((a, b) => first(b) - first(a));
  };
  const name = (c: Run) =>
    c.root.split("/").at(-1)! + (c.fuse === "all" ? ", fuse: all" : c.fuse ? ", fused" : "");
  console.log(label("per item") + columns.map((c) => col(name(c))).join(""));
  row("items/s (wall time: noisy)", (c) => c.itemsPerSec, 0);
  row("Redis CPU µs, user + system", (c) => c.cpuUs / items);
  row("scripts µs (commandstats)", (c) => sum(c.stats, ["evalsha", "eval"]) / items);
  row("  share timed by SLOWLOG", (c) => sum(c.scripts) / sum(c.stats, ["evalsha", "eval"]), 3);
  for (const name of keys((c) => c.scripts)) {
    row(`  ${name} µs`, (c) => (c.scripts.get(name)?.[1] ?? 0) / items);
    row(`    calls`, (c) => (c.scripts.get(name)?.[0] ?? 0) / items, 4);
  }
  console.log("commands, calls per item (commandstats; scripts' own calls included)");
  for (const name of keys((c) => c.stats)) {
    row(`  ${name}`, (c) => (c.stats.get(name)?.[0] ?? 0) / items, 3);
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      items: { type: "string", default: "20000" },
      rounds: { type: "string", default: "3" },
      against: { type: "string", multiple: true, default: [] },
      fuse: { type: "boolean", default: false },
      "fuse-all": { type: "boolean", default: false },
    },
  });
  const items = Number(values.items);
  const columns: Run[] = [
    { root: HERE, fuse: false },
    ...values.against.map((d) => ({ root: d.replace(/\/$/, ""), fuse: false })),
    ...(values.fuse ? [{ root: HERE, fuse: true }] : []),
    ...(values["fuse-all"] ? [{ root: HERE, fuse: "all" as const }] : []),
  ];
  const bench = await BenchRedis.start();
  const runs: Costs[][] = columns.map(() => []);
  try {
    for (let r = 0; r < Number(values.rounds); r++) {
      for (const [i, c] of columns.entries()) runs[i].push(await runOnce(c, bench, items));
    }
  } finally {
    await bench.stop();
  }
  console.log(
    `## Redis per item, demo flow durable, 1 process, ${items} items, ` +
      `median of ${values.rounds} rounds (bench/redis_costs.ts)`,
  );
  print(columns, runs, items);
}
