import type { Redis } from "ioredis";
import { type FlowKeys, LANES } from "./keys.ts";
import type { Flow } from "../flow.ts";
import { errorMessage } from "../errors.ts";

/** Turns Redis's flat [k, v, k, v] replies into objects. */
export function pairs(reply: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const list = reply as unknown[];
  for (let i = 0; i + 1 < list.length; i += 2) out[String(list[i])] = list[i + 1];
  return out;
}

/**
 * Redis's `maxmemory-policy` when Redis may evict keys (a `maxmemory` set
 * and a policy other than `noeviction`: `volatile-lru`, the default of
 * several managed services, evicts the keys that carry a TTL, such as the
 * Deduper's; `allkeys-*` evicts streams too), else undefined. Read from
 * INFO, which services that rename CONFIG still answer.
 */
export async function evictingPolicy(redis: Redis): Promise<string | undefined> {
  const info = String(await redis.info("memory"));
  const field = (name: string) => new RegExp(`^${name}:(.*)$`, "m").exec(info)?.[1]?.trim();
  const policy = field("maxmemory_policy");
  return policy && policy !== "noeviction" && Number(field("maxmemory")) > 0 ? policy : undefined;
}

/** What a consumer group knows of its stream, for backpressure and drain checks. */
export interface GroupState {
  /** Entries added to the stream and not yet delivered to the group. */
  undelivered: number;
  /** Entries delivered and not yet acknowledged. */
  pending: number;
}

/**
 * `group`'s entry of XINFO GROUPS on `key` (name, pending,
 * last-delivered-id, lag…), or undefined when the stream or the group does
 * not exist. Any other failure (a dropped connection) is thrown: read as
 * "no group, nothing waits", it let a drain check end a flow whose items
 * were still on their way.
 */
export async function groupInfo(
  redis: Redis,
  key: string,
  group: string,
): Promise<Record<string, unknown> | undefined> {
  let groups: unknown[];
  try {
    groups = await redis.xinfo("GROUPS", key) as unknown[];
  } catch (error) {
    if (/no such key/i.test((error as Error).message)) return undefined;
    throw error;
  }
  return groups.map(pairs).find((g) => g.name === group);
}

/** Whether stream id `a` (`ms-seq`) is at or before `b`. */
export function atOrBefore(a: string, b: string): boolean {
  const [am, as] = a.split("-").map(BigInt), [bm, bs] = b.split("-").map(BigInt);
  return am < bm || (am === bm && as <= bs);
}

/**
 * The group's backlog on a stream. `lag` comes from Redis 7, but it is a
 * counter that can go stale: after Redis reloads its append-only file the
 * group's read counter is rebuilt and `lag` can stay above 0 for ever on a
 * stream read to the end. So a lag that is not 0 is checked against the
 * stream itself (see `checkedLag`). And it is null when Redis has lost
 * count of what the group read: after deletions, and after every restart
 * (Redis 7.0 keeps no read counter; it counts again once the group reads to
 * the end). Then what waits is taken at its most (`lagAtMost`): read as
 * "some", 1, no backpressure held, and a source piled its whole output onto
 * a slow stage's stream after a restart.
 */
export async function groupState(redis: Redis, key: string, group: string): Promise<GroupState> {
  const g = await groupInfo(redis, key, group);
  if (!g) return { undelivered: 0, pending: 0 };
  const pending = Number(g.pending ?? 0);
  const { lag, length } = await lagOf(redis, key, g);
  return { undelivered: lag ?? lagAtMost(length, pending), pending };
}

/**
 * The most entries that can wait undelivered on a stream of `length`
 * entries, `pending` of them delivered: the rest, less the acknowledged
 * ones not trimmed yet (trimming keeps what follows the oldest pending
 * entry), which cannot be told apart without reading them. At least 1:
 * asked only when some entry follows the group's last delivered one.
 */
export function lagAtMost(length: number, pending: number): number {
  return Math.max(1, length - pending);
}

/**
 * A group's lag (one entry of XINFO GROUPS, as `pairs` gives it) that can
 * be trusted: 0 when no entry follows the group's last-delivered-id,
 * whatever Redis's estimate says, and never more than the stream holds;
 * null when entries follow but Redis cannot count them. A lag of 0 is
 * taken as it is; otherwise it costs one round trip (XRANGE from just
 * after last-delivered-id, COUNT 1, and XLEN, pipelined).
 */
export async function checkedLag(
  redis: Redis,
  key: string,
  group: Record<string, unknown>,
): Promise<number | null> {
  return (await lagOf(redis, key, group)).lag;
}

/** checkedLag, with the stream's length (XLEN) when it was read (else 0). */
async function lagOf(
  redis: Redis,
  key: string,
  group: Record<string, unknown>,
): Promise<{ lag: number | null; length: number }> {
  const lag = typeof group.lag === "number" ? group.lag : null;
  if (lag === 0) return { lag: 0, length: 0 };
  const last = String(group["last-delivered-id"] ?? "0-0");
  const replies = await redis.pipeline()
    .xrange(key, `(${last}`, "+", "COUNT", 1)
    .xlen(key)
    .exec();
  const [after, xlen] = (replies ?? []).map(([error, value]) => {
    if (error) throw error;
    return value;
  });
  const length = Number(xlen);
  if ((after as unknown[]).length === 0) return { lag: 0, length };
  return { lag: lag === null ? null : Math.max(1, Math.min(lag, length)), length };
}

/**
 * Entries waiting on a step's input, both lanes: not yet delivered plus
 * delivered and not acknowledged. What backpressure and the drain check ask.
 */
export async function backlog(redis: Redis, keys: FlowKeys, step: string): Promise<number> {
  let entries = 0;
  for (const lane of LANES) {
    const s = await groupState(redis, keys.input(step, lane), step);
    entries += s.undelivered + s.pending;
  }
  return entries;
}

/**
 * Each stage an earlier run had (the flow's stages hash keeps every one)
 * that the flow no longer has, with the entries waiting on its input:
 * nothing reads them now, and the start and `status` say so. Not refused:
 * removing a stage may be meant, and its entries stay in Redis, for the
 * stage to come back to or for `reset`.
 */
export async function removedWaiting(
  redis: Redis,
  keys: FlowKeys,
  flow: Flow,
): Promise<{ stage: string; waiting: number }[]> {
  const now = new Set(flow.pipeline.map((s) => s.id));
  const out: { stage: string; waiting: number }[] = [];
  for (const stage of Object.keys(await redis.hgetall(keys.stages))) {
    if (now.has(stage)) continue;
    const waiting = await backlog(redis, keys, stage);
    if (waiting > 0) out.push({ stage, waiting });
  }
  return out;
}

/**
 * Whether every entry pending to `consumer` has been idle for `idleMs`: a
 * process stopped hard marks what it held idle for claimAfter as it goes
 * (RedisEdge's release), which is itself a touch of the consumer, so it
 * looked alive for claimAfter after it had exited (`reset` refused); a live
 * process's heartbeat keeps what it holds far younger.
 */
async function released(
  redis: Redis,
  key: string,
  group: string,
  consumer: string,
  pending: number,
  idleMs: number,
): Promise<boolean> {
  if (pending === 0) return false;
  const old = await redis.call(
    "XPENDING",
    key,
    group,
    "IDLE",
    String(idleMs),
    "-",
    "+",
    String(pending),
    consumer,
  ) as unknown[];
  return old.length >= pending;
}

/**
 * Each consumer that read an input lane of one of `groups` within
 * `withinMs` (a process still running them; not one that released all it
 * held as it stopped hard), with the groups it read and
 * its least idle time. `reset` asks before it deletes; a start asks when the
 * last start recorded another pipeline than this flow's (keys.pipeline):
 * two versions of a flow at once (a rolling deploy, an edit started beside
 * the old process) pass items to each other's stages, and a review's
 * reordered pair sent 586 items through one stage two to four times, with
 * neither process saying a word. A stream or group that does not exist has
 * no readers; any other refusal (no permission, a timeout) is thrown, since
 * it leaves the question open.
 */
export async function recentReaders(
  redis: Redis,
  keys: FlowKeys,
  groups: Iterable<string>,
  withinMs: number,
): Promise<Map<string, { stages: Set<string>; idle: number }>> {
  const readers = new Map<string, { stages: Set<string>; idle: number }>();
  for (const group of groups) {
    for (const lane of LANES) {
      const key = keys.input(group, lane);
      let consumers: unknown[];
      try {
        consumers = await redis.xinfo("CONSUMERS", key, group) as unknown[];
      } catch (error) {
        if (/NOGROUP|no such key/i.test(errorMessage(error))) continue;
        throw error;
      }
      for (const c of consumers.map(pairs)) {
        const idle = Number(c.idle ?? Infinity);
        if (idle >= withinMs) continue;
        if (await released(redis, key, group, String(c.name), Number(c.pending ?? 0), withinMs)) {
          continue;
        }
        const seen = readers.get(String(c.name)) ?? { stages: new Set<string>(), idle };
        seen.stages.add(group);
        seen.idle = Math.min(seen.idle, idle);
        readers.set(String(c.name), seen);
      }
    }
  }
  return readers;
}
