/**
 * The durable demo pipeline of this checkout against another checkout of
 * millrace (a `git worktree` of an older commit), run alternately, one
 * process each, on one redis-server: each pair of runs is back to back, so
 * their ratio holds on a machine whose speed drifts over minutes (a shared
 * one varies by 1.5x between runs of a whole bench section). Each run is
 * bench/real_pipeline.ts's own durable child, from each checkout's tree:
 *
 *   deno run -A bench/durable_against.ts --against DIR [--items N] [--rounds R] [--variants ,fuse]
 *
 * Each line gives both runs' items/s and CPU per item (user + system, all
 * threads). `--variants` lists the runs of a round, comma-separated, by
 * real_pipeline.ts's names: "" (the demo as it is), "fuse",
 * "dedupe concurrency: 2", "fuse, dedupe concurrency: 2".
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { BenchRedis } from "./durable.ts";

const HERE = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const USAGE = "usage: deno run -A bench/durable_against.ts --against DIR " +
  "[--items N] [--rounds R] [--variants ,fuse]";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    against: { type: "string" },
    items: { type: "string", default: "30000" },
    rounds: { type: "string", default: "3" },
    variants: { type: "string", default: ",fuse" },
  },
});
if (!values.against) {
  console.error(USAGE);
  Deno.exit(2);
}
const trees = [["that", values.against.replace(/\/$/, "")], ["this", HERE]];
const variants = values.variants.split(",");
const ratios = new Map<string, number[]>(variants.map((v) => [v, []]));

/** One durable run of a checkout's real_pipeline.ts: items/s, and CPU µs per item. */
async function run(dir: string, url: string, variant: string): Promise<[number, number]> {
  const prefix = `against${crypto.randomUUID().slice(0, 8)}`;
  const out = await new Deno.Command(Deno.execPath(), {
    cwd: dir,
    args: [
      "run",
      "-A",
      "bench/real_pipeline.ts",
      "child",
      "durable",
      values.items,
      "0",
      url,
      prefix,
      variant,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`durable run in ${dir} failed`);
  const f = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
  return [f.items / f.secs, f.cpuSecs * 1e6 / f.items];
}

const redis = await BenchRedis.start();
try {
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const variant of variants) {
      const [that, thatCpu] = await run(trees[0][1], redis.url, variant);
      const [self, selfCpu] = await run(trees[1][1], redis.url, variant);
      ratios.get(variant)!.push(self / that);
      console.log(
        `round ${r + 1}, ${(variant || "as the demo is").padEnd(28)} that ${
          Math.round(that)
        } items/s (CPU ${Math.round(thatCpu)} µs/item), this ${Math.round(self)} items/s ` +
          `(CPU ${Math.round(selfCpu)} µs/item): ${(self / that).toFixed(2)}x`,
      );
    }
  }
} finally {
  await redis.stop();
}
for (const [variant, rs] of ratios) {
  const sorted = [...rs].sort((a, b) => a - b);
  console.log(
    `${(variant || "as the demo is").padEnd(28)} this / that: ${
      sorted.map((x) => x.toFixed(2)).join(", ")
    } (median ${sorted[Math.floor(sorted.length / 2)].toFixed(2)}x)`,
  );
}
