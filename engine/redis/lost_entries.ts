import type { DeadLetter } from "../dead_letters.ts";
import { commitOnce } from "./commit.ts";
import type { Lane } from "./keys.ts";
import type { DurableStepRun } from "./step_run.ts";

/**
 * Pending entries whose stream entry no longer exists (trimmed or deleted
 * while pending: their items are lost) are acknowledged only together with
 * a dead letter saying so, and an error in the log, so the loss shows in
 * `dlq list` and `status`. XCLAIM would drop them from the group silently.
 * Each goes through the one commit script, which acknowledges it only while
 * it is pending, so two processes looking at it cannot both report it.
 * Returns the ids of those found among `pending`; the rest still exist.
 */
export async function deadLetterLost(
  run: DurableStepRun,
  lane: Lane,
  pending: readonly { id: string; deliveries: number }[],
): Promise<Set<string>> {
  const gone = new Set<string>();
  if (pending.length === 0) return gone;
  const { keys, step } = run;
  const key = keys.input(step.id, lane);
  const look = run.redis.pipeline();
  for (const { id } of pending) look.xrange(key, id, id);
  const found = (await look.exec()) ?? [];
  for (const [i, { id, deliveries }] of pending.entries()) {
    const [error, entries] = found[i] ?? [];
    if (error) throw error;
    if ((entries as unknown[]).length > 0) continue;
    gone.add(id);
    const already = await commitOnce(
      run.redis,
      { input: key, group: step.id, dlq: keys.dlq, tries: keys.tries },
      {
        entries: [{ id }],
        bodies: [],
        letters: [lostLetter(step.id, id, deliveries)],
        tryField: keys.tryField(step.id, lane, id),
      },
    );
    if (already.length > 0) continue; // another process reported it
    // A record of how far into it a window's batches got goes with it.
    await run.redis.hdel(keys.tries, keys.upToField(step.id, lane, id));
    run.log.error(
      `${keys.flow}/${step.id}: entry ${id} of ${key} was trimmed while pending; ` +
        `its items are lost (see dlq list)`,
    );
    for (const stage of step.stages) {
      if (stage.ctx.stage === step.id) stage.stats.received++, stage.stats.failed++;
    }
  }
  return gone;
}

/** The dead letter of a lost entry: no item left, so its id stands in for one. */
function lostLetter(stage: string, id: string, deliveries: number): DeadLetter {
  return {
    stage,
    reason: `entry ${id} was trimmed while pending`,
    attempts: deliveries,
    item: { id, event: "", source: "", seenAt: 0, attempts: 0, payload: null },
  };
}
