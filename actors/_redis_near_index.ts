import { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import type {
  Claim,
  ClaimRequest,
  MergeRequest,
  NearIndex,
  NearRequest,
  Story,
} from "./_dedupe_store.ts";
import {
  BAND_CANDIDATES,
  type Banding,
  bandingFor,
  DEFAULT_BANDING,
  positionsNeeded,
} from "./_minhash_index.ts";
import { RedisScript } from "../engine/redis/redis_script.ts";
import { SIGNATURE_LENGTH } from "./_minhash.ts";
import {
  CLAIM_ANSWERS,
  CLAIM_LUA,
  exactKey,
  MERGE_LIB,
  pushCopy,
  storyKey,
  storyOf,
} from "./_redis_dedupe_store.ts";

/** Expired (or over maxItems) items forgotten per call at most, so one call never stalls Redis. */
const SWEEP = 1000;

/**
 * What the near-duplicate scripts share (MATCH, and CLAIM_MATCH_MERGE which
 * makes the batch's claims first). KEYS: 1 sequence counter, 2 entries
 * (hash), 3 buckets (hash), 4 expiry (sorted set), then the exact key of
 * each request. ARGV: 1 ttl in ms, 2 equal positions a match needs,
 * 3 bands, 4 bytes per band, 5 how many items to forget at most, 6 events
 * kept per bucket, 7 items kept at most, 8 bytes per signature, 9 every
 * request's signature back to back (the low byte of each position, as
 * MinHashIndex keeps them); then, for MATCH, per request its event and
 * id. The script cuts the signatures apart and makes each
 * request's bucket fields from its own (`fields`): sent as eleven
 * arguments per item, they cost the process 16 to 18 µs of CPU per item
 * to build and send (3 to 5 now), and Redis more to parse than making
 * them costs it (the script's time per item went from 33 to 29 µs; README,
 * "What Redis spends per item").
 *
 * entries: event -> "<seq> <expires> <id> <signature>"; buckets: band
 * number byte + that band's bytes -> the events having it, space-separated,
 * oldest first and only the newest `keep` of them (a bucket shared by
 * thousands of near-identical texts once made every lookup walk them all,
 * and the script ran into BUSY); expiry: event scored by when it expires.
 * Time is Redis's own (TIME), the same for every process.
 *
 * What Redis spends per item is mostly its hash fields (one entry and ten
 * buckets read, then written): the script reads every request's entry and
 * buckets in one HMGET each and writes what the batch added in one HSET
 * (and ZADD) each at the end, keeping in Lua tables what it wrote so that a
 * request still sees those before it; the answers and what is stored are
 * those of checking and adding the requests one at a time.
 */
const NEAR_LIB = `
local seqKey, entriesKey, bucketsKey, expiryKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ttl, need = tonumber(ARGV[1]), tonumber(ARGV[2])
local bands, width, sweep = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local keep, maxItems = tonumber(ARGV[6]), tonumber(ARGV[7])
local sigBytes, sigs = tonumber(ARGV[8]), ARGV[9]
local CHUNK = 500
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local function fields(sig)
  local out = {}
  for b = 1, bands do out[b] = string.char(b - 1) .. string.sub(sig, (b - 1) * width + 1, b * width) end
  return out
end

-- seq, expires, id, and where the signature starts
local function parseEntry(entry)
  local s1 = string.find(entry, ' ', 1, true)
  local s2 = string.find(entry, ' ', s1 + 1, true)
  local s3 = string.find(entry, ' ', s2 + 1, true)
  return tonumber(string.sub(entry, 1, s1 - 1)), tonumber(string.sub(entry, s1 + 1, s2 - 1)),
    string.sub(entry, s2 + 1, s3 - 1), s3 + 1
end

-- Forgets items: their entries, and their events in every bucket.
local function forget(gone)
  local entries = redis.call('HMGET', entriesKey, unpack(gone))
  local drop, order = {}, {}
  for i = 1, #gone do
    if entries[i] then
      local _, _, _, at = parseEntry(entries[i])
      for _, f in ipairs(fields(string.sub(entries[i], at))) do
        if not drop[f] then drop[f] = {}; order[#order + 1] = f end
        drop[f][gone[i]] = true
      end
    end
  end
  for from = 1, #order, 500 do
    local part = {unpack(order, from, math.min(from + 499, #order))}
    local lists = redis.call('HMGET', bucketsKey, unpack(part))
    local set, del = {}, {}
    for i, f in ipairs(part) do
      local kept = {}
      for ev in string.gmatch(lists[i] or '', '%S+') do
        if not drop[f][ev] then kept[#kept + 1] = ev end
      end
      if #kept > 0 then set[#set + 1] = f; set[#set + 1] = table.concat(kept, ' ')
      else del[#del + 1] = f end
    end
    if #set > 0 then redis.call('HSET', bucketsKey, unpack(set)) end
    if #del > 0 then redis.call('HDEL', bucketsKey, unpack(del)) end
  end
  redis.call('HDEL', entriesKey, unpack(gone))
  redis.call('ZREM', expiryKey, unpack(gone))
end

-- Forgets expired items, then the oldest beyond maxItems, a chunk at a time.
local function sweepOld()
  local swept = 0
  while swept < sweep do
    local gone = redis.call('ZRANGEBYSCORE', expiryKey, '-inf', now, 'LIMIT', 0, 200)
    if #gone == 0 then
      local over = redis.call('ZCARD', expiryKey) - maxItems
      if over <= 0 then break end
      gone = redis.call('ZRANGE', expiryKey, 0, math.min(over, 200) - 1)
    end
    swept = swept + #gone
    forget(gone)
  end
end

-- HMGET of any number of fields, in calls of at most CHUNK (unpack has a limit).
local function hmget(key, names)
  local out = {}
  for from = 1, #names, CHUNK do
    local got = redis.call('HMGET', key, unpack(names, from, math.min(from + CHUNK - 1, #names)))
    for j = 1, #got do out[from + j - 1] = got[j] end
  end
  return out
end

-- HSET (or ZADD) of any number of flat (field, value) pairs, in calls of at most CHUNK.
local function write(cmd, key, pairs)
  for from = 1, #pairs, CHUNK do
    redis.call(cmd, key, unpack(pairs, from, math.min(from + CHUNK - 1, #pairs)))
  end
end

-- A bucket's list with ev appended and only its newest keep events left.
local function appended(list, ev)
  if not list then return ev end
  local words = {}
  for w in string.gmatch(list, '%S+') do words[#words + 1] = w end
  words[#words + 1] = ev
  if #words <= keep then return list .. ' ' .. ev end
  return table.concat(words, ' ', #words - keep + 1, #words)
end

-- Checks and adds request i (its claim key, event, id and signature) for
-- i = 1..#events, in order; returns each one's match, or ''. Every
-- request's own entry and bands are read at once and what the batch writes
-- is written at the end; in between, entry and list hold what this run
-- wrote, so each request still sees the ones before it.
local function match(claimKeys, events, ids, sigOf)
  local n = #events
  local names, bandsOf = {}, {}
  for i = 1, n do
    bandsOf[i] = fields(sigOf[i])
    for b = 1, bands do names[#names + 1] = bandsOf[i][b] end
  end
  local gotEntries = hmget(entriesKey, events)
  local gotLists = hmget(bucketsKey, names)
  local entry, list = {}, {}

  local seq = tonumber(redis.call('GET', seqKey) or '0')
  local expires = now + ttl
  local expiresText = tostring(expires)
  local added, newEntries, newExpiry, order = 0, {}, {}, {}
  local out = {}
  for i = 1, n do
    local event, id, sig = events[i], ids[i], sigOf[i]
    out[i] = ''
    local mine = entry[event]
    if mine == nil then mine = gotEntries[i] end
    if not mine or select(2, parseEntry(mine)) <= now then
      local candidates, seen, listed = {}, {}, {}
      for b = 1, bands do
        local l = list[bandsOf[i][b]]
        if l == nil then l = gotLists[(i - 1) * bands + b] end
        if l then
          for ev in string.gmatch(l, '%S+') do
            if ev == event then listed[b] = true
            elseif not seen[ev] then seen[ev] = true; candidates[#candidates + 1] = ev end
          end
        end
      end
      local best, bestSeq = nil, nil
      if #candidates > 0 then
        local unread = {}
        for j = 1, #candidates do
          if entry[candidates[j]] == nil then unread[#unread + 1] = candidates[j] end
        end
        if #unread > 0 then
          local got = hmget(entriesKey, unread)
          for j = 1, #unread do entry[unread[j]] = got[j] end
        end
        local mineBytes, misses = { string.byte(sig, 1, -1) }, #sig - need
        for j = 1, #candidates do
          local e = entry[candidates[j]]
          if e then
            local eseq, eexpires, other, from = parseEntry(e)
            if eexpires > now and (bestSeq == nil or eseq < bestSeq) then
              -- Compared position by position until too many differ to match.
              local differ, byte = 0, string.byte
              for p = 1, #sig do
                if mineBytes[p] ~= byte(e, from + p - 1) then
                  differ = differ + 1
                  if differ > misses then break end
                end
              end
              if differ <= misses then best, bestSeq = other, eseq end
            end
          end
        end
      end
      if best then
        if redis.call('GET', claimKeys[i]) == event then redis.call('DEL', claimKeys[i]) end
        out[i] = best
      else
        added = added + 1
        local value = string.format('%d', seq + added) .. ' ' .. expiresText .. ' ' .. id .. ' ' .. sig
        entry[event] = value
        newEntries[#newEntries + 1] = event
        newEntries[#newEntries + 1] = value
        newExpiry[#newExpiry + 1] = expiresText
        newExpiry[#newExpiry + 1] = event
        for b = 1, bands do
          if not listed[b] then
            local f = bandsOf[i][b]
            local l = list[f]
            if l == nil then
              l = gotLists[(i - 1) * bands + b]
              order[#order + 1] = f
            end
            list[f] = appended(l, event)
          end
        end
      end
    end
  end
  if added > 0 then
    redis.call('INCRBY', seqKey, added)
    write('HSET', entriesKey, newEntries)
    write('ZADD', expiryKey, newExpiry)
    local set = {}
    for _, f in ipairs(order) do set[#set + 1] = f; set[#set + 1] = list[f] end
    write('HSET', bucketsKey, set)
  end
  -- Whatever it holds expires within ttl: the structure itself goes when the flow stops writing.
  for k = 1, 4 do redis.call('PEXPIRE', KEYS[k], ttl) end
  return out
end
`;

/** NEAR_LIB's `match` on the requests as KEYS and ARGV give them (see NEAR_LIB). */
const MATCH = new RedisScript(
  NEAR_LIB + `
local claimKeys, events, ids, sigOf = {}, {}, {}, {}
for i = 1, #KEYS - 4 do
  claimKeys[i], events[i], ids[i] = KEYS[4 + i], ARGV[8 + 2 * i], ARGV[9 + 2 * i]
  sigOf[i] = string.sub(sigs, (i - 1) * sigBytes + 1, i * sigBytes)
end
sweepOld()
return match(claimKeys, events, ids, sigOf)
`,
  { offlineQueue: false },
);

/**
 * The claims of _redis_dedupe_store.ts (CLAIM_LUA), then NEAR_LIB's `match`
 * on the items not duplicates that have a signature, then, with a story
 * prefix, each item's fold into its story (MERGE_LIB): in one script, the
 * same answers as the scripts one after the other, for one round trip.
 * KEYS: NEAR_LIB's four, then each item's exact key. ARGV: NEAR_LIB's 1 to
 * 9, the signatures being those of the items that have one; 10 the story
 * prefix (`<base>:m:`), or "" for no folds; then per item its event, its
 * id, "1" if it has a signature (else ""), and with folds its copy as
 * MERGE_LIB's `parse` reads it (its mode and story are set here: a
 * duplicate joins its key's story, a near duplicate the story it matched,
 * any other item is its story's first copy). Returns each item's claim
 * answer (0 new, 1 same event, 2 duplicate), then each item's match (''
 * for none), then with folds each item's merge reply.
 */
const CLAIM_MATCH_MERGE = new RedisScript(
  NEAR_LIB + CLAIM_LUA + `
local prefix = ARGV[10]
${MERGE_LIB}
local n, out, copies = #KEYS - 4, {}, {}
local claimKeys, events, ids, sigOf, at = {}, {}, {}, {}, {}
local signed, a = 0, 11
for i = 1, n do
  local key, event, id, signature = KEYS[4 + i], ARGV[a], ARGV[a + 1], ARGV[a + 2] == '1'
  if prefix ~= '' then copies[i], a = parse(a + 3) else a = a + 3 end
  out[i] = claim(key, event, ARGV[1])
  out[n + i] = ''
  if signature then
    signed = signed + 1
    if out[i] ~= 2 then
      at[#at + 1] = i
      claimKeys[#at], events[#at], ids[#at] = key, event, id
      sigOf[#at] = string.sub(sigs, (signed - 1) * sigBytes + 1, signed * sigBytes)
    end
  end
end
if #at > 0 then
  sweepOld()
  local matched = match(claimKeys, events, ids, sigOf)
  for j = 1, #at do out[n + at[j]] = matched[j] end
end
if prefix ~= '' then
  for i = 1, n do
    local c = copies[i]
    if out[i] == 2 then c.m = 'duplicate'
    elseif out[n + i] ~= '' then c.m = 'near'; c.id = out[n + i]
    else c.m = 'first' end
    out[2 * n + i] = merge(c)
  end
  flush()
end
return out
`,
  { offlineQueue: false },
);

/**
 * Near-duplicate lookups in Redis, shared by every process of a durable
 * flow: the same MinHash LSH banding as the in-process MinHashIndex (a
 * candidate shares a whole band of 4 positions, a bucket offers its newest
 * 32 items), with signatures and buckets in two hashes under the stage's
 * base. A batch of lookups is one script, so one round trip, and atomic: of
 * two near-identical items checked at once by two processes, exactly one is
 * remembered and the other is its near duplicate.
 *
 * Items expire after the ttl by Redis's clock (the `now` passed in is
 * ignored) and past `maxItems` the oldest go: each call first forgets up to
 * 1000 such items. Signatures are kept as 64 bytes (the low byte of each
 * position). Every key is declared to the script but the stories the
 * folds find by id (as the store's MERGE does), and all of them carry the
 * flow's hash tag, so it runs as it is on Redis Cluster.
 *
 * The script blocks the server while it runs; with at most 32 candidates
 * per band a lookup compares at most 320 entries however alike the texts
 * (1,024 with the 32 bands of a threshold under 0.54, see bandingFor).
 */
export class RedisNearIndex implements NearIndex {
  readonly #need: number;
  readonly #maxItems: number;
  readonly #banding: Banding;

  constructor(
    readonly redis: Redis,
    readonly base: string,
    readonly threshold: number,
    options: { maxItems?: number } = {},
  ) {
    this.#need = positionsNeeded(threshold);
    this.#banding = bandingFor(threshold);
    this.#maxItems = options.maxItems ?? 1_000_000;
  }

  async matchMany(
    requests: readonly NearRequest[],
    _now: number,
    ttl: number,
  ): Promise<(string | undefined)[]> {
    if (requests.length === 0) return [];
    const keys = this.#keys();
    for (const r of requests) keys.push(exactKey(this.base, r.key));
    const args = this.#args(ttl, requests);
    for (const r of requests) args.push(r.event, r.id);
    const got = await MATCH.run(this.redis, keys, args) as string[];
    return got.map((id) => id === "" ? undefined : id);
  }

  /**
   * claimMany of the Redis store, then matchMany on the items not
   * duplicates that have a signature (`signatures[i]`, item i's), then with
   * `copies` the store's mergeMany (copy i is item i's, sent as a first
   * copy of its key's story: its mode and story follow from the answers),
   * in one script: one round trip per batch instead of two or three, and
   * batches in flight at once answer as one at a time would, in the order
   * their scripts reached Redis. Answers, matches and stories are item by
   * item (a match is undefined for an item not checked).
   */
  async claimAndMatchMany(
    claims: readonly ClaimRequest[],
    signatures: readonly (Uint32Array | undefined)[],
    _now: number,
    ttl: number,
    copies?: readonly MergeRequest[],
  ): Promise<
    { answers: Claim[]; matches: (string | undefined)[]; stories?: (Story | undefined)[] }
  > {
    if (claims.length === 0) return { answers: [], matches: [], stories: copies && [] };
    const keys = this.#keys();
    for (const c of claims) keys.push(exactKey(this.base, c.key));
    const signed: NearRequest[] = [];
    for (const [i, signature] of signatures.entries()) {
      if (signature) signed.push({ ...claims[i], id: claims[i].key, signature });
    }
    const args = this.#args(ttl, signed);
    args.push(copies ? storyKey(this.base, "") : "");
    for (const [i, c] of claims.entries()) {
      args.push(c.event, c.key, signatures[i] ? "1" : "");
      if (copies) pushCopy(args as string[], copies[i]);
    }
    const got = await CLAIM_MATCH_MERGE.run(this.redis, keys, args) as (number | string)[];
    const n = claims.length;
    const matches = got.slice(n, 2 * n).map((id) => id === "" ? undefined : id as string);
    return {
      answers: got.slice(0, n).map((a) => CLAIM_ANSWERS[a as number]),
      matches,
      stories: copies &&
        got.slice(2 * n).map((reply, i) => storyOf(reply as string, copies[i])),
    };
  }

  /** NEAR_LIB's four keys, for this stage. */
  #keys(): string[] {
    // "near8": signatures of one byte per position; never mixed with an older layout's keys,
    // nor with another banding's (a threshold moved across bandingFor's steps), whose buckets
    // would not be found: those keys expire after the ttl.
    const { bands, rows } = this.#banding;
    const near = this.#banding === DEFAULT_BANDING
      ? `${this.base}:near8`
      : `${this.base}:near8b${bands}x${rows}`;
    return [`${near}:seq`, `${near}:entries`, `${near}:buckets`, `${near}:expiry`];
  }

  /** NEAR_LIB's ARGV 1 to 9, with the signatures of `requests`. */
  #args(ttl: number, requests: readonly NearRequest[]): (string | Uint8Array)[] {
    return [
      String(Math.max(1, Math.round(ttl))),
      String(this.#need),
      String(this.#banding.bands),
      String(this.#banding.rows),
      String(SWEEP),
      String(BAND_CANDIDATES),
      String(this.#maxItems),
      String(SIGNATURE_LENGTH),
      signatureBytes(requests),
    ];
  }
}

/** Every request's signature as the low byte of each position (as MinHashIndex stores them), back to back. */
function signatureBytes(requests: readonly NearRequest[]): Buffer {
  const bytes = Buffer.alloc(requests.length * SIGNATURE_LENGTH);
  for (const [r, { signature }] of requests.entries()) {
    if (signature.length !== SIGNATURE_LENGTH) {
      throw new Error(
        `near index: a signature of ${signature.length} positions, not ${SIGNATURE_LENGTH}`,
      );
    }
    for (let i = 0; i < SIGNATURE_LENGTH; i++) {
      bytes[r * SIGNATURE_LENGTH + i] = signature[i] & 0xff;
    }
  }
  return bytes;
}
