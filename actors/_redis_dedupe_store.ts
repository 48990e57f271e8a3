import type { Redis } from "ioredis";
import { RedisScript } from "../engine/redis/redis_script.ts";
import type { Claim, ClaimRequest, DedupeStore } from "./_dedupe_store.ts";

/** The Redis key of an exact dedupe key under a stage's base (`FlowKeys.dedupe(stage)`). */
export function exactKey(base: string, key: string): string {
  return `${base}:k:${key}`;
}

/**
 * KEYS: one per claim. ARGV[1]: ttl in ms, ARGV[1 + i]: the event of claim i.
 * SET NX GET (Redis 7) sets a free key and returns the holder of a taken
 * one in one command. Answers 0 new, 1 same-event, 2 duplicate.
 */
const CLAIM = new RedisScript(`
local out = {}
for i, key in ipairs(KEYS) do
  local event = ARGV[i + 1]
  local held = redis.call('SET', key, event, 'NX', 'PX', ARGV[1], 'GET')
  if not held then out[i] = 0 elseif held == event then out[i] = 1 else out[i] = 2 end
end
return out
`);

/** KEYS: one per claim; ARGV[i]: its event. Deletes each key its event still holds. */
const RELEASE = new RedisScript(`
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i] then redis.call('DEL', key) end
end
return 0
`);

const ANSWERS: readonly Claim[] = ["new", "same-event", "duplicate"];

/**
 * Claims kept in Redis, shared by every process of a durable flow: one
 * string per key, `<base>:k:<key>` holding the event that claimed it, with a
 * PX expiry of the ttl. A batch of claims is one script, so one round trip
 * and atomic: two processes claiming the same key at once get "new" in one
 * and "duplicate" in the other.
 *
 * Time is Redis's: a claim expires by the server's clock, and the `now`
 * passed in is ignored (it serves the in-process store and fake clocks in
 * tests). There is no bloom filter in front: a local one cannot know the
 * keys other processes claimed.
 */
export class RedisDedupeStore implements DedupeStore {
  constructor(readonly redis: Redis, readonly base: string) {}

  async claimMany(claims: readonly ClaimRequest[], _now: number, ttl: number): Promise<Claim[]> {
    if (claims.length === 0) return [];
    const keys = claims.map((c) => exactKey(this.base, c.key));
    const args = [String(Math.max(1, Math.round(ttl))), ...claims.map((c) => c.event)];
    const got = await CLAIM.run(this.redis, keys, args) as number[];
    return got.map((n) => ANSWERS[n]);
  }

  async release(claims: readonly ClaimRequest[]): Promise<void> {
    if (claims.length === 0) return;
    const keys = claims.map((c) => exactKey(this.base, c.key));
    await RELEASE.run(this.redis, keys, claims.map((c) => c.event));
  }
}
