/**
 * One process of the shared-bucket test: builds the polite client the way a
 * durable runtime does (buckets in Redis under the flow's keys), warms up its
 * HTTP stack, waits for a line on stdin so every process starts together, then GETs `url?i` `count`
 * times at once and prints how many succeeded.
 *
 * Usage: _shared_bucket_worker.ts REDIS_PORT PREFIX URL COUNT
 */
import { Redis } from "ioredis";
import { DEFAULT_HTTP } from "../../../adapters/http/http_config.ts";
import { politeHttp } from "../../../adapters/http/polite_http.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { flowKeys } from "../../../engine/redis/keys.ts";

const [port, prefix, url, count] = Deno.args;
const redis = new Redis({ port: Number(port), host: "127.0.0.1", maxRetriesPerRequest: 1 });
const http = politeHttp({
  ...DEFAULT_HTTP,
  allow: ["127.0.0.1"],
  perHost: { rps: 5, burst: 1, concurrency: 2 },
}, {
  flow: "polite",
  log: memoryLogger(),
  durable: { redis, keys: flowKeys("polite", prefix) },
}).client();

// The first fetch of a process is slow (its HTTP client starts up), which would
// bunch its first request with the next one's at the server: warm up first.
await (await fetch(new URL("/warmup", url))).text();
console.log("ready");
await Deno.stdin.readable.getReader().read();
const got = await Promise.allSettled(
  Array.from({ length: Number(count) }, (_, i) => http.get(`${url}?${Deno.pid}-${i}`)),
);
console.log(got.filter((r) => r.status === "fulfilled").length);
redis.disconnect();
