/**
 * The verdict on one run's content, from its JSONL output and its Redis
 * streams after the flow drained:
 *
 * - lost: expected items neither in the sinks nor dead-lettered by the stage
 *   that declares them bad (a copy of a deduplicated item counts as it);
 * - duplicates: JSONL lines beyond the first per item (copies included, and
 *   counted apart as `copies`: another copy of an item published beside it),
 *   dead letters beyond the expected count per stage and item, and dead
 *   letters of items that were published all the same;
 * - stuck: entries still pending on any group;
 * - dead letters: how many the source definition calls for, and how many
 *   there are.
 */
import type { Redis } from "ioredis";
import { deadLetters, edges, flowKeys, readJsonl } from "../tests/engine/redis/_harness.ts";
import type { Expected } from "./_expected.ts";

export interface Verdict {
  lost: number;
  duplicates: number;
  /** Of the duplicates: copies of a deduplicated item published beside it (other ids, same item). */
  copies: number;
  stuck: number;
  deadLettersExpected: number;
  deadLetters: number;
  /** What the losses and unexpected dead letters are, for the notes. */
  samples: string[];
}

/** Compares the flow's outputs with what it must hold; `otherSink` holds the ids a second sink has. */
export async function verify(
  redis: Redis,
  flow: string,
  jsonlPath: string,
  expected: Expected,
  otherSink?: Set<string>,
): Promise<Verdict> {
  const keys = flowKeys(flow);
  const samples: string[] = [];
  const lines = await readJsonl(jsonlPath);
  const written = new Map<string, number>();
  const idsOf = new Map<string, Set<string>>();
  for (const line of lines) {
    const id = String(line.id);
    const key = expected.keyOf.get(id) ?? `unexpected:${id}`;
    written.set(key, (written.get(key) ?? 0) + 1);
    if (!idsOf.has(key)) idsOf.set(key, new Set());
    idsOf.get(key)!.add(id);
  }
  let duplicates = 0;
  let copies = 0;
  for (const [key, n] of written) {
    duplicates += n - 1;
    copies += idsOf.get(key)!.size - 1;
  }
  if (copies > 0) samples.push(`${copies} copies published beside the item they copy`);
  if (duplicates > copies) samples.push(`${duplicates - copies} items written twice`);

  const letters = await deadLetters(redis, keys);
  const lettered = new Map<string, number>();
  for (const l of letters) {
    const k = `${l.stage}/${l.item.id}`;
    lettered.set(k, (lettered.get(k) ?? 0) + 1);
  }
  let deadLettersExpected = 0;
  for (const n of expected.deadLetters.values()) deadLettersExpected += n;
  const unexpected = new Map<string, number>();
  let twice = 0;
  for (const [k, n] of lettered) {
    const want = expected.deadLetters.get(k) ?? 0;
    if (n > Math.max(want, 1)) {
      duplicates += n - Math.max(want, 1);
      twice++;
    }
  }
  if (twice > 0) samples.push(`${twice} items dead-lettered twice by one stage`);
  // An item both published and dead-lettered is there twice (a replay would publish it again).
  let both = 0;
  for (const l of letters) {
    const key = expected.keyOf.get(l.item.id);
    if (key !== undefined && written.has(key)) both++;
  }
  if (both > 0) samples.push(`${both} dead letters of items that were published`);
  duplicates += both;
  for (const l of letters) {
    if (expected.deadLetters.has(`${l.stage}/${l.item.id}`)) continue;
    const why = `${l.stage}: ${l.reason.replace(/\(last to [^)]*\)/, "").slice(0, 60).trim()}`;
    unexpected.set(why, (unexpected.get(why) ?? 0) + 1);
  }
  for (const [why, n] of unexpected) samples.push(`${n} unexpected dead letters (${why})`);
  let lost = 0;
  for (const [k, n] of expected.deadLetters) {
    const id = k.slice(k.indexOf("/") + 1);
    if ((lettered.get(k) ?? 0) < n && !written.has(id)) lost += n - (lettered.get(k) ?? 0);
  }
  const letteredIds = new Set(letters.map((l) => expected.keyOf.get(l.item.id) ?? l.item.id));
  const inOther = otherSink &&
    new Set([...otherSink].map((id) => expected.keyOf.get(id) ?? id));
  let missing = 0;
  let missingOther = 0;
  for (const key of expected.published) {
    if (written.has(key) && (!inOther || inOther.has(key))) continue;
    lost++;
    if (!written.has(key) && !letteredIds.has(key)) missing++;
    if (written.has(key)) missingOther++;
  }
  if (missing > 0) samples.push(`${missing} lost items are in no sink and no dead letter`);
  if (missingOther > 0) samples.push(`${missingOther} lost items are missing from the second sink`);

  let stuck = 0;
  for (const e of await edges(redis, keys)) {
    stuck += e.pending;
    if (e.pending > 0) samples.push(await stuckSample(redis, e.key, e.group));
  }
  return {
    lost,
    duplicates,
    copies,
    stuck,
    deadLettersExpected,
    deadLetters: letters.length,
    samples,
  };
}

/** Which consumers hold a group's pending entries, how often each was delivered and how long ago. */
async function stuckSample(redis: Redis, key: string, group: string): Promise<string> {
  const rows = await redis.xpending(key, group, "-", "+", 5) as [string, string, number, number][];
  const held = rows.map(([id, consumer, idleMs, deliveries]) =>
    `${id} by ${consumer} (${deliveries} deliveries, idle ${Math.round(idleMs / 1000)} s)`
  );
  return `pending on ${key.slice(key.indexOf(":in:") + 1)} (${group}): ${held.join(", ")}`;
}
