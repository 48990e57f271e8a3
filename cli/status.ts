import type { Redis } from "ioredis";
import type { Flow } from "../engine/flow.ts";
import { type FlowKeys, flowKeys, type Lane } from "../engine/redis/keys.ts";
import {
  checkedLag,
  evictingPolicy,
  lagAtMost,
  pairs,
  removedWaiting,
} from "../engine/redis/redis_info.ts";
import { realClock } from "../adapters/http/rate_limiter.ts";
import { countDeadLetters } from "./dead_letter_queue.ts";
import { maskUrl } from "../engine/mask_url.ts";
import { leaseProcess } from "../engine/redis/source_lease.ts";

/** A consumer of a stage's group: a process (or a dead one whose entries wait to be claimed). */
export interface ConsumerStatus {
  /** The consumer name: `<host>:<pid>:<random>` of the process that read. */
  name: string;
  /** Entries it read and has not acknowledged. */
  pending: number;
  /** Ms since it last read or claimed. */
  idleMs: number;
}

/** One input stream of a stage (its normal or high-priority lane). */
export interface LaneStatus {
  /** Which lane of the stage input this is. */
  lane: Lane;
  /** The stream key in Redis. */
  stream: string;
  /** Whether the stream exists in Redis. */
  exists: boolean;
  /** Entries in the stream (XLEN): read or not, until trimmed. */
  length: number;
  /** Whether the stage's consumer group exists on the stream. */
  group: boolean;
  /**
   * Entries not yet delivered to the stage; null when Redis cannot tell
   * (it lost count of what the group read: after a restart, or deletions).
   */
  lag: number | null;
  /** When lag is null: the most entries that can wait undelivered (lagAtMost); else null. */
  lagAtMost: number | null;
  /** Entries the group has read since the stream began; null when Redis cannot tell. */
  entriesRead: number | null;
  /** Entries delivered and not yet acknowledged (XPENDING). */
  pending: number;
  /** The group's consumers, live and dead. */
  consumers: ConsumerStatus[];
  /** Mean items per entry over the last few entries; null when the stream is empty. */
  itemsPerEntry: number | null;
  /** Entries the stage read per second over the sample; null when unknown. */
  entriesPerSec: number | null;
  /** Estimated items per second: entriesPerSec × itemsPerEntry. */
  itemsPerSec: number | null;
}

/** One stage of a durable flow as `status` reports it: its inputs and its dead letters. */
export interface StageStatus {
  /** The stage id, e.g. `validate` or `embed#2`. */
  id: string;
  /** The stage kind, e.g. `embed`. */
  kind: string;
  /** The normal lane always; the high lane when it exists. */
  lanes: LaneStatus[];
  /** Entries in the dead-letter stream for this stage. */
  deadLetters: number;
  /** What is worth a look about this stage, in words (no consumer group yet, for one). */
  notes: string[];
}

/** One source of a durable flow: whether it is done, and which process reads it. */
export interface SourceStatus {
  /** The source's name in the flow file. */
  name: string;
  /** Its kind, e.g. `rss`. */
  kind: string;
  /** A one-shot source that emitted everything (its done mark is in Redis). */
  done: boolean;
  /** `<host>:<pid>` of the process holding its lease (reading it), or null when none does. */
  heldBy: string | null;
  /** Ms left on that lease: a crashed holder's runs out, and another process takes over. */
  leaseMs: number | null;
  /** The last cron tick polled (ISO), for a `cron` source. */
  lastTick: string | null;
}

/**
 * A durable flow's state, read from its Redis: what `status` prints and `status --json` returns.
 */
export interface FlowStatus {
  /** The flow name. */
  flow: string;
  /** The key prefix the flow's keys start with. */
  prefix: string;
  /** The Redis it was read from, its password masked. */
  redis: string;
  /** When it was read (ISO). */
  time: string;
  /** The sampling window of the rates, ms (0: no rates). */
  sampleMs: number;
  /** Whether the flow ever started against this Redis (its stage list is there). */
  ran: boolean;
  /** Every source, in flow order. */
  sources: SourceStatus[];
  /** Every stage, in flow order. */
  stages: StageStatus[];
  /** Dead letters waiting, in all and per stage. */
  deadLetters: { total: number; byStage: Record<string, number> };
  /** What is worth a look about the flow as a whole (rates not sampled, for one). */
  notes: string[];
}

const LANES: Lane[] = ["normal", "high"];

/**
 * What a durable flow's streams hold right now, stage by stage in pipeline
 * order: backlog, in-flight work, who holds it, throughput and dead letters.
 * Reads only; a flow that never ran shows zeros and says so. Rates come from
 * how far each group's read counter moves over `sampleMs` (default 1000).
 */
export async function flowStatus(
  redis: Redis,
  flow: Flow,
  opts: {
    sampleMs?: number;
    keys?: FlowKeys;
    /** Times the sample (default: the real clock); a seam so tests know its length, not wait it. */
    clock?: { now(): number; sleep(ms: number): Promise<void> };
  } = {},
): Promise<FlowStatus> {
  const keys = opts.keys ?? flowKeys(flow.name, flow.durable.prefix);
  const sampleMs = Math.max(0, opts.sampleMs ?? 1000);
  const lanes = flow.pipeline.flatMap((s) =>
    LANES.map((lane) => ({ stage: s.id, lane, key: keys.input(s.id, lane) }))
  );
  const before = await Promise.all(lanes.map((l) => readGroup(redis, l.key, l.stage)));
  const clock = opts.clock ?? realClock;
  const startedAt = clock.now();
  if (sampleMs > 0) await clock.sleep(sampleMs);
  const sample = sampleMs > 0 ? (clock.now() - startedAt) / 1000 : 0;
  const [lanesNow, deadLetters, stageKinds, sources, stepOf] = await Promise.all([
    Promise.all(lanes.map((l, i) => readLane(redis, l, before[i], sample))),
    countDeadLetters(redis, keys),
    redis.hgetall(keys.stages),
    Promise.all(flow.sources.map((s) => readSource(redis, keys, s.name, s.kind))),
    redis.hgetall(keys.steps),
  ]);

  const stages = flow.pipeline.map((s, i): StageStatus => {
    const [normal, high] = [lanesNow[2 * i], lanesNow[2 * i + 1]];
    return {
      id: s.id,
      kind: s.kind,
      lanes: high.exists ? [normal, high] : [normal],
      deadLetters: deadLetters[s.id] ?? 0,
      notes: stepOf[s.id] !== undefined && stepOf[s.id] !== s.id
        ? fusedNotes(stepOf[s.id], [normal, high])
        : stageNotes(normal, high),
    };
  });

  const ran = Object.keys(stageKinds).length > 0;
  const notes: string[] = [];
  if (!ran && stages.every((s) => !s.lanes[0].exists)) {
    notes.push(
      `nothing of flow ${flow.name} under prefix ${keys.prefix} in this Redis: ` +
        "it has not run here yet (or runs against another Redis or prefix)",
    );
    // One note for the flow, rather than "no input stream" once per stage.
    for (const stage of stages) stage.notes = [];
  }
  const known = new Set(flow.pipeline.map((s) => s.id));
  const sourceNames = new Set(flow.sources.map((s) => s.name));
  for (const [stage, n] of Object.entries(deadLetters)) {
    if (known.has(stage)) continue;
    notes.push(
      sourceNames.has(stage)
        ? `${n} dead letter(s) of source "${stage}": items JSON could not hold`
        : `${n} dead letter(s) of stage "${stage}", which is not in the pipeline any more`,
    );
  }
  // A run after the edit said so once, at its start; its summary then read "finished", and
  // status showed every stage at 0, while thousands of items sat there.
  for (const { stage, waiting } of await removedWaiting(redis, keys, flow)) {
    notes.push(
      `${waiting} ${waiting === 1 ? "entry waits" : "entries wait"} on the input of stage ` +
        `"${stage}", which is not in the pipeline any more and which nothing reads: put the ` +
        `stage back to finish them, or reset the flow to drop them`,
    );
  }
  const evicting = await evictingPolicy(redis);
  if (evicting !== undefined) {
    notes.push(
      `Redis evicts keys when its memory is full (maxmemory-policy ${evicting}): it would drop ` +
        "this flow's streams, leases or dedupe keys; set maxmemory-policy noeviction",
    );
  }
  if (sampleMs === 0) notes.push("rates not sampled (sampleMs 0)");
  return {
    flow: flow.name,
    prefix: keys.prefix,
    redis: flow.redis ? maskUrl(flow.redis) : "",
    time: new Date().toISOString(),
    sampleMs,
    ran,
    sources,
    stages,
    deadLetters: {
      total: Object.values(deadLetters).reduce((a, b) => a + b, 0),
      byStage: deadLetters,
    },
    notes,
  };
}

async function readSource(
  redis: Redis,
  keys: FlowKeys,
  name: string,
  kind: string,
): Promise<SourceStatus> {
  const [done, holder, ms, tick] = await Promise.all([
    redis.exists(keys.done(name)),
    redis.get(keys.lease(name)),
    redis.pttl(keys.lease(name)),
    redis.get(keys.tick(name)),
  ]);
  return {
    name,
    kind,
    done: done === 1,
    heldBy: holder === null ? null : leaseProcess(holder),
    leaseMs: holder === null || ms < 0 ? null : ms,
    lastTick: tick === null || !Number.isFinite(Number(tick))
      ? null
      : new Date(Number(tick)).toISOString(),
  };
}

function stageNotes(normal: LaneStatus, high: LaneStatus): string[] {
  const notes: string[] = [];
  if (!normal.exists && !high.exists) {
    notes.push("no input stream: the stage has not started, or is fused into the step before it");
    return notes;
  }
  for (const lane of [normal, high]) {
    if (!lane.exists) continue;
    const where = lane.lane === "high" ? "high lane: " : "";
    if (!lane.group) notes.push(`${where}no consumer group yet: nothing reads this stream`);
    else if (lane.lag === null) {
      notes.push(
        `${where}lag unknown: Redis lost count of what the stage read (it restarted, or entries ` +
          `were deleted) and counts again once the stage has read to the end; at most ` +
          `${lane.lagAtMost ?? "?"} wait, counting read entries not trimmed yet`,
      );
    }
  }
  return notes;
}

interface GroupReading {
  lag: number | null;
  entriesRead: number | null;
  /** Entries ever added to the stream (XINFO STREAM entries-added). */
  added: number;
}

/** The stage's group on a stream, or undefined when the stream or group is missing. */
async function readGroup(
  redis: Redis,
  key: string,
  group: string,
): Promise<GroupReading | undefined> {
  let groups: unknown[];
  let stream: unknown;
  try {
    [groups, stream] = await Promise.all([
      redis.xinfo("GROUPS", key) as Promise<unknown[]>,
      redis.xinfo("STREAM", key),
    ]);
  } catch (error) {
    if (/no such key/i.test((error as Error).message)) return undefined;
    throw error;
  }
  const g = groups.map(pairs).find((g) => g.name === group);
  if (!g) return undefined;
  return {
    // Checked against the stream: Redis's own lag can stay above 0 after it
    // reloads its append-only file, and `status` would show it for ever.
    lag: await checkedLag(redis, key, g),
    entriesRead: typeof g["entries-read"] === "number" ? g["entries-read"] : null,
    added: Number(pairs(stream)["entries-added"] ?? 0),
  };
}

/**
 * Entries the group read between two readings. Redis 7 counts them
 * (entries-read), but not before a group's first read nor after
 * deletions; then what was added minus how much the lag grew tells the
 * same when the lag is known.
 */
function readBetween(before: GroupReading, after: GroupReading): number | null {
  if (before.entriesRead !== null && after.entriesRead !== null) {
    return Math.max(0, after.entriesRead - before.entriesRead);
  }
  if (before.lag !== null && after.lag !== null) {
    return Math.max(0, after.added - before.added - (after.lag - before.lag));
  }
  return null;
}

/**
 * Everything `status` shows of one lane. Rates compare the group with
 * `before`, read `seconds` earlier (0: no rates).
 */
async function readLane(
  redis: Redis,
  { key, stage, lane }: { key: string; stage: string; lane: Lane },
  before: GroupReading | undefined,
  seconds: number,
): Promise<LaneStatus> {
  const [length, group, recent] = await Promise.all([
    redis.xlen(key),
    readGroup(redis, key, stage),
    redis.xrevrange(key, "+", "-", "COUNT", 10),
  ]);
  const exists = length > 0 || group !== undefined || (await redis.exists(key)) === 1;
  const status: LaneStatus = {
    lane,
    stream: key,
    exists,
    length,
    group: group !== undefined,
    // Without a group nothing has read the stream: all of it waits.
    lag: group ? group.lag : length,
    lagAtMost: null,
    entriesRead: group ? group.entriesRead : 0,
    pending: 0,
    consumers: [],
    itemsPerEntry: meanItems(recent),
    entriesPerSec: exists ? null : 0,
    itemsPerSec: exists ? null : 0,
  };
  if (!group) return status;
  const [summary, consumers] = await Promise.all([
    redis.xpending(key, stage) as Promise<unknown[]>,
    redis.xinfo("CONSUMERS", key, stage) as Promise<unknown[]>,
  ]);
  status.pending = Number(summary[0] ?? 0);
  if (status.lag === null) status.lagAtMost = lagAtMost(length, status.pending);
  status.consumers = consumers.map(pairs).map((c) => ({
    name: String(c.name),
    pending: Number(c.pending ?? 0),
    idleMs: Number(c.idle ?? 0),
  }));
  const read = before && seconds > 0 ? readBetween(before, group) : null;
  if (read !== null) {
    const perSec = read / seconds;
    status.entriesPerSec = perSec;
    status.itemsPerSec = perSec === 0
      ? 0
      : status.itemsPerEntry === null
      ? null
      : perSec * status.itemsPerEntry;
  }
  return status;
}

/** Mean of the `n` field over entries as XREVRANGE returns them; null when none. */
function meanItems(entries: [string, string[]][]): number | null {
  let total = 0;
  let count = 0;
  for (const [, fields] of entries) {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] !== "n") continue;
      const n = Number(fields[i + 1]);
      if (Number.isFinite(n)) {
        total += n;
        count++;
      }
    }
  }
  return count === 0 ? null : total / count;
}

/**
 * A stage the last start fused into `step`: its own input is read by no
 * step while such a run goes on, so entries an unfused run left there wait
 * (a review saw 1,060 items sit there unnoticed beside a fused process).
 */
function fusedNotes(step: string, lanes: LaneStatus[]): string[] {
  const waiting = lanes.reduce(
    (n, l) => n + (l.exists ? (l.lag ?? l.lagAtMost ?? 1) + l.pending : 0),
    0,
  );
  const note = `fused into ${step}'s step, which reads ${step}'s streams`;
  if (waiting === 0) return [note];
  return [
    `${note}; the ${waiting} ${
      waiting === 1 ? "entry" : "entries"
    } an unfused run left on its own input wait unread while a fused run goes on (run the ` +
    `flow unfused to finish them)`,
  ];
}
