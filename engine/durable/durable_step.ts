import type { Redis } from "ioredis";
import { sleep } from "../backoff.ts";
import type { DeadLetter } from "../dead_letters.ts";
import type { DurableOptions } from "../flow.ts";
import type { Envelope } from "../item.ts";
import type { Logger } from "../log.ts";
import { type BatchResult, processBatch, type StageWork } from "../stage_runner.ts";
import type { WindowOptions } from "../window.ts";
import { decodeEntry, encodeEntries, type StreamEntry } from "./codec.ts";
import { commitOnce, keepFor } from "./commit.ts";
import type { FlowKeys, Lane } from "./keys.ts";
import { groupState } from "./redis_info.ts";
import { claimLoop, trimLoop } from "./recovery.ts";
import { untilRedis } from "./until_redis.ts";

export { trimStream } from "./recovery.ts";

type Item = Envelope<unknown>;
export const LANES: Lane[] = ["high", "normal"];

/**
 * One durable step: a stage (or several cheap ones fused) that reads its
 * input streams through its consumer group and, for each batch, appends
 * outputs to the next step's streams, appends dead letters and acknowledges
 * its input in ONE MULTI/EXEC, so a crash between the two cannot lose or
 * double an item on the Redis side.
 */
export interface DurableStep {
  /** The id of the first stage: names the input streams and the group. */
  readonly id: string;
  readonly stages: StageWork[];
  readonly window?: WindowOptions;
  /** The id of the next step, whose input streams this step feeds; none for the last. */
  readonly next?: string;
}

export interface DurableStepRun {
  step: DurableStep;
  keys: FlowKeys;
  options: DurableOptions;
  maxDeliveries: number;
  /** Shared connection for non-blocking commands. */
  redis: Redis;
  /** A connection of the step's own, for XREADGROUP BLOCK. */
  reader: Redis;
  consumer: string;
  /** Graceful stop: finish and acknowledge what is held, then return. */
  stop: AbortSignal;
  /** Hard stop: abandon work in hand (it stays pending and is claimed later). */
  kill: AbortSignal;
  log: Logger;
  /** How long one XREADGROUP blocks (ms); bounds how late a stop or maxWait is noticed. */
  blockMs?: number;
  /**
   * Shared by every step of the process: runs redelivered entries one at a
   * time, so a crash is charged to the one entry that was running.
   */
  alone: Serial;
}

/** Runs the tasks given to it one after another. */
export type Serial = <T>(task: () => Promise<T>) => Promise<T>;

export function serial(): Serial {
  let last: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const run = last.then(task, task);
    last = run.catch(() => {});
    return run;
  };
}

const inHand = new WeakMap<DurableStepRun, Set<string>>();

/**
 * The entries this step has read or claimed and not yet committed, as
 * "<lane> <id>". The claim loop leaves these alone, but not the rest of
 * what Redis says this consumer holds: an XREADGROUP whose reply was lost
 * with the connection delivered entries this process never saw.
 */
export function heldBy(run: DurableStepRun): Set<string> {
  let held = inHand.get(run);
  if (!held) inHand.set(run, held = new Set());
  return held;
}

/** Creates the step's consumer groups (from the start of the stream) if missing. */
export async function ensureGroups(redis: Redis, keys: FlowKeys, stage: string): Promise<void> {
  for (const lane of LANES) {
    try {
      await redis.xgroup("CREATE", keys.input(stage, lane), stage, "0", "MKSTREAM");
    } catch (error) {
      if (!String((error as Error).message).includes("BUSYGROUP")) throw error;
    }
  }
}

/** Runs a step until `stop` (then drains what it holds) or `kill`. */
export async function runDurableStep(run: DurableStepRun): Promise<void> {
  const claimed: { lane: Lane; entries: StreamEntry[] }[] = [];
  const claiming = claimLoop(run, claimed);
  const trimming = trimLoop(run);
  try {
    await readLoop(run, claimed);
  } finally {
    await Promise.allSettled([claiming, trimming]);
  }
}

async function readLoop(
  run: DurableStepRun,
  claimed: { lane: Lane; entries: StreamEntry[] }[],
): Promise<void> {
  const { step, stop, kill } = run;
  const window = step.window;
  const entriesPerRead = Math.max(
    1,
    Math.ceil((window?.size ?? run.options.entryItems) / run.options.entryItems),
  );
  // Normal-lane entries waiting for their window to fill.
  let held: StreamEntry[] = [];
  let heldItems = 0;
  let heldWeight = 0;
  let firstAt = 0;
  const weigh = window?.maxWeight !== undefined
    ? (window.weigh ?? ((i: Item) => JSON.stringify(i.payload).length))
    : undefined;
  const flushHeld = async () => {
    if (held.length === 0) return;
    const batch = held;
    held = [];
    heldItems = heldWeight = 0;
    await handle(run, "normal", batch);
  };
  const full = () =>
    window === undefined || heldItems >= window.size ||
    (window.maxWeight !== undefined && heldWeight >= window.maxWeight);

  while (!stop.aborted) {
    kill.throwIfAborted();
    await handleClaimed(run, claimed);
    if (!(await roomDownstream(run))) {
      if (
        held.length > 0 && window?.maxWait !== undefined && Date.now() >= firstAt + window.maxWait
      ) {
        await flushHeld();
      }
      await sleep(100, stop);
      continue;
    }
    const due = held.length > 0 && window?.maxWait !== undefined
      ? Math.max(1, firstAt + window.maxWait - Date.now())
      : Infinity;
    const block = Math.max(1, Math.min(run.blockMs ?? 1000, due));
    const read = await readEntries(run, entriesPerRead, block);
    for (const lane of LANES) {
      const suspects = read[lane].filter((e) => e.suspect);
      if (suspects.length === 0) continue;
      claimed.push({ lane, entries: suspects });
      read[lane] = read[lane].filter((e) => !e.suspect);
    }
    if (read.high.length > 0) await handle(run, "high", read.high);
    for (const entry of read.normal) {
      if (held.length === 0) firstAt = Date.now();
      held.push(entry);
      for (const item of entry.items ?? []) {
        heldItems++;
        if (weigh) heldWeight += weigh(item);
      }
      if (full()) await flushHeld();
    }
    if (
      held.length > 0 && window?.maxWait !== undefined && Date.now() >= firstAt + window.maxWait
    ) {
      await flushHeld();
    }
  }
  // Graceful stop: what was read is finished and acknowledged, not abandoned.
  await flushHeld();
  await handleClaimed(run, claimed);
}

/**
 * Redelivered entries (and suspects) run alone, each counted in `tries`
 * before it starts; the count is cleared in the commit that acknowledges
 * it. An entry of several items that was already started alone and never
 * finished holds an item that kills its process: it is split in halves
 * instead of run again, so the crash is narrowed down to that item, as a
 * throwing item is, and its batch-mates go on.
 */
async function handleClaimed(
  run: DurableStepRun,
  claimed: { lane: Lane; entries: StreamEntry[] }[],
): Promise<void> {
  const { keys, step } = run;
  while (claimed.length > 0) {
    const { lane, entries } = claimed.shift()!;
    for (const entry of entries) {
      const field = keys.tryField(step.id, lane, entry.id);
      await run.alone(async () => {
        const tries = await retrying(run, "claim", () => run.redis.hincrby(keys.tries, field, 1));
        if (tries > 1 && (entry.items?.length ?? 0) > 1) await split(run, lane, entry, field);
        else await handle(run, lane, [entry], field);
      });
    }
  }
}

/**
 * Puts the two halves of an entry back on its stream as suspects and
 * acknowledges it, in one commit: whoever reads a half runs it alone.
 */
async function split(run: DurableStepRun, lane: Lane, entry: StreamEntry, tryField: string) {
  const items = entry.items!;
  const half = Math.ceil(items.length / 2);
  const bodies = encodeEntries(items, half, Infinity);
  run.log.warn(
    `${run.keys.flow}/${run.step.id}: entry ${entry.id} stopped every process that ran it; ` +
      `splitting its ${items.length} items to find the one that does`,
  );
  await commitBatch(run, lane, [entry], bodies, [], tryField, true);
}

/** Reads new entries of both lanes; the high lane's come back first. */
async function readEntries(
  run: DurableStepRun,
  count: number,
  block: number,
): Promise<{ high: StreamEntry[]; normal: StreamEntry[] }> {
  const { keys, step, consumer } = run;
  const high = keys.input(step.id, "high");
  const normal = keys.input(step.id, "normal");
  const reply = await retrying(run, "read", () =>
    run.reader.xreadgroup(
      "GROUP",
      step.id,
      consumer,
      "COUNT",
      count,
      "BLOCK",
      block,
      "STREAMS",
      high,
      normal,
      ">",
      ">",
    ) as Promise<[string, [string, string[]][]][] | null>);
  const out = { high: [] as StreamEntry[], normal: [] as StreamEntry[] };
  const held = heldBy(run);
  for (const [key, entries] of reply ?? []) {
    const lane: Lane = key === high ? "high" : "normal";
    const list = out[lane];
    for (const [id, fields] of entries) {
      held.add(`${lane} ${id}`);
      list.push(decodeEntry(id, fields));
    }
  }
  return out;
}

/**
 * Runs entries through the step's stages and commits the result. Entries
 * that did not parse go to dead letters with the reason, and are
 * acknowledged with the rest.
 */
async function handle(
  run: DurableStepRun,
  lane: Lane,
  entries: StreamEntry[],
  tryField?: string,
): Promise<void> {
  if (entries.length === 0) return;
  const letters: DeadLetter[] = [];
  let items: Item[] = [];
  for (const entry of entries) {
    if (entry.items) items.push(...entry.items);
    else letters.push(unparsable(run.step.id, entry));
  }
  for (const stage of run.step.stages) {
    if (items.length === 0) break;
    const result: BatchResult = await processBatch(stage, items);
    letters.push(...result.letters);
    items = result.out;
  }
  await commit(run, lane, entries, items, letters, tryField);
}

export function unparsable(stage: string, entry: StreamEntry): DeadLetter {
  return {
    stage,
    reason: `unreadable entry ${entry.id}: ${entry.error}`,
    attempts: 0,
    item: { id: entry.id, event: "", source: "", seenAt: 0, attempts: 0, payload: entry.raw },
  };
}

/**
 * Appends outputs and dead letters and acknowledges the input, all or
 * nothing and never twice (engine/durable/commit.ts). When some of the
 * entries were committed elsewhere meanwhile (claimed by another consumer
 * while this one was slow), only the part of the batch that came from the
 * others is committed here.
 */
async function commit(
  run: DurableStepRun,
  lane: Lane,
  entries: StreamEntry[],
  out: Item[],
  letters: DeadLetter[],
  tryField?: string,
): Promise<void> {
  const { step, options } = run;
  const encode = (items: Item[]) =>
    step.next ? encodeEntries(items, options.entryItems, options.entryBytes) : [];
  const gone = await commitBatch(run, lane, entries, encode(out), letters, tryField);
  if (gone.length === 0 || gone.length === entries.length) return;
  const goneSet = new Set(gone);
  const kept = entries.filter((e) => !goneSet.has(e.id));
  const part = keepFor(kept, entries, out, letters);
  await commitBatch(run, lane, kept, encode(part.out), part.letters, tryField);
}

/** One commit script call, retried while Redis is away; returns the ids already committed. */
async function commitBatch(
  run: DurableStepRun,
  lane: Lane,
  entries: readonly StreamEntry[],
  bodies: { body: string; n: number }[],
  letters: readonly DeadLetter[],
  tryField?: string,
  suspect = false,
): Promise<string[]> {
  const { keys, step } = run;
  const commitKeys = {
    input: keys.input(step.id, lane),
    group: step.id,
    output: suspect ? keys.input(step.id, lane) : step.next && keys.input(step.next, lane),
    dlq: keys.dlq,
    tries: keys.tries,
  };
  const gone = await retrying(
    run,
    "commit",
    () => commitOnce(run.redis, commitKeys, { entries, bodies, letters, tryField, suspect }),
  );
  const held = heldBy(run);
  for (const e of entries) held.delete(`${lane} ${e.id}`);
  if (gone.length === 0 && !suspect) appended(run, bodies.length);
  return gone;
}

/** A Redis call of this step, retried while Redis is away; only a hard stop ends the wait. */
function retrying<T>(run: DurableStepRun, what: string, call: () => Promise<T>): Promise<T> {
  const who = `${run.keys.flow}/${run.step.id}`;
  return untilRedis(call, { who, what, log: run.log, signal: run.kill });
}

let roomCache = new WeakMap<DurableStepRun, { at: number; entries: number }>();

/**
 * Backpressure across processes: while the next step's backlog (entries
 * not yet delivered plus delivered and unacknowledged, times items per
 * entry) is above maxBacklog, this step stops reading, so Redis memory stays
 * bounded when a sink is slow. Asked of Redis at most every 100 ms; in
 * between, the entries this step appended since are added to the last
 * answer, so a fast step cannot overshoot by 100 ms of its own output.
 */
async function roomDownstream(run: DurableStepRun): Promise<boolean> {
  const { step, keys, options } = run;
  if (!step.next) return true;
  const cached = roomCache.get(run);
  if (cached && Date.now() - cached.at < 100) {
    return cached.entries * options.entryItems <= options.maxBacklog;
  }
  let entries = 0;
  for (const lane of LANES) {
    const s = await retrying(
      run,
      "backlog check",
      () => groupState(run.redis, keys.input(step.next!, lane), step.next!),
    );
    entries += s.undelivered + s.pending;
  }
  roomCache.set(run, { at: Date.now(), entries });
  return entries * options.entryItems <= options.maxBacklog;
}

/** Counts entries this step appended downstream since the last backlog check. */
function appended(run: DurableStepRun, entries: number): void {
  const cached = roomCache.get(run);
  if (cached) cached.entries += entries;
}

/** For tests: forget cached backlog answers. */
export function resetBacklogCache(): void {
  roomCache = new WeakMap();
}
