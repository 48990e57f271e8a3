/**
 * One process of the shared-bucket test: builds the polite client the way a
 * durable runtime does (buckets in Redis under the flow's keys), warms up its
 * HTTP stack, waits for a line on stdin so every process starts together, then
 * GETs `url?i` `count` times at once and prints, as JSON, how many succeeded
 * and the waits its bucket asked for. Its clock's sleeps note the wait and
 * return at once: the test reads each request's slot from its wait, not from
 * when it arrived.
 *
 * Usage: _shared_bucket_worker.ts REDIS_PORT PREFIX URL COUNT RPS
 */
import { Redis } from "ioredis";
import { DEFAULT_HTTP } from "../../../adapters/http/http_config.ts";
import { politeHttp } from "../../../adapters/http/polite_http.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { flowKeys } from "../../../engine/redis/keys.ts";

const [port, prefix, url, count, rps] = Deno.args;
const redis = new Redis({ port: Number(port), host: "127.0.0.1", maxRetriesPerRequest: 1 });
const waits: number[] = [];
const http = politeHttp({
  ...DEFAULT_HTTP,
  allow: ["127.0.0.1"],
  perHost: { rps: Number(rps), burst: 1, concurrency: 2 },
}, {
  flow: "polite",
  log: memoryLogger(),
  durable: { redis, keys: flowKeys("polite", prefix) },
}, {
  now: () => 0,
  sleep: (ms) => Promise.resolve(void waits.push(ms)),
}).client();

// The first fetch of a process is slow (its HTTP client starts up): warm up first.
await (await fetch(new URL("/warmup", url))).text();
console.log("ready");
await Deno.stdin.readable.getReader().read();
const got = await Promise.allSettled(
  Array.from({ length: Number(count) }, (_, i) => http.get(`${url}?${Deno.pid}-${i}`)),
);
console.log(JSON.stringify({ ok: got.filter((r) => r.status === "fulfilled").length, waits }));
redis.disconnect();
