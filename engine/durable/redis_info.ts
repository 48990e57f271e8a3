import type { Redis } from "ioredis";

/** Turns Redis's flat [k, v, k, v] replies into objects. */
export function pairs(reply: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const list = reply as unknown[];
  for (let i = 0; i + 1 < list.length; i += 2) out[String(list[i])] = list[i + 1];
  return out;
}

/** What a consumer group knows of its stream, for backpressure and drain checks. */
export interface GroupState {
  /** Entries added to the stream and not yet delivered to the group. */
  undelivered: number;
  /** Entries delivered and not yet acknowledged. */
  pending: number;
}

/**
 * The group's backlog on a stream. `lag` comes from Redis 7; when Redis
 * cannot tell it (after deletions) the group is compared with the stream's
 * last id, which can only say "some" or "none", so it reports 1 or 0.
 */
export async function groupState(redis: Redis, key: string, group: string): Promise<GroupState> {
  let groups: unknown[];
  try {
    groups = await redis.xinfo("GROUPS", key) as unknown[];
  } catch {
    return { undelivered: 0, pending: 0 }; // no stream yet: nothing waits
  }
  const g = groups.map(pairs).find((g) => g.name === group);
  if (!g) return { undelivered: 0, pending: 0 };
  const pending = Number(g.pending ?? 0);
  if (typeof g.lag === "number") return { undelivered: g.lag, pending };
  const stream = pairs(await redis.xinfo("STREAM", key));
  const behind = stream["last-generated-id"] !== g["last-delivered-id"] &&
    Number(stream.length ?? 0) > 0;
  return { undelivered: behind ? 1 : 0, pending };
}

/** "5-3" -> "5-4": the first id after one. */
export function nextId(id: string): string {
  const [ms, seq] = id.split("-");
  return `${ms}-${BigInt(seq ?? "0") + 1n}`;
}
