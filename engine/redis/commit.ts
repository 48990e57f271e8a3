import type { Redis } from "ioredis";
import type { DeadLetter } from "../dead_letters.ts";
import type { Envelope } from "../item.ts";
import type { EncodedEntry, StreamEntry } from "./codec.ts";
import type { Buffer } from "node:buffer";
import { deadLetterFields } from "./redis_dead_letters.ts";
import { RedisScript } from "./redis_script.ts";

type Item = Envelope<unknown>;

/** In the ids a commit returns: the new progress it would record is there already. */
export const APPLIED = "!applied";

/**
 * KEYS: input stream, output stream (the input again when there is none),
 * dead letters, tries. ARGV: group, tries field (or ""), the number of
 * input ids and the ids, the number of output entries and their (body, n)
 * pairs, the number of entries put back on the input stream and their
 * (body, n, suspect) triples, the number of dead letters and their 10
 * fields each; then the consumer (or ""), the number of cut entries and
 * their (id, progress field of `tries`, expected value) triples, and the
 * new progress of the last of them, or "" when all of them are acknowledged.
 *
 * Writes and acknowledges only if every input is still pending (to the
 * consumer, when one is given), and each cut entry is pending to the
 * consumer with the progress this consumer last recorded (a record Redis
 * lost with its last writes, or one another consumer moved on, fails the
 * check); otherwise writes nothing and
 * returns the ids that are not, and APPLIED when the new progress is
 * there already (this very commit ran, and its reply was lost). On
 * success a cut entry's record is set to its new progress, or deleted
 * with the entry's acknowledgement. So a commit re-sent
 * after its reply was lost (the first one ran: nothing is pending any more)
 * appends nothing twice, and neither does the commit of an entry that
 * another consumer claimed and committed first. Never queued across a
 * drop (offlineQueue: false): the edge checks its entries again before a
 * commit goes out after one (RedisEdge.commit).
 */
const COMMIT = new RedisScript(
  `
local group = ARGV[1]
local n = tonumber(ARGV[3])
local tail = 4 + n
tail = tail + 2 * tonumber(ARGV[tail]) + 1
tail = tail + 3 * tonumber(ARGV[tail]) + 1
tail = tail + 10 * tonumber(ARGV[tail]) + 1
local consumer = ARGV[tail]
local cut = tonumber(ARGV[tail + 1])
local upTo = ARGV[tail + 2 + 3 * cut]
local gone = {}
for i = 1, n do
  local id = ARGV[3 + i]
  local p
  if consumer ~= '' then p = redis.call('XPENDING', KEYS[1], group, id, id, 1, consumer)
  else p = redis.call('XPENDING', KEYS[1], group, id, id, 1) end
  if #p == 0 then table.insert(gone, id) end
end
if #gone > 0 then
  if #gone == n and ARGV[2] ~= '' then redis.call('HDEL', KEYS[4], ARGV[2]) end
  return gone
end
for i = 1, cut do
  local j = tail + 3 * i - 1
  local id = ARGV[j]
  if #redis.call('XPENDING', KEYS[1], group, id, id, 1, consumer) == 0 then
    table.insert(gone, id)
  else
    local now = redis.call('HGET', KEYS[4], ARGV[j + 1]) or '0'
    if now ~= ARGV[j + 2] then
      if i == cut and now == upTo then table.insert(gone, '${APPLIED}') end
      table.insert(gone, id)
    end
  end
end
if #gone > 0 then return gone end
local at = 4 + n
for i = 1, tonumber(ARGV[at]) do
  redis.call('XADD', KEYS[2], '*', 'b', ARGV[at + 2 * i - 1], 'n', ARGV[at + 2 * i])
end
at = at + 2 * tonumber(ARGV[at]) + 1
for i = 1, tonumber(ARGV[at]) do
  local j = at + 3 * (i - 1)
  if ARGV[j + 3] == '1' then
    redis.call('XADD', KEYS[1], '*', 'b', ARGV[j + 1], 'n', ARGV[j + 2], 's', '1')
  else
    redis.call('XADD', KEYS[1], '*', 'b', ARGV[j + 1], 'n', ARGV[j + 2])
  end
end
at = at + 3 * tonumber(ARGV[at]) + 1
for i = 1, tonumber(ARGV[at]) do
  local j = at + (i - 1) * 10
  redis.call('XADD', KEYS[3], '*', ARGV[j + 1], ARGV[j + 2], ARGV[j + 3], ARGV[j + 4],
    ARGV[j + 5], ARGV[j + 6], ARGV[j + 7], ARGV[j + 8], ARGV[j + 9], ARGV[j + 10])
end
-- In calls of at most 500 ids: Lua's unpack refuses about 8,000 values, and
-- a script that fails here has already written, since Redis rolls nothing back.
for from = 4, 3 + n, 500 do
  redis.call('XACK', KEYS[1], group, unpack(ARGV, from, math.min(from + 499, 3 + n)))
end
if ARGV[2] ~= '' then redis.call('HDEL', KEYS[4], ARGV[2]) end
for i = 1, cut do
  local field = ARGV[tail + 3 * i]
  if i == cut and upTo ~= '' then redis.call('HSET', KEYS[4], field, upTo)
  else redis.call('HDEL', KEYS[4], field) end
end
return gone
`,
  { offlineQueue: false },
);

/** Where one commit reads from and writes to. */
export interface CommitKeys {
  input: string;
  group: string;
  /** The next step's stream; none for the last step. */
  output?: string;
  dlq: string;
  tries: string;
}

/** What one batch became, ready to be committed. */
export interface Commit {
  /** The input entries the batch came from: acknowledged by the commit. */
  entries: readonly StreamEntry[];
  /** Output entries, already encoded. */
  bodies: readonly EncodedEntry[];
  /** Entries put back on the input stream: the halves of a split (suspects, run alone when read). */
  back?: readonly (EncodedEntry & { suspect?: boolean })[];
  letters: readonly DeadLetter[];
  /** The `tries` field of a redelivered entry, cleared by the commit. */
  tryField?: string;
  /**
   * The consumer that holds the entries: each must still be pending to it,
   * not only to someone. A process frozen past claimAfter (a blocked event
   * loop, a paused machine) may wake holding a batch whose entry another
   * consumer claimed and committed part of meanwhile; its commit of the
   * whole entry then appended that part again. Required with `cut`.
   */
  consumer?: string;
  /**
   * Entries some of whose items were committed before (a window's batch
   * ended inside them), each with its progress field and the value this
   * consumer last recorded (0 for none): checked as the script says. All
   * but the last are acknowledged by this commit (listed in `entries`
   * too), their records deleted; the last is too unless `upTo` is given.
   */
  cut?: { entries: readonly CutEntry[]; upTo?: number };
}

/** An entry part of which was committed, and the progress recorded for it. */
export interface CutEntry {
  id: string;
  field: string;
  upTo: number;
}

/**
 * Commits a batch in one script: outputs appended, dead letters appended,
 * inputs acknowledged, all or nothing, and nothing twice. Returns the ids of
 * the input entries that were no longer pending (already committed: by a
 * first send whose reply was lost, or by a consumer that claimed them), in
 * which case nothing was written.
 */
export async function commitOnce(redis: Redis, keys: CommitKeys, c: Commit): Promise<string[]> {
  return await runCommit(redis, keys, commitArgs(keys, c));
}

/**
 * The commit script's arguments. A caller that retries the script builds
 * them once, before any try: a dead letter that cannot be encoded then
 * fails the step at once, where inside the retry it read as Redis being
 * away, and was tried for ever.
 */
export function commitArgs(keys: CommitKeys, c: Commit): (string | Buffer)[] {
  const args: (string | Buffer)[] = [keys.group, c.tryField ?? ""];
  args.push(String(c.entries.length), ...c.entries.map((e) => e.id));
  args.push(String(c.bodies.length));
  for (const e of c.bodies) args.push(e.body, String(e.n));
  const back = c.back ?? [];
  args.push(String(back.length));
  for (const e of back) args.push(e.body, String(e.n), e.suspect ? "1" : "0");
  args.push(String(c.letters.length));
  const time = new Date();
  for (const letter of c.letters) args.push(...deadLetterFields(letter, time));
  const cut = c.cut?.entries ?? [];
  if (cut.length > 0 && !c.consumer) {
    throw new TypeError("a commit of cut entries names its consumer");
  }
  args.push(c.consumer ?? "", String(cut.length));
  for (const e of cut) args.push(e.id, e.field, String(e.upTo));
  args.push(c.cut?.upTo === undefined ? "" : String(c.cut.upTo));
  return args;
}

/** Runs the commit script on arguments commitArgs built; returns the ids no longer pending. */
export async function runCommit(
  redis: Redis,
  keys: CommitKeys,
  args: readonly (string | Buffer)[],
): Promise<string[]> {
  const keyList = [keys.input, keys.output ?? keys.input, keys.dlq, keys.tries];
  return await COMMIT.run(redis, keyList, args) as string[];
}

/**
 * The part of a batch that belongs to the `kept` entries: the outputs and
 * dead letters whose ingestion event one of them carried (an unreadable
 * entry's letter carries the entry's id). Used when some entries of a batch
 * were committed elsewhere, so that only the rest is committed here. An
 * output whose event no input carried is kept: appending it twice costs a
 * redelivery inside, losing it would cost an item.
 */
export function keepFor(
  kept: readonly StreamEntry[],
  all: readonly StreamEntry[],
  out: readonly Item[],
  letters: readonly DeadLetter[],
): { out: Item[]; letters: DeadLetter[] } {
  const events = (entries: readonly StreamEntry[]) => {
    const set = new Set<string>();
    for (const e of entries) {
      set.add(e.id);
      for (const item of e.items ?? []) set.add(item.event);
    }
    return set;
  };
  const mine = events(kept);
  const known = events(all);
  const ours = (event: string, id: string) =>
    mine.has(event) || mine.has(id) || (!known.has(event) && !known.has(id));
  return {
    out: out.filter((i) => ours(i.event, i.id)),
    letters: letters.filter((l) => ours(l.item.event, l.item.id)),
  };
}
