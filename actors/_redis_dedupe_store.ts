import type { Redis } from "ioredis";
import { RedisScript } from "../engine/redis/redis_script.ts";
import type { Claim, ClaimRequest, DedupeStore } from "./_dedupe_store.ts";
import { freshStory, type MergeRequest, type Story } from "./_story.ts";

/** The Redis key of an exact dedupe key under a stage's base (`FlowKeys.dedupe(stage)`). */
export function exactKey(base: string, key: string): string {
  return `${base}:k:${key}`;
}

/**
 * `claim(key, event, ttl)`, in Lua for every script that claims keys:
 * SET NX GET (Redis 7) sets a free key and returns the holder of a taken
 * one in one command. Answers 0 new, 1 same-event, 2 duplicate
 * (CLAIM_ANSWERS).
 */
export const CLAIM_LUA = `
local function claim(key, event, ttl)
  local held = redis.call('SET', key, event, 'NX', 'PX', ttl, 'GET')
  if not held then return 0 elseif held == event then return 1 else return 2 end
end
`;

/** KEYS: one per claim. ARGV[1]: ttl in ms, ARGV[1 + i]: the event of claim i. */
const CLAIM = new RedisScript(
  `${CLAIM_LUA}
local out = {}
for i, key in ipairs(KEYS) do out[i] = claim(key, ARGV[i + 1], ARGV[1]) end
return out
`,
  { offlineQueue: false },
);

/** KEYS: one per claim; ARGV[i]: its event. Deletes each key its event still holds. */
const RELEASE = new RedisScript(
  `
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i] then redis.call('DEL', key) end
end
return 0
`,
  { offlineQueue: false },
);

/** The Redis key of a story's merged state under a stage's base. */
export function storyKey(base: string, story: string): string {
  return `${base}:m:${story}`;
}

/**
 * mergeCopy of _story.ts in Lua, with the story cache of one script run:
 * `parse(i)` reads the copy at ARGV[i] (story id, own key, mode, source,
 * url, seen at, the story it makes if it is the first copy of a story not
 * held (JSON, or "" to fold it here), n, then n engagement name/value
 * pairs) and returns it with the index after it; `merge(c)` folds it and
 * returns the reply for it; `flush()` stores every story the run changed.
 * Needs `ttl` and `prefix`.
 *
 * A first copy of a story not held (most copies) is stored by one SET NX as
 * the JSON it brought, which is what folding it into an empty story gives,
 * and answered "+" (the sender knows the story); only if the story turns
 * out held does it fold as any copy. Its story is decoded again only if a
 * later copy of the run needs it.
 */
export const MERGE_LIB = `
local cache, existed, dirty, order, fresh, renew = {}, {}, {}, {}, {}, {}
local function get(id)
  local st = cache[id]
  if st == nil and fresh[id] then
    st = cjson.decode(fresh[id])
    fresh[id] = nil
    cache[id] = st
  elseif st == nil then
    local raw = redis.call('GET', prefix .. id)
    existed[id] = raw and true or false
    if raw then st = cjson.decode(raw) else st = false end
    cache[id] = st
  end
  if st == false then return nil end
  return st
end
local function set(id, st, anew)
  if existed[id] == nil then get(id) end
  if anew then renew[id] = true end
  cache[id] = st
  if not dirty[id] then dirty[id] = true; order[#order + 1] = id end
end
local function fold(st, src, url, t, g)
  local changed, found = false, false
  for _, x in ipairs(st.s) do
    if x[1] == src and x[2] == url then
      found = true
      if t < x[3] then x[3] = t; changed = true end
    end
  end
  if not found then st.s[#st.s + 1] = { src, url, t }; changed = true end
  for f, v in pairs(g) do
    local held = st.g[f]
    if held == nil or v > held then st.g[f] = v; changed = true end
  end
  if t > st.l then st.l = t end
  return changed
end
local encoded = {}
local function parse(i)
  local c = { id = ARGV[i], own = ARGV[i + 1], m = ARGV[i + 2], s = ARGV[i + 3], u = ARGV[i + 4],
    t = tonumber(ARGV[i + 5]), j = ARGV[i + 6], g = {} }
  local n = tonumber(ARGV[i + 7])
  for k = 1, n do c.g[ARGV[i + 6 + 2 * k]] = tonumber(ARGV[i + 7 + 2 * k]) end
  return c, i + 8 + 2 * n
end
local function merge(c)
  local id = c.id
  if c.m == 'first' and c.j ~= '' and cache[id] == nil and not fresh[id] then
    local held = redis.call('SET', prefix .. id, c.j, 'NX', 'PX', ttl, 'GET')
    existed[id] = true
    if not held then
      fresh[id] = c.j
      return '+'
    end
    cache[id] = cjson.decode(held)
  end
  local st = get(id)
  if c.m == 'duplicate' and st and st.a then id = st.a; st = get(id) end
  if st == nil or st.a then st = { r = 0, s = {}, g = {}, l = 0 }; set(id, st, true) end
  local seen = st.l
  local changed = fold(st, c.s, c.u, c.t, c.g)
  if c.m == 'near' and c.own ~= id then
    local own = get(c.own)
    if own == nil or own.a or own.r == 0 then
      if own and not own.a then
        for _, x in ipairs(own.s) do
          if fold(st, x[1], x[2], x[3], own.g) then changed = true end
        end
      end
      set(c.own, { r = 0, s = {}, g = {}, l = 0, a = id }, true)
      encoded[c.own] = nil
    end
  end
  if c.m == 'first' and st.r == 0 then st.r = 1
  elseif changed and st.r > 0 then st.r = st.r + 1 end
  if changed or st.l ~= seen or c.m == 'first' then set(id, st) end
  -- Encoded once: the reply and, if it is the story's last state in the run, the value stored.
  local e = cjson.encode(st)
  encoded[id] = e
  if st.r > 0 then return id .. ' ' .. e end
  return ''
end
local function flush()
  for _, id in ipairs(order) do
    local e = encoded[id] or cjson.encode(cache[id])
    if existed[id] and not renew[id] then
      redis.call('SET', prefix .. id, e, 'KEEPTTL')
    else
      redis.call('SET', prefix .. id, e, 'PX', ttl)
    end
  end
end
`;

/**
 * No KEYS: stories are named by ids found on the way (an alias names its
 * story), so the script builds their keys from ARGV[2], the prefix
 * `<base>:m:` (one hash tag on Redis Cluster keeps them in one slot).
 * ARGV[1]: ttl in ms; then the copies as MERGE_LIB's `parse` reads them
 * (positional, so no JSON is decoded per copy). One script, so that copies
 * folded by several processes at once lose nothing. A new story lives for
 * the ttl (one made where an alias stood too: StoryMap `fresh`); a fold
 * keeps its expiry. Returns per copy "<story id> <story
 * JSON>" after the fold, "+" for a first copy stored as the story it
 * brought, or "" while the story is pending.
 */
const MERGE = new RedisScript(
  `
local ttl, prefix = ARGV[1], ARGV[2]
${MERGE_LIB}
local out, i = {}, 3
while i <= #ARGV do
  local c
  c, i = parse(i)
  out[#out + 1] = merge(c)
end
flush()
return out
`,
  { offlineQueue: false },
);

/**
 * CLAIM and MERGE in one script, for a flow with no near check between
 * them: ARGV[1] ttl, ARGV[2] the story prefix, ARGV[3] the claim prefix
 * (`<base>:k:`); then per item its key and event, and its copy as `parse`
 * reads it (story and own = the key; the mode comes from the claim: a
 * duplicate joins, else the copy is its story's first). Returns per item
 * its claim answer (0 new, 1 same-event, 2 duplicate) and its merge reply.
 */
const CLAIM_MERGE = new RedisScript(
  `
local ttl, prefix, claims = ARGV[1], ARGV[2], ARGV[3]
${MERGE_LIB}${CLAIM_LUA}
local out, i = {}, 4
while i <= #ARGV do
  local key, event = ARGV[i], ARGV[i + 1]
  local answer = claim(claims .. key, event, ttl)
  local c
  c, i = parse(i + 2)
  if answer == 2 then c.m = 'duplicate' else c.m = 'first' end
  out[#out + 1] = answer
  out[#out + 1] = merge(c)
end
flush()
return out
`,
  { offlineQueue: false },
);

/** A claim's answers by number (CLAIM_LUA's, in every script that claims). */
export const CLAIM_ANSWERS: readonly Claim[] = ["new", "same-event", "duplicate"];

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
    return got.map((n) => CLAIM_ANSWERS[n]);
  }

  async claimAndMergeMany(
    claims: readonly ClaimRequest[],
    copies: readonly MergeRequest[],
    _now: number,
    ttl: number,
  ): Promise<{ answers: Claim[]; stories: (Story | undefined)[] }> {
    if (claims.length === 0) return { answers: [], stories: [] };
    const args = [
      String(Math.max(1, Math.round(ttl))),
      storyKey(this.base, ""),
      exactKey(this.base, ""),
    ];
    for (let i = 0; i < claims.length; i++) {
      args.push(claims[i].key, claims[i].event);
      pushCopy(args, copies[i]);
    }
    const got = await CLAIM_MERGE.run(this.redis, [], args) as (number | string)[];
    const answers: Claim[] = new Array(claims.length);
    const stories: (Story | undefined)[] = new Array(claims.length);
    for (let i = 0; i < claims.length; i++) {
      answers[i] = CLAIM_ANSWERS[got[2 * i] as number];
      stories[i] = storyOf(got[2 * i + 1] as string, copies[i]);
    }
    return { answers, stories };
  }

  async mergeMany(
    copies: readonly MergeRequest[],
    _now: number,
    ttl: number,
  ): Promise<(Story | undefined)[]> {
    if (copies.length === 0) return [];
    const args = [String(Math.max(1, Math.round(ttl))), storyKey(this.base, "")];
    for (const c of copies) pushCopy(args, c);
    const got = await MERGE.run(this.redis, [], args) as string[];
    return got.map((reply, i) => storyOf(reply, copies[i]));
  }

  async release(claims: readonly ClaimRequest[]): Promise<void> {
    if (claims.length === 0) return;
    const keys = claims.map((c) => exactKey(this.base, c.key));
    await RELEASE.run(this.redis, keys, claims.map((c) => c.event));
  }
}

/** A copy as MERGE_LIB's `parse` reads it: positional arguments. */
export function pushCopy(args: string[], c: MergeRequest): void {
  const fields = Object.keys(c.engagement);
  // Only a first copy can make its story; in claimAndMergeMany every copy is sent as one.
  const fresh = c.mode === "first" ? freshStoryJson(c) : undefined;
  args.push(c.story, c.own, c.mode, c.source, c.url, String(c.seenAt), fresh ?? "");
  args.push(String(fields.length));
  for (const f of fields) args.push(f, String(atStoredPrecision(c.engagement[f])));
}

/**
 * `n` to the 14 significant digits that the scripts' cjson stores: a score of
 * 17 (0.1 + 0.2) came back from its story as 0.3, and the same score sent
 * again counted as higher, a revision at every poll for every sink.
 */
function atStoredPrecision(n: number): number {
  return Number.isInteger(n) && Math.abs(n) < 1e14 ? n : Number(n.toPrecision(14));
}

/**
 * freshStory as JSON, for the script to store as it is; or undefined where
 * the script's cjson would not write the same story (a number it would
 * round to 14 digits, -0, a UTF-16 surrogate; a field named __proto__,
 * which an object here would not hold), so that the script folds the copy
 * itself.
 */
function freshStoryJson(c: MergeRequest): string | undefined {
  if (!exact(c.seenAt) || /[\ud800-\udfff]/.test(c.source + c.url)) return undefined;
  for (const f in c.engagement) {
    if (!exact(c.engagement[f]) || /[\ud800-\udfff]/.test(f) || f === "__proto__") return undefined;
  }
  return JSON.stringify(freshStory(c));
}

/** A number cjson writes exactly (%.14g): an integer under 1e14, not -0. */
function exact(n: number): boolean {
  return Number.isInteger(n) && Math.abs(n) < 1e14 && !Object.is(n, -0);
}

/** The story a merge reply stands for: "+" is the copy's own fresh story, "" a pending one. */
export function storyOf(reply: string, c: MergeRequest): Story | undefined {
  if (reply === "") return undefined;
  return reply === "+" ? { ...freshStory(c), id: c.story } : parseStory(reply);
}

/** A story as the merge script returns it; cjson writes an empty engagement table as {} or []. */
function parseStory(reply: string): Story {
  const space = reply.indexOf(" ");
  const st = JSON.parse(reply.slice(space + 1)) as Story;
  st.id = reply.slice(0, space);
  if (Array.isArray(st.g)) st.g = {};
  if (!Array.isArray(st.s)) st.s = [];
  return st;
}
