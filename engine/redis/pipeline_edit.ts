import type { Redis } from "ioredis";
import { FlowStartError } from "../build_flow.ts";
import type { Flow } from "../flow.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../registry.ts";
import { type FlowKeys, type Lane, LANES } from "./keys.ts";
import { atOrBefore, backlog, groupInfo } from "./redis_info.ts";

/** A stage as the pipeline record keeps it: its id and kind. */
interface Recorded {
  id: string;
  kind: string;
}

/** The stages the last start of the flow recorded (keys.pipeline), in order; none before any. */
export async function recordedPipeline(redis: Redis, keys: FlowKeys): Promise<Recorded[]> {
  const before = await redis.get(keys.pipeline);
  if (before === null) return [];
  return (JSON.parse(before) as string[]).map((s) => {
    const at = s.lastIndexOf(":");
    return { id: s.slice(0, at), kind: s.slice(at + 1) };
  });
}

/**
 * A fingerprint of a stage's kind and config (SHA-256, so a secret in the
 * config cannot be read back from Redis): a stage whose id changed while
 * its config did not is found under its new id.
 */
export async function fingerprint(stage: { kind: string; config: unknown }): Promise<string> {
  let json: string;
  try {
    // A step's config holds its module's spec: its schema (a zod object) stands as its class.
    json = JSON.stringify([stage.kind, stage.config], (_key, value) => {
      if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
      const proto = Object.getPrototypeOf(value);
      return proto === Object.prototype || proto === null ? value : `[${proto?.constructor?.name}]`;
    });
  } catch {
    json = JSON.stringify([stage.kind]); // a cycle: the kind alone
  }
  const text = new TextEncoder().encode(json);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", text));
  return Array.from(digest.subarray(0, 12), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Checks an edit of a durable flow against the pipeline its last start
 * recorded, before anything is read: an edit that would send items the
 * wrong way is refused, naming the stage's line and the way out, and one
 * that lets items already under way pass a new stage by is said.
 *
 * - **A stage under a new id** (its kind and config as they were, its id
 *   not, with a stage of its kind added or removed: a stage given no id is
 *   called by its kind, and kind#2 when a stage of its kind comes before
 *   it, so adding one before it renames it) is refused, whether or not
 *   entries wait: its streams, dead letters and state (a dedupe stage's
 *   memory) are under its old id, so its queue would wait for nothing and a
 *   Deduper would start with no memory and let copies through. With as many
 *   stages of the kind as before, it is an edit of configs, or a rename the
 *   file's ids ask for.
 * - **Stages in another order** are refused where entries wait whose items
 *   would then skip a stage or go through one twice: an entry on a stage's
 *   input has been through the stages before it in the order of the run
 *   that wrote it (recordWriters) and will go through those from it on in
 *   the new one.
 * - **A new stage** with entries waiting past where it stands is said:
 *   those items will not go through it.
 * - **A stage keyed otherwise** (a Deduper's key fields: StageSpec.keyedBy)
 *   is said: what it remembers was keyed the old way.
 */
export async function checkEdit(
  redis: Redis,
  keys: FlowKeys,
  flow: Flow,
  log: Logger,
  registry: Registry,
): Promise<void> {
  const before = await recordedPipeline(redis, keys);
  if (before.length === 0) return;
  await sayRekeyed(redis, keys, flow, log, registry);
  const now = flow.pipeline;
  const place = (i: number) => ({ path: ["pipeline", i], file: flow.file, locate: flow.locate });

  const recorded = await redis.hgetall(keys.configs);
  const prints = await Promise.all(now.map(fingerprint));
  const count = (stages: readonly { kind: string }[], kind: string) =>
    stages.filter((s) => s.kind === kind).length;
  for (const [id, print] of Object.entries(recorded)) {
    const same = now.findIndex((s) => s.id === id);
    if (same >= 0 && prints[same] === print) continue;
    const i = prints.findIndex((p, k) => p === print && now[k].id !== id);
    // Only a stage of its kind added or removed renames others: with as many of the kind as
    // before, a config found under another id is an edit of both stages' configs, or a rename
    // the file asks for by giving ids.
    if (i < 0 || count(before, now[i].kind) === count(now, now[i].kind)) continue;
    throw new FlowStartError(
      flow.name,
      "durable",
      new Error(
        `the stage that was ${id} is now ${now[i].id} (its kind and config are ${id}'s): a ` +
          `stage given no id is called by its kind, and kind#2 when a stage of its kind comes ` +
          `before it, and its streams, dead letters and state (a dedupe stage's memory) are ` +
          `under ${id}: give it \`id: ${id}\` to keep them${
            same >= 0 ? `, and the stage now called ${id} an id of its own` : ""
          } (or, to start them afresh, reset the flow)`,
      ),
      place(i),
    );
  }

  // Where entries wait, their items have been through the stages before that input in the
  // order of the run that wrote them, and will go through the stages from it on in this file's
  // order: each stage must come exactly once between the two. The writers' orders are recorded
  // per input (keys.passed), not only the last start's: a stage removed with entries waiting
  // and put back elsewhere later was checked against the run in between, which never had it,
  // and its items skipped a stage.
  // Stages that exchanged configs under ids that stayed (two `enrich:` lines swapped, each
  // called by its place) are moved stages: what an item waiting between them has been through
  // is the config, not the id, so the order is checked by where each config went.
  const order = now.map((s) => s.id);
  const moved = exchanged(before.map((s) => s.id), order, prints, recorded);
  const work = order.map((id) => moved.get(id) ?? id);
  const swapped = moved.size === 0
    ? ""
    : ` (${
      [...moved].map(([now, was]) => `${was}'s config is now ${now}'s`).join(", ")
    }: a stage given no id is called by its kind and place, so those moved)`;
  const writers = await writersOf(redis, keys, before);
  for (const [from, id] of order.entries()) {
    const ahead = work.slice(from), behind = work.slice(0, from);
    const others = (writers.get(id) ?? []).filter((w) => !samePlace(w, behind, id));
    if (others.length === 0) continue;
    const waiting = await backlog(redis, keys, id);
    if (waiting === 0) continue;
    const entries = `${waiting} ${waiting === 1 ? "entry waits" : "entries wait"}`;
    const newOnes = new Set<string>();
    for (const writer of others) {
      const existed = new Set(writer);
      const done = new Set(writer.slice(0, writer.indexOf(id)));
      const twice = ahead.filter((s) => done.has(s));
      const skipped = behind.filter((s) => existed.has(s) && !done.has(s));
      if (twice.length > 0 || skipped.length > 0) {
        throw new FlowStartError(
          flow.name,
          "durable",
          new Error(
            `the stages are in another order (${writer.join(" -> ")} when they were written, ` +
              `${work.join(" -> ")} now${swapped}) while ${entries} on the input of ${id}: ` +
              `their ` +
              `items would ${skipped.length > 0 ? `skip ${skipped.join(", ")}` : ""}${
                skipped.length > 0 && twice.length > 0 ? " and " : ""
              }${
                twice.length > 0 ? `go through ${twice.join(", ")} twice` : ""
              }; run the flow as it was until \`status\` shows none waiting there (with a ` +
              `polling source, between two polls), then start this file (or reset the flow to ` +
              `drop them)`,
          ),
          place(from),
        );
      }
      for (const s of behind) if (!existed.has(s)) newOnes.add(s);
    }
    for (const s of newOnes) {
      log.warn(
        `${flow.name}: stage ${s} is new, and ${entries} on the input of ${id}, past ` +
          `where it stands: their items will not go through it; to have every item go through ` +
          `it, run the flow as it was until \`status\` shows none waiting there, then start ` +
          `this file`,
        { stage: s, entries: waiting, on: id },
      );
    }
  }
}

/**
 * A run that wrote to a stage's input: its pipeline (stage ids in order),
 * and, once a later start put another pipeline in its place, the last
 * entry of each lane it may have written: past those, its entries are done.
 */
interface Writer {
  order: string[];
  upTo?: Partial<Record<Lane, string>>;
}

/** The writers keys.passed records for each stage, else the last start's pipeline for its stages. */
async function recordedWriters(
  redis: Redis,
  keys: FlowKeys,
  before: readonly Recorded[],
): Promise<{ writers: Map<string, Writer[]>; recorded: Record<string, string> }> {
  const writers = new Map<string, Writer[]>();
  // A flow last started before the record was kept: its last start wrote to its stages.
  const last = before.map((s) => s.id);
  for (const id of last) writers.set(id, [{ order: last }]);
  const recorded = await redis.hgetall(keys.passed);
  for (const [id, json] of Object.entries(recorded)) {
    try {
      const list = JSON.parse(json) as Writer[];
      if (Array.isArray(list) && list.every((w) => Array.isArray(w?.order))) writers.set(id, list);
    } catch {
      // unreadable: the last start's, as before the record
    }
  }
  return { writers, recorded };
}

/**
 * `writers` less the earlier ones whose entries are all done (read and
 * acknowledged, or trimmed): only the newest can still be writing.
 */
async function live(
  redis: Redis,
  keys: FlowKeys,
  id: string,
  writers: readonly Writer[],
): Promise<Writer[]> {
  const kept: Writer[] = [];
  for (const [i, w] of writers.entries()) {
    if (i === writers.length - 1 || !w.upTo || !(await doneUpTo(redis, keys, id, w.upTo))) {
      kept.push(w);
    }
  }
  return kept;
}

/** Whether no entry up to `upTo` on `id`'s input lanes is waiting or in hand. */
async function doneUpTo(
  redis: Redis,
  keys: FlowKeys,
  id: string,
  upTo: Partial<Record<Lane, string>>,
): Promise<boolean> {
  for (const lane of LANES) {
    const last = upTo[lane];
    if (last === undefined || last === "0-0") continue;
    const key = keys.input(id, lane);
    if ((await redis.xrange(key, "-", last, "COUNT", 1)).length === 0) continue;
    const delivered = (await groupInfo(redis, key, id))?.["last-delivered-id"];
    if (delivered === undefined || !atOrBefore(last, String(delivered))) return false;
    if ((await redis.xpending(key, id, "-", last, 1) as unknown[]).length > 0) return false;
  }
  return true;
}

/** The pipelines whose runs wrote what may still wait on each stage's input. */
async function writersOf(
  redis: Redis,
  keys: FlowKeys,
  before: readonly Recorded[],
): Promise<Map<string, string[][]>> {
  const { writers } = await recordedWriters(redis, keys, before);
  const out = new Map<string, string[][]>();
  for (const [id, list] of writers) {
    out.set(id, (list.length > 1 ? await live(redis, keys, id, list) : list).map((w) => w.order));
  }
  return out;
}

/** Whether `writer`'s items on `id`'s input have been through the stages `behind` it now. */
function samePlace(writer: readonly string[], behind: readonly string[], id: string): boolean {
  const done = writer.slice(0, writer.indexOf(id));
  return done.length === behind.length && done.every((s) => behind.includes(s));
}

/**
 * The stages whose configs went round among them, ids staying put: each id
 * mapped to the id whose recorded config (fingerprint) it carries now. A
 * config that left k ids and arrived at k others went from the first it
 * left to the first it reached, and so on, in pipeline order (two stages
 * alike move as a pair). Only whole exchanges count (every config that
 * left an id arrived at another of them), so a stage given another's old
 * config and a new one in its place stays an edit of both.
 */
function exchanged(
  was: readonly string[],
  order: readonly string[],
  prints: readonly string[],
  recorded: Readonly<Record<string, string>>,
): Map<string, string> {
  const moved = new Map<string, string>();
  const now = new Map(order.map((id, k) => [id, prints[k]]));
  for (const print of new Set(prints)) {
    const left = was.filter((id) => recorded[id] === print && now.get(id) !== print);
    const reached = order.filter((id) =>
      now.get(id) === print && recorded[id] !== undefined && recorded[id] !== print
    );
    if (left.length === reached.length) reached.forEach((id, i) => moved.set(id, left[i]));
  }
  // Keep only cycles: a config that moved to an id whose own did not move on is an edit.
  for (let changed = true; changed;) {
    changed = false;
    for (const [id, from] of moved) {
      if (!moved.has(from)) moved.delete(id), changed = true;
    }
  }
  const targets = new Set(moved.values());
  return targets.size === moved.size ? moved : new Map();
}

/**
 * Records that this start's run writes to each of its stages' inputs
 * (keys.passed): where another pipeline wrote last, it is kept beside this
 * one, with the last entry of each lane it may have written, until those
 * are done. Stages no longer in the flow keep theirs, for the start that
 * puts them back; a flow last started before the record was kept has its
 * last start's pipeline recorded for each of its stages first.
 */
export async function recordWriters(
  redis: Redis,
  keys: FlowKeys,
  order: readonly string[],
  before: readonly Recorded[],
): Promise<void> {
  const { writers, recorded } = await recordedWriters(redis, keys, before);
  const record: Record<string, string> = {};
  for (const id of new Set([...order, ...before.map((s) => s.id)])) {
    let next = await live(redis, keys, id, writers.get(id) ?? []);
    const newest = next[next.length - 1];
    if (order.includes(id) && (!newest || !sameOrder(newest.order, order))) {
      if (newest) newest.upTo = await lastEntries(redis, keys, id);
      next = await live(redis, keys, id, [...next, { order: [...order] }]);
    }
    const json = JSON.stringify(next);
    if (recorded[id] !== json) record[id] = json;
  }
  if (Object.keys(record).length > 0) await redis.hset(keys.passed, record);
}

function sameOrder(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/** The id of the last entry on each of `id`'s input lanes ("0-0" for none). */
async function lastEntries(
  redis: Redis,
  keys: FlowKeys,
  id: string,
): Promise<Partial<Record<Lane, string>>> {
  const out: Partial<Record<Lane, string>> = {};
  for (const lane of LANES) {
    out[lane] = (await redis.xrevrange(keys.input(id, lane), "+", "-", "COUNT", 1))[0]?.[0] ??
      "0-0";
  }
  return out;
}

/** What each stage of `flow` is keyed by (StageSpec.keyedBy), for the stages whose kind says. */
export function keyedBy(flow: Flow, registry: Registry): Record<string, string> {
  const out: Record<string, string> = {};
  for (const stage of flow.pipeline) {
    const by = registry.stages.get(stage.kind)?.keyedBy?.(stage.config);
    if (by !== undefined) out[stage.id] = by;
  }
  return out;
}

/**
 * Warns of each stage keyed otherwise than at the last start: a Deduper
 * whose key went from [url] to [title] no longer knows the stories it
 * remembers, and gives their copies another id, so sinks hold each story
 * twice.
 */
async function sayRekeyed(
  redis: Redis,
  keys: FlowKeys,
  flow: Flow,
  log: Logger,
  registry: Registry,
): Promise<void> {
  const was = await redis.hgetall(keys.keyed);
  for (const [stage, now] of Object.entries(keyedBy(flow, registry))) {
    const before = was[stage];
    if (before === undefined || before === now) continue;
    log.warn(
      `${flow.name}: stage ${stage} is keyed by ${now} now, by ${before} at the last start: what ` +
        `it remembers was keyed the old way, so an item it saw before is not known again, and ` +
        `goes on under another id (a sink that keeps one row per id gets a second); to start ` +
        `over without such copies, reset the flow and empty its sinks, or key it as before`,
      { stage, keyedBy: now, before },
    );
  }
}

/** An order of stages a flow started with, from `at` (ms, Redis's clock): keys.orders. */
export interface StartedOrder {
  at: number;
  order: string[];
  /**
   * Another order that may have run from `at` too: an older millrace started `order` some
   * time after the record's last entry (a rollback), and that one may have gone on until then.
   */
  also?: string[];
}

/** Orders kept: a flow reordered more often than this loses the oldest, whose letters go unchecked. */
const ORDERS_KEPT = 100;

/**
 * Records that the flow runs its stages in `order` from now, when the last
 * start had another (keys.orders), so `dlq replay` can tell which stages a
 * letter's item had been through when it was written. `before` is the
 * order the last start recorded (keys.pipeline), which a millrace from
 * before this record writes too: when the record is empty it stands for
 * all time before now, and when it differs from the record's last entry an
 * older millrace started in between (a rollback), from some time after it.
 */
export async function recordOrder(
  redis: Redis,
  keys: FlowKeys,
  order: readonly string[],
  before: readonly string[],
): Promise<void> {
  const json = await redis.lindex(keys.orders, -1);
  const last = json === null ? undefined : JSON.parse(json) as StartedOrder;
  const add: StartedOrder[] = [];
  if (before.length > 0 && (last === undefined || !sameOrder(last.order, before))) {
    // A rollback: when the older millrace started is not known, so either order may have
    // written a letter since the last entry.
    add.push(
      last === undefined
        ? { at: 0, order: [...before] }
        : { at: last.at + 1, order: [...before], also: last.order },
    );
  }
  const newest = add[add.length - 1] ?? last;
  if (newest === undefined || !sameOrder(newest.order, order)) {
    const [sec, micro] = await redis.time();
    const now = Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
    // A flow's first start: its order is all the record can say of the time before.
    add.push({ at: newest === undefined ? 0 : now, order: [...order] });
  }
  if (add.length === 0) return;
  await redis.multi()
    .rpush(keys.orders, ...add.map((o) => JSON.stringify(o)))
    .ltrim(keys.orders, -ORDERS_KEPT, -1)
    .exec();
}

/** The orders keys.orders holds, oldest first; unreadable ones left out. */
export async function startedOrders(redis: Redis, keys: FlowKeys): Promise<StartedOrder[]> {
  const out: StartedOrder[] = [];
  for (const json of await redis.lrange(keys.orders, 0, -1)) {
    try {
      const o = JSON.parse(json) as StartedOrder;
      if (typeof o.at === "number" && Array.isArray(o.order)) out.push(o);
    } catch {
      // not one of ours
    }
  }
  return out;
}

/**
 * The stages of `now` that an item would skip if put on `target`'s input,
 * given that it had been through the stages before `stage` in `then` (and
 * not `stage` itself, which gave up on it): those before `target` now that
 * it never went through, a stage added since included (a dedupe added
 * before a letter's stage would let its copy through). Empty when nothing
 * is skipped.
 */
export function skippedStages(
  then: readonly string[],
  now: readonly string[],
  stage: string,
  target: string,
): string[] {
  const at = then.indexOf(stage);
  const passed = new Set(at < 0 ? [] : then.slice(0, at));
  return now.slice(0, Math.max(0, now.indexOf(target))).filter((s) => !passed.has(s));
}
