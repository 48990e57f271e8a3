/**
 * The dedupe benchmark: Deduper checks per second with merge on (exact keys,
 * every copy folded into its story), in process and over Redis, next to raw
 * pipelined `SET key event NX PX ttl` on the same Redis in the same run, the
 * least a shared claim can cost: one command per item, one round trip per
 * batch. Over Redis a batch with merge and no near check is one script
 * that claims and folds; the ratio says what the claim answers and the
 * stories (a SET NX of the story a first copy brings; for other copies a
 * GET, a fold and a SET of the story's JSON) add to the bare SET.
 *
 *   deno run -A bench/dedupe.ts [--items N] [--rounds R]   this section alone
 *   (bench/main.ts runs it as `--only dedupe`)
 *
 * Items: the generator's, 30% of them copies (10% exact, 20% syndicated
 * under another url, which exact keys do not catch), enveloped before the
 * clock starts; batches of 500, one at a time, as one dedupe worker runs.
 */
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { dedupeConfigSchema, Deduper } from "../actors/deduper.ts";
import { generateItems } from "../adapters/sources/generator_source.ts";
import type { Outcome } from "../engine/actor.ts";
import { type Envelope, envelope, type ValidItem } from "../engine/item.ts";
import { memoryLogger } from "../engine/log.ts";
import { flowKeys } from "../engine/redis/keys.ts";
import { BenchRedis, haveRedisServer } from "./durable.ts";

const BATCH = 500;

function items(n: number, seed: number): Envelope<ValidItem>[] {
  const { items } = generateItems({
    count: n,
    seed,
    duplicates: 0.1,
    nearDuplicates: 0.2,
    invalid: 0,
  });
  return items.map((p, i) => envelope(p as ValidItem, i % 2 ? "wire" : "mirror", 1e12 + i));
}

/** Runs every batch through a Deduper; returns checks per second and the updates it sent. */
async function runDeduper(
  deduper: Deduper,
  all: Envelope<ValidItem>[],
): Promise<{ perSec: number; updates: number }> {
  let updates = 0;
  const out: Outcome<ValidItem> = {
    emit: (e) => void (e.update && updates++),
    drop: () => {},
    reject: () => {},
  };
  const ctx = {
    flow: "bench",
    stage: "dedupe",
    signal: new AbortController().signal,
    log: memoryLogger(),
  };
  const t0 = performance.now();
  for (let i = 0; i < all.length; i += BATCH) {
    await deduper.handle(all.slice(i, i + BATCH), out, ctx);
  }
  return { perSec: all.length / ((performance.now() - t0) / 1000), updates };
}

/** Raw pipelined SET NX PX, one pipeline of BATCH commands at a time. */
async function runSetNx(redis: Redis, all: Envelope<ValidItem>[], prefix: string): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < all.length; i += BATCH) {
    const pipe = redis.pipeline();
    for (const item of all.slice(i, i + BATCH)) {
      pipe.set(`${prefix}:${item.id}`, item.event, "PX", 86_400_000, "NX");
    }
    await pipe.exec();
  }
  return all.length / ((performance.now() - t0) / 1000);
}

export async function printDedupeSection(n: number, rounds: number): Promise<void> {
  const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
  console.log(
    `\n## dedupe checks/s, ${fmt(n)} items (30% copies), batches of ${BATCH}, best of ${rounds}`,
  );
  let memMerge = 0, memDrop = 0, updates = 0;
  for (let r = 0; r < rounds; r++) {
    const all = items(n, 100 + r);
    const merge = await runDeduper(new Deduper(dedupeConfigSchema.parse({})), all);
    const drop = await runDeduper(new Deduper(dedupeConfigSchema.parse({ merge: false })), all);
    memMerge = Math.max(memMerge, merge.perSec);
    memDrop = Math.max(memDrop, drop.perSec);
    updates = merge.updates;
  }
  console.log(`in process, merge on:     ${fmt(memMerge)} checks/s (${fmt(updates)} updates sent)`);
  console.log(`in process, merge: false: ${fmt(memDrop)} checks/s (baseline, same run)`);
  console.log(`ratio merge / drop:       ${(memMerge / memDrop).toFixed(2)}x`);
  if (!(await haveRedisServer())) {
    console.log("over Redis: skipped, no redis-server on this machine");
    return;
  }
  const server = await BenchRedis.start();
  const redis = new Redis(server.url);
  try {
    let overRedis = 0, overRedisDrop = 0, setNx = 0;
    for (let r = 0; r < rounds; r++) {
      const all = items(n, 200 + r);
      await redis.flushall();
      const durable = { redis, keys: flowKeys(`bench${r}`) };
      const merge = new Deduper(dedupeConfigSchema.parse({}), { durable });
      overRedis = Math.max(overRedis, (await runDeduper(merge, all)).perSec);
      const drop = new Deduper(dedupeConfigSchema.parse({ merge: false }), {
        durable: { redis, keys: flowKeys(`bench-drop${r}`) },
      });
      overRedisDrop = Math.max(overRedisDrop, (await runDeduper(drop, all)).perSec);
      setNx = Math.max(setNx, await runSetNx(redis, all, `setnx${r}`));
    }
    console.log(`over Redis, merge on:     ${fmt(overRedis)} checks/s`);
    console.log(`over Redis, merge: false: ${fmt(overRedisDrop)} checks/s`);
    console.log(`raw pipelined SET NX:     ${fmt(setNx)} keys/s (baseline, same Redis, same run)`);
    console.log(`ratio merge / SET NX:     ${(overRedis / setNx).toFixed(2)}x`);
    console.log(`ratio drop / SET NX:      ${(overRedisDrop / setNx).toFixed(2)}x`);
  } finally {
    redis.disconnect();
    await server.stop();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      items: { type: "string", default: "100000" },
      rounds: { type: "string", default: "3" },
    },
  });
  await printDedupeSection(Number(values.items), Number(values.rounds));
}
