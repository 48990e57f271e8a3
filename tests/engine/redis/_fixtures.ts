import { join } from "node:path";
import type { Redis } from "ioredis";
import { builtinRegistry } from "../../../builtins.ts";
import { loadFlow } from "../../../config/load_flow.ts";
import type { Flow } from "../../../engine/flow.ts";
import type { Envelope } from "../../../engine/item.ts";

/** A durable flow of three stages (validate, enrich, publish) on the given Redis. */
export function flowYaml(
  redis: string,
  opts: { name?: string; durability?: string; output?: string } = {},
): string {
  return [
    `name: ${opts.name ?? "ops"}`,
    `durability: ${opts.durability ?? "redis"}`,
    `redis: ${redis}`,
    `output: ${opts.output ?? "out/ops"}`,
    "sources:",
    "  newsroom: { kind: generator, count: 10, seed: 1 }",
    "pipeline:",
    "  - validate: { require: [title, url] }",
    "  - enrich: { steps: [domain] }",
    "  - publish:",
    "      - jsonl: { path: items.jsonl }",
    "",
  ].join("\n");
}

/** Writes the flow file into a fresh temp dir and loads it; returns the flow and its path. */
export async function writeFlow(
  redis: string,
  opts: { name?: string; durability?: string } = {},
): Promise<{ flow: Flow; file: string; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "millrace-ops-" });
  const file = join(dir, "flow.yaml");
  await Deno.writeTextFile(file, flowYaml(redis, { ...opts, output: join(dir, "out") }));
  return { flow: await loadFlow(file, builtinRegistry()), file, dir };
}

/** A small envelope; `i` makes it unique. */
export function item(i: number, attempts = 0): Envelope<unknown> {
  return {
    id: `id${i}`,
    event: `ev${i}`,
    source: "newsroom",
    seenAt: 1_700_000_000_000 + i,
    attempts,
    payload: { title: `Title number ${i}`, url: `https://example.com/${i}` },
  };
}

/** Appends one stage-stream entry carrying `items`, in the {b, n} format of keys.ts. */
export function addEntry(redis: Redis, key: string, items: Envelope<unknown>[]): Promise<string> {
  return redis.xadd(key, "*", "b", JSON.stringify(items), "n", String(items.length)) as Promise<
    string
  >;
}
