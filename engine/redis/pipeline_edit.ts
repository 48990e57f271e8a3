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
 *   input has been through the stages before it in the recorded order and
 *   will go through those from it on in the new one.
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
  // recorded order, and will go through the stages from it on in this file's order: each stage
  // must come exactly once between the two. The same stages in the same order (a restart, an
  // edit of configs) need no look at the backlogs.
  const order = now.map((s) => s.id);
  if (before.length === order.length && before.every((s, i) => s.id === order[i])) return;
  for (const [k, stage] of before.entries()) {
    const from = order.indexOf(stage.id);
    if (from < 0) continue; // a removed stage's input: said by the start (removedWaiting)
    const waiting = await backlog(redis, keys, stage.id);
    if (waiting === 0) continue;
    const done = new Set(before.slice(0, k).map((s) => s.id));
    const ahead = order.slice(from);
    const twice = ahead.filter((id) => done.has(id));
    const skipped = order.slice(0, from).filter((id) => had.has(id) && !done.has(id));
    const entries = `${waiting} ${waiting === 1 ? "entry waits" : "entries wait"}`;
    if (twice.length > 0 || skipped.length > 0) {
      throw new FlowStartError(
        flow.name,
        "durable",
        new Error(
          `the stages are in another order (${before.map((s) => s.id).join(" -> ")} before, ` +
            `${order.join(" -> ")} now) while ${entries} on the input of ${stage.id}: their ` +
            `items would ${skipped.length > 0 ? `skip ${skipped.join(", ")}` : ""}${
              skipped.length > 0 && twice.length > 0 ? " and " : ""
            }${
              twice.length > 0 ? `go through ${twice.join(", ")} twice` : ""
            }; run the flow as it was until \`status\` shows none waiting there (with a polling ` +
            `source, between two polls), then start this file (or reset the flow to drop them)`,
        ),
        place(from),
      );
    }
    const passed = order.slice(0, from).filter((id) => !had.has(id));
    for (const id of passed) {
      log.warn(
        `${flow.name}: stage ${id} is new, and ${entries} on the input of ${stage.id}, past ` +
          `where it stands: their items will not go through it; to have every item go through ` +
          `it, run the flow as it was until \`status\` shows none waiting there, then start ` +
          `this file`,
        { stage: id, entries: waiting, on: stage.id },
      );
    }
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
