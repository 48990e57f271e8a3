import type { Redis } from "ioredis";
import { RedisScript } from "../engine/redis/redis_script.ts";
import type { Claim, ClaimRequest, DedupeStore } from "./_dedupe_store.ts";
import type { MergeRequest, Story } from "./_story.ts";

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

/** The Redis key of a story's merged state under a stage's base. */
export function storyKey(base: string, story: string): string {
  return `${base}:m:${story}`;
}

/**
 * KEYS: the story of each copy. ARGV[1]: ttl in ms; ARGV[1 + i]: copy i as
 * JSON {s: source, u: url, t: seen at, g: engagement}. foldCopy of
 * _story.ts, in Lua so that copies folded by several processes at once into
 * one story lose nothing: a script runs alone. A new story lives for the
 * ttl; a fold keeps its expiry. Returns each story's JSON after its fold.
 */
const MERGE = new RedisScript(`
local out = {}
for i, key in ipairs(KEYS) do
  local copy = cjson.decode(ARGV[i + 1])
  local raw = redis.call('GET', key)
  local st
  if raw then st = cjson.decode(raw) else st = { r = 0, s = {}, g = {}, l = 0 } end
  local changed, found = false, false
  for _, x in ipairs(st.s) do
    if x[1] == copy.s and x[2] == copy.u then
      found = true
      if copy.t < x[3] then x[3] = copy.t; changed = true end
    end
  end
  if not found then st.s[#st.s + 1] = { copy.s, copy.u, copy.t }; changed = true end
  for f, v in pairs(copy.g) do
    local held = st.g[f]
    if held == nil or v > held then st.g[f] = v; changed = true end
  end
  if copy.t > st.l then st.l = copy.t; changed = true end
  if changed then
    st.r = st.r + 1
    raw = cjson.encode(st)
    if st.r == 1 then
      redis.call('SET', key, raw, 'PX', ARGV[1])
    else
      redis.call('SET', key, raw, 'KEEPTTL')
    end
  end
  out[i] = raw
end
return out
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

  async mergeMany(copies: readonly MergeRequest[], _now: number, ttl: number): Promise<Story[]> {
    if (copies.length === 0) return [];
    const keys = copies.map((c) => storyKey(this.base, c.story));
    const args = [String(Math.max(1, Math.round(ttl)))];
    for (const c of copies) {
      args.push(JSON.stringify({ s: c.source, u: c.url, t: c.seenAt, g: c.engagement }));
    }
    const got = await MERGE.run(this.redis, keys, args) as string[];
    return got.map(parseStory);
  }

  async release(claims: readonly ClaimRequest[]): Promise<void> {
    if (claims.length === 0) return;
    const keys = claims.map((c) => exactKey(this.base, c.key));
    await RELEASE.run(this.redis, keys, claims.map((c) => c.event));
  }
}

/** A story as the merge script returns it; cjson writes an empty engagement table as {} or []. */
function parseStory(json: string): Story {
  const st = JSON.parse(json) as Story;
  if (Array.isArray(st.g)) st.g = {};
  if (!Array.isArray(st.s)) st.s = [];
  return st;
}
