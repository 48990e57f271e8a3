/**
 * Bytes per item of near-duplicate state, in process and in Redis:
 *
 *   deno run -A --v8-flags=--expose-gc bench/near_state.ts [items] [redis url]
 *
 * In process: heap plus external (typed array) bytes after a full GC, with
 * the near index fed `items` unique generated texts (default 200,000),
 * minus the same run with an index that keeps nothing, so the generator's
 * own garbage does not count; beside it the index's own count of its arrays
 * (`storedBytes`). In Redis (default redis://127.0.0.1:6379, skipped when
 * none answers): `MEMORY USAGE` of the index's keys over 20,000 items, under
 * a fresh key prefix that is deleted afterwards, and the µs Redis spent in
 * their lookups (batches of 500). Run on its own, not from
 * `deno task bench`: it needs --expose-gc (and --allow-run: each in-process
 * measurement runs in a fresh process).
 */
import { Redis } from "ioredis";
import { generateItems } from "../adapters/sources/generator_source.ts";
import { MemoryDedupeStore, MemoryNearIndex, RedisNearIndex } from "../actors/deduper.ts";
import type { NearIndex, NearRequest } from "../actors/_dedupe_store.ts";
import { minhash } from "../actors/_minhash.ts";
import { plainText, words } from "../actors/_text.ts";
import { envelope } from "../engine/item.ts";

const items = Number(Deno.args[0] ?? 200_000);
const redisUrl = Deno.args[1] ?? "redis://127.0.0.1:6379";
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");
const CHUNK = 20_000;

/** Feeds `count` unique generated texts to `index` in batches of 500. */
async function feed(index: NearIndex, count: number, seed: number): Promise<void> {
  for (let from = 0; from < count; from += CHUNK) {
    const { items: made } = generateItems({
      count: Math.min(CHUNK, count - from),
      seed: seed + from,
      duplicates: 0,
      nearDuplicates: 0,
      invalid: 0,
    });
    const requests: NearRequest[] = made.map((item) => {
      const e = envelope(item, "bench", 0);
      const text = words(plainText(item.text ?? "")).map((w) => w.toLowerCase());
      return { key: e.id, event: e.event, id: e.id, signature: minhash(text, 3)! };
    });
    for (let i = 0; i < requests.length; i += 500) {
      await index.matchMany(requests.slice(i, i + 500), 1, 86_400_000);
    }
  }
}

/** Heap plus external bytes held after feeding `index`, over what was held before. */
async function heldBy(index: NearIndex): Promise<number> {
  gc!();
  const before = Deno.memoryUsage();
  await feed(index, items, 1_000);
  gc!();
  const after = Deno.memoryUsage();
  return after.heapUsed + after.external - before.heapUsed - before.external;
}

// Each measurement in a fresh process: what one run leaves behind (compiled code, caches of the
// generator) must not count against the other.
const mode = Deno.env.get("NEAR_STATE_MODE");
if (mode !== undefined) {
  const memory = new MemoryNearIndex(new MemoryDedupeStore(), 0.8);
  const nothing: NearIndex = { matchMany: (requests) => requests.map(() => undefined) };
  const held = await heldBy(mode === "index" ? memory : nothing);
  console.log(JSON.stringify({ held, stored: memory.storedBytes, size: memory.size }));
  Deno.exit(0);
}
async function measure(which: string): Promise<{ held: number; stored: number; size: number }> {
  const self = new URL(import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", self, String(items)],
    env: { NEAR_STATE_MODE: which },
    stderr: "inherit",
  }).output();
  return JSON.parse(new TextDecoder().decode(out.stdout));
}
const baseline = await measure("nothing");
const memory = await measure("index");
console.log(
  `near state in process, ${items} items: ` +
    `${((memory.held - baseline.held) / items).toFixed(0)} bytes/item ` +
    `(heap + external over a run without an index); the index counts ` +
    `${(memory.stored / memory.size).toFixed(0)} bytes/item in its arrays`,
);

const redis = new Redis(redisUrl, {
  lazyConnect: true,
  connectTimeout: 2_000,
  maxRetriesPerRequest: 1,
});
try {
  await redis.connect();
} catch {
  console.log(`near state in Redis: skipped, nothing answers at ${redisUrl}`);
  Deno.exit(0);
}
const base = `bench-near{${crypto.randomUUID().slice(0, 8)}}`;
const n = 20_000;
/** µs Redis spent in scripts so far (INFO commandstats): every script, anyone's. */
async function scriptUs(): Promise<number> {
  const info = await redis.info("commandstats");
  let us = 0;
  for (const m of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=\d+,usec=(\d+)/gm)) {
    us += Number(m[1]);
  }
  return us;
}
try {
  const before = await scriptUs();
  await feed(new RedisNearIndex(redis, base, 0.8), n, 99);
  const lookup = (await scriptUs() - before) / n;
  const keys = await redis.keys(`${base}*`);
  let bytes = 0;
  for (const k of keys) bytes += Number(await redis.call("MEMORY", "USAGE", k, "SAMPLES", "0"));
  console.log(
    `near state in Redis, ${n} items: ${(bytes / n).toFixed(0)} bytes/item; lookups took ` +
      `${lookup.toFixed(1)} µs of Redis per item (scripts' commandstats µs: on a Redis nobody ` +
      `else runs scripts on)`,
  );
  if (keys.length > 0) await redis.del(...keys);
} finally {
  redis.disconnect();
}
