import type { Redis } from "ioredis";
import { isUnencodableNote } from "../engine/dead_letters.ts";
import { errorMessage } from "../engine/errors.ts";
import type { Envelope } from "../engine/item.ts";
import type { FlowKeys } from "../engine/redis/keys.ts";
import { atOrBefore, groupInfo } from "../engine/redis/redis_info.ts";
import { RedisScript } from "../engine/redis/redis_script.ts";
import { skippedStages, type StartedOrder, startedOrders } from "../engine/redis/pipeline_edit.ts";

/** One entry of a flow's dead-letter stream, as `dlq list` shows it. */
export interface DlqEntry {
  /** The stream entry id (or, for a memory flow's JSONL file, "line N"). */
  id: string;
  /** The stage that gave up on the item. */
  stage: string;
  /** Why, as the stage said it. */
  reason: string;
  /** Times the item was tried before it was dead-lettered. */
  attempts: number;
  /** ISO time it was dead-lettered. */
  time: string;
  /** The item's envelope; null when the entry does not hold one. */
  item: Envelope<unknown> | null;
  /** Set when the entry is malformed: what is wrong with it. Such entries are never replayed. */
  problem?: string;
}

/** Which dead letters a `dlq` command acts on; none given means all. */
export interface DlqFilter {
  /** Only this stage's dead letters. */
  stage?: string;
}

const PAGE = 500;

/**
 * Walks the dead-letter stream oldest first, a page at a time (it is meant
 * to stay small, but a bad deploy can fill it), stopping when `visit`
 * returns false.
 */
async function scan(
  redis: Redis,
  key: string,
  visit: (entry: DlqEntry) => boolean | void,
): Promise<void> {
  for await (const entry of letters(redis, key)) if (visit(entry) === false) return;
}

/**
 * The stream's entries, oldest first, read PAGE at a time: a caller that
 * deletes what it was given (replay) holds one page, never the stream.
 * Up to the entry `upTo` when given.
 */
async function* letters(redis: Redis, key: string, upTo = "+"): AsyncGenerator<DlqEntry> {
  let start = "-";
  for (;;) {
    const page = await redis.xrange(key, start, upTo, "COUNT", PAGE);
    for (const [id, fields] of page) yield parseEntry(id, fields);
    if (page.length < PAGE) return;
    start = "(" + page[page.length - 1][0];
  }
}

/** Reads a dead-letter entry's fields (stage, reason, attempts, item, time). */
export function parseEntry(id: string, fields: string[]): DlqEntry {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
  const entry: DlqEntry = {
    id,
    stage: f.stage ?? "",
    reason: f.reason ?? "",
    attempts: Number(f.attempts ?? 0),
    time: f.time ?? new Date(Number(id.split("-")[0])).toISOString(),
    item: null,
  };
  if (!f.stage) entry.problem = "entry has no stage";
  else if (f.item === undefined) entry.problem = "entry has no item";
  else {
    try {
      const item = JSON.parse(f.item);
      if (isEnvelope(item)) entry.item = item;
      else entry.problem = "item is not an envelope with an id, an event and a payload";
    } catch (error) {
      entry.problem = `item does not parse: ${(error as Error).message}`;
    }
  }
  return entry;
}

/**
 * An envelope that can travel again. An unreadable stream entry is
 * dead-lettered with its raw text as payload and no event: not an item.
 */
function isEnvelope(v: unknown): v is Envelope<unknown> {
  const e = v as Envelope<unknown>;
  return typeof e === "object" && e !== null && typeof e.id === "string" &&
    typeof e.event === "string" && e.event !== "" && "payload" in e;
}

/** Dead letters of the flow, oldest first, optionally one stage's, at most `limit`. */
export async function dlqList(
  redis: Redis,
  keys: FlowKeys,
  opts: DlqFilter & { limit?: number } = {},
): Promise<DlqEntry[]> {
  const limit = opts.limit ?? Infinity;
  const out: DlqEntry[] = [];
  if (limit <= 0) return out;
  await scan(redis, keys.dlq, (entry) => {
    if (opts.stage !== undefined && entry.stage !== opts.stage) return;
    out.push(entry);
    return out.length < limit;
  });
  return out;
}

/** How many dead letters each stage has. */
export async function countDeadLetters(
  redis: Redis,
  keys: FlowKeys,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  await scan(redis, keys.dlq, (e) => void (counts[e.stage] = (counts[e.stage] ?? 0) + 1));
  return counts;
}

/** What `dlqReplay` did: what went back, and what stayed and why. */
export interface ReplayResult {
  /** Dead letters put back, per stage that gave up on them. */
  replayed: Record<string, number>;
  /**
   * Where the letters of a stage fused into an earlier step went: that
   * step's input, read by its first stage (`{picky: "validate"}`); absent
   * when every letter went to its own stage's input.
   */
  into?: Record<string, string>;
  /** Dead letters left where they are, and why. */
  skipped: { id: string; stage: string; reason: string }[];
}

/**
 * Moves the entry back only if it is still in the dead-letter stream, so
 * two operators replaying at once cannot double an item; appends before it
 * deletes, so an error half-way leaves the letter where it was. A script
 * runs whole: no crash falls between the two writes.
 */
const REPLAY = new RedisScript(`
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'b', ARGV[2], 'n', '1')
redis.call('XDEL', KEYS[1], ARGV[1])
return 1`);

/** Why replay leaves a letter whose item JSON could not hold (dead_letters.ts, isUnencodableNote). */
export const UNKEPT =
  "its item could not be stored as JSON, so only why was kept: nothing to put back";

/**
 * Puts dead letters back on the normal lane of the stage that gave up on
 * them, as one-item entries with `attempts` reset to 0, and deletes them
 * from the dead-letter stream in the same atomic step. `pipeline` (the
 * flow's stage ids in order) lets a letter of a stage fused into an earlier
 * step go to the stream that step reads; a letter whose stage no consumer
 * group reads is skipped rather than parked on a stream nobody reads.
 */
export async function dlqReplay(
  redis: Redis,
  keys: FlowKeys,
  opts: DlqFilter & {
    ids?: readonly string[];
    pipeline?: readonly string[];
    /**
     * The stage whose input gets the letters instead (`--into`): it, and
     * every stage after it, runs them again. Only at or before the stage
     * that gave up on a letter, which the item would otherwise skip; a
     * letter of a stage gone from the pipeline goes where it is told.
     */
    into?: string;
  } = {},
): Promise<ReplayResult> {
  const result: ReplayResult = { replayed: {}, skipped: [] };
  // A page at a time: read whole first, a stream a bad deploy filled (100,000 letters of 20 KB)
  // ran the command out of memory before it moved any.
  // Up to the newest letter there is now: a running flow that refuses a replayed item again
  // adds a letter behind, which a read on to the end sent back again, round after round.
  const upTo = opts.ids ? undefined : await lastDeadLetter(redis, keys);
  if (!opts.ids && upTo === undefined) return result;
  const entries = opts.ids
    ? await byIds(redis, keys, opts.ids, result)
    : letters(redis, keys.dlq, upTo);
  const targets = new Map<string, string | undefined>();
  const orders = opts.pipeline ? await startedOrders(redis, keys) : [];
  try {
    await replayEach(redis, keys, opts, entries, targets, result, orders);
  } catch (error) {
    // Redis lost part-way: what was moved is moved (each letter in one atomic step), and the
    // operator is told how far it got, not only the stack of the command that failed.
    const moved = Object.values(result.replayed).reduce((a, n) => a + n, 0);
    throw Object.assign(
      new Error(`dlq replay stopped after ${moved} dead letters: ${errorMessage(error)}`, {
        cause: error,
      }),
      { replayed: result.replayed },
    );
  }
  return result;
}

async function replayEach(
  redis: Redis,
  keys: FlowKeys,
  opts: DlqFilter & { pipeline?: readonly string[]; into?: string },
  entries: Iterable<DlqEntry> | AsyncIterable<DlqEntry>,
  targets: Map<string, string | undefined>,
  result: ReplayResult,
  orders: readonly StartedOrder[] = [],
): Promise<void> {
  for await (const entry of entries) {
    if (opts.stage !== undefined && entry.stage !== opts.stage) continue;
    const skip = (reason: string) =>
      result.skipped.push({ id: entry.id, stage: entry.stage, reason });
    if (entry.problem || !entry.item) {
      skip(entry.problem ?? "no item");
      continue;
    }
    if (isUnencodableNote(entry.item)) {
      skip(UNKEPT);
      continue;
    }
    const pipeline = opts.pipeline ?? [];
    if (
      opts.into !== undefined && pipeline.indexOf(entry.stage) >= 0 &&
      pipeline.indexOf(entry.stage) < pipeline.indexOf(opts.into)
    ) {
      skip(
        `--into ${opts.into} comes after stage "${entry.stage}", which gave up on it: the ` +
          `item would skip the stages between`,
      );
      continue;
    }
    const wanted = opts.into ?? entry.stage;
    if (!targets.has(wanted)) {
      targets.set(wanted, await readerOf(redis, keys, wanted, opts.pipeline));
    }
    const target = targets.get(wanted);
    if (target === undefined) {
      skip(
        opts.pipeline && !opts.pipeline.includes(wanted)
          ? `stage "${wanted}" is not in the flow's pipeline`
          : `no consumer group reads ${keys.input(wanted)}: the stage has not started`,
      );
      continue;
    }
    // The stages its item had been through are those before its stage in the order the flow
    // ran when the letter was written: put back after a reorder, it skipped the stages moved
    // before that one (a review's 906 items went out never deduplicated nor enriched). Judged
    // from where it goes: a fused step's head runs it through the whole step.
    const then = orderAt(orders, Number(entry.id.split("-")[0]));
    const skippedBy = new Set(
      then && pipeline.includes(target)
        ? [then.order, ...(then.also ? [then.also] : [])]
          .flatMap((order) => skippedStages(order, pipeline, entry.stage, target))
        : [],
    );
    const skipped = pipeline.filter((s) => skippedBy.has(s));
    if (skipped.length > 0) {
      const passed = then!.order.slice(0, Math.max(0, then!.order.indexOf(entry.stage)));
      skip(
        `its item would skip ${skipped.join(", ")}: the flow's stages changed since it was ` +
          `written (${
            then!.also
              ? "an older version may have run then"
              : `its item had been through ${passed.join(", ") || "no stage"}`
          }); replay it with --into ${skipped[0]}`,
      );
      continue;
    }
    const body = JSON.stringify([{ ...entry.item, attempts: 0 }]);
    const moved = await REPLAY.run(redis, [keys.dlq, keys.input(target)], [entry.id, body]);
    if (moved === 1) {
      result.replayed[entry.stage] = (result.replayed[entry.stage] ?? 0) + 1;
      if (target !== entry.stage) (result.into ??= {})[entry.stage] = target;
    } else skip("gone from the dead-letter stream (replayed or purged meanwhile)");
  }
}

/** The order the flow ran in at `ms` (Redis's clock): the last started at or before it. */
function orderAt(orders: readonly StartedOrder[], ms: number): StartedOrder | undefined {
  let found: StartedOrder | undefined;
  for (const o of orders) if (o.at <= ms) found = o;
  return found;
}

async function byIds(
  redis: Redis,
  keys: FlowKeys,
  ids: readonly string[],
  result: ReplayResult,
): Promise<DlqEntry[]> {
  const entries: DlqEntry[] = [];
  for (const id of ids) {
    const [found] = await redis.xrange(keys.dlq, id, id);
    if (found) entries.push(parseEntry(found[0], found[1]));
    else result.skipped.push({ id, stage: "", reason: "no such dead letter" });
  }
  return entries;
}

/**
 * The stage whose input stream should get a letter of `stage` back: the
 * first stage of the step the last run ran it in, as it recorded
 * (`keys.steps`); else the stage itself when its group exists; else,
 * walking back through the pipeline, the nearest earlier stage with one
 * (the head of a fused step).
 */
async function readerOf(
  redis: Redis,
  keys: FlowKeys,
  stage: string,
  pipeline: readonly string[] | undefined,
): Promise<string | undefined> {
  if (!pipeline) return await hasGroup(redis, keys.input(stage), stage) ? stage : undefined;
  // A stage gone from the pipeline: its step's head would send its letters past nothing that
  // checks what it checked (a fused run's record still names the step it ran in).
  if (!pipeline.includes(stage)) return undefined;
  // The step the last run put the stage in: an earlier unfused run may have left the
  // stage a group of its own that nothing reads now.
  const step = await redis.hget(keys.steps, stage);
  if (step !== null && pipeline.includes(step)) {
    if (await hasGroup(redis, keys.input(step), step)) return step;
  }
  const at = pipeline.indexOf(stage);
  for (let i = at; i >= 0; i--) {
    if (await hasGroup(redis, keys.input(pipeline[i]), pipeline[i])) return pipeline[i];
  }
  return undefined;
}

async function hasGroup(redis: Redis, key: string, group: string): Promise<boolean> {
  return (await groupInfo(redis, key, group)) !== undefined;
}

/** The id of the newest dead letter, or undefined when there is none. */
export async function lastDeadLetter(redis: Redis, keys: FlowKeys): Promise<string | undefined> {
  return (await redis.xrevrange(keys.dlq, "+", "-", "COUNT", 1))[0]?.[0];
}

/**
 * KEYS[1] the dead-letter stream, ARGV[1] the id after the last to delete:
 * trims the letters before it, and the stream itself once it is empty.
 */
const TRIM_UP_TO = new RedisScript(`
local n = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
if redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return n
`);

/**
 * Deletes dead letters: one stage's, or (no stage) the whole stream, up to
 * and with `upTo` (the newest when the purge was asked for, `lastDeadLetter`;
 * default the newest now), so a letter written while a person read the
 * question is not deleted unseen. Returns how many went.
 */
export async function dlqPurge(
  redis: Redis,
  keys: FlowKeys,
  opts: DlqFilter & { upTo?: string } = {},
): Promise<number> {
  const upTo = opts.upTo ?? await lastDeadLetter(redis, keys);
  if (upTo === undefined) return 0;
  if (opts.stage === undefined) {
    const [ms, seq] = upTo.split("-").map(BigInt);
    return Number(await TRIM_UP_TO.run(redis, [keys.dlq], [`${ms}-${seq + 1n}`]));
  }
  const ids: string[] = [];
  await scan(redis, keys.dlq, (e) => {
    if (!atOrBefore(e.id, upTo)) return false;
    if (e.stage === opts.stage) ids.push(e.id);
  });
  let deleted = 0;
  for (let i = 0; i < ids.length; i += PAGE) {
    deleted += await redis.xdel(keys.dlq, ...ids.slice(i, i + PAGE));
  }
  return deleted;
}
