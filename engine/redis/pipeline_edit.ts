import type { Redis } from "ioredis";
import { FlowStartError } from "../build_flow.ts";
import type { Flow } from "../flow.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../registry.ts";
import type { FlowKeys } from "./keys.ts";
import { backlog } from "./redis_info.ts";

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
 *   not: a stage given no id is called by its kind, and kind#2 when a stage
 *   of its kind comes before it, so adding one before it renames it) is
 *   refused, whether or not entries wait: its streams, dead letters and
 *   state (a dedupe stage's memory) are under its old id, so its queue
 *   would wait for nothing and a Deduper would start with no memory (a
 *   review's inserted step stranded 128 entries; a second dedupe let 300
 *   duplicates through).
 * - **Stages in another order** while entries wait past the first stage
 *   are refused: items past one of the moved stages would skip the other or
 *   pass through it twice (a review's reorder published 2,580 of 2,600
 *   items without their enrich fields, without a word).
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
  const had = new Map(before.map((s) => [s.id, s]));
  const has = new Set(now.map((s) => s.id));
  const place = (i: number) => ({ path: ["pipeline", i], file: flow.file, locate: flow.locate });

  const recorded = await redis.hgetall(keys.configs);
  const prints = await Promise.all(now.map(fingerprint));
  for (const [id, print] of Object.entries(recorded)) {
    const same = now.findIndex((s) => s.id === id);
    if (same >= 0 && prints[same] === print) continue;
    const i = prints.findIndex((p, k) => p === print && now[k].id !== id);
    if (i < 0) continue;
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

  const kept = before.filter((s) => has.has(s.id)).map((s) => s.id);
  const keptNow = now.filter((s) => had.has(s.id)).map((s) => s.id);
  const moved = kept.some((id, k) => keptNow[k] !== id);
  // Entries past the first stage: on the inputs of the recorded stages after it.
  const waiting = new Map<string, number>();
  const waitingOn = async (ids: string[]) => {
    for (const id of ids) {
      if (!waiting.has(id)) waiting.set(id, await backlog(redis, keys, id));
    }
    return ids.filter((id) => waiting.get(id)! > 0);
  };
  if (moved) {
    const past = await waitingOn(before.slice(1).map((s) => s.id));
    if (past.length > 0) {
      const entries = past.reduce((n, id) => n + waiting.get(id)!, 0);
      throw new FlowStartError(
        flow.name,
        "durable",
        new Error(
          `the stages are in another order (${kept.join(" -> ")} before, ${
            keptNow.join(" -> ")
          } now) while ${entries} ${entries === 1 ? "entry waits" : "entries wait"} past the ` +
            `first stage (on the input of ${past.join(", ")}): their items would skip a moved ` +
            `stage or pass through one twice; run the flow as it was until \`status\` shows none ` +
            `waiting past its first stage (with a polling source, between two polls), then ` +
            `start this file (or reset the flow to drop them)`,
        ),
        place(0),
      );
    }
  }

  for (const [i, stage] of now.entries()) {
    if (had.has(stage.id) || i === 0) continue;
    const after = now.slice(i + 1).filter((s) => had.has(s.id)).map((s) => s.id);
    const past = await waitingOn(after);
    if (past.length === 0) continue;
    const entries = past.reduce((n, id) => n + waiting.get(id)!, 0);
    log.warn(
      `${flow.name}: stage ${stage.id} is new, and ${entries} ${
        entries === 1 ? "entry waits" : "entries wait"
      } past where it stands (on the input of ${past.join(", ")}): their items will not go ` +
        `through it; to have every item go through it, run the flow as it was until \`status\` ` +
        `shows none waiting there, then start this file`,
      { stage: stage.id, entries },
    );
  }
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
 * twice (a review's polled flow published its 300 stories again, without a
 * word).
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
