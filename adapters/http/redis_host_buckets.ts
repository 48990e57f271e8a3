import type { Redis } from "ioredis";
import type { FlowKeys } from "../../engine/redis/keys.ts";
import { RedisScript } from "../../engine/redis/redis_script.ts";
import type { HostBuckets } from "./host_buckets.ts";

/**
 * gcra.ts's reserve and pauseUntil in Lua, on Redis's own clock (TIME), so
 * every process of a durable flow draws on one bucket per host whatever
 * its own clock says. One call per request; the key expires once the
 * bucket is full again, so hosts seen once leave nothing behind.
 *
 * KEYS[1] the host's bucket, KEYS[2] its pause (a key that lives as long
 * as the pause); ARGV interval ms, burst, pause ms (0: a take).
 * Returns the ms to wait (a take) or 0 (a pause).
 */
const BUCKET = new RedisScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local pause = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local wait = 0
if pause > 0 then
  tat = math.max(tat, now + pause + (burst - 1) * interval)
  if redis.call('PTTL', KEYS[2]) < pause then redis.call('SET', KEYS[2], '1', 'PX', pause) end
else
  wait = math.max(0, tat - (burst - 1) * interval - now)
  tat = math.max(tat, now) + interval
end
redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
return math.ceil(wait)
`);

/** The per-host buckets of a durable flow, shared by every process through Redis. */
export class RedisHostBuckets implements HostBuckets {
  constructor(private readonly redis: Redis, private readonly keys: FlowKeys) {}

  async take(host: string, interval: number, burst: number): Promise<number> {
    return Number(
      await BUCKET.run(this.redis, this.#keys(host), [String(interval), String(burst), "0"]),
    );
  }

  async pause(host: string, ms: number, interval: number, burst: number): Promise<void> {
    await BUCKET.run(this.redis, this.#keys(host), [
      String(interval),
      String(burst),
      String(Math.max(1, ms)),
    ]);
  }

  async pausedFor(host: string): Promise<number> {
    return Math.max(0, await this.redis.pttl(this.#keys(host)[1]));
  }

  #keys(host: string): string[] {
    const bucket = this.keys.host(host);
    return [bucket, `${bucket}:pause`];
  }
}
