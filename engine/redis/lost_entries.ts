import type { DeadLetter } from "../dead_letters.ts";
import type { DurableStepRun } from "./step_run.ts";
import type { Lane } from "./keys.ts";
import { deadLetterFields } from "./redis_dead_letters.ts";

// Per entry, atomically: gone from the stream and still pending here, so
// this call is the one that acknowledges it (two processes looking at the
// same entry cannot both), then its dead letter, then its crash count.
// ARGV: group, then per entry its id, its `tries` field and its dead letter's fields.
const WIDTH = 12;
const LOSE = `
local lost = {}
for i = 2, #ARGV, ${WIDTH} do
  local id = ARGV[i]
  if #redis.call('XRANGE', KEYS[1], id, id) == 0
    and redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    redis.call('XADD', KEYS[2], '*', unpack(ARGV, i + 2, i + ${WIDTH - 1}))
    redis.call('HDEL', KEYS[3], ARGV[i + 1])
    table.insert(lost, id)
  end
end
return lost
`;

/**
 * Pending entries whose stream entry no longer exists (trimmed or deleted
 * while pending: their items are lost) are acknowledged only together with
 * a dead letter saying so, and an error in the log, so the loss shows in
 * `dlq list` and `status`. XCLAIM would drop them from the group silently.
 * Returns the ids of those found among `pending`; the rest still exist.
 */
export async function deadLetterLost(
  run: DurableStepRun,
  lane: Lane,
  pending: readonly { id: string; deliveries: number }[],
): Promise<Set<string>> {
  if (pending.length === 0) return new Set();
  const { keys, step } = run;
  const key = keys.input(step.id, lane);
  const args = pending.flatMap(({ id, deliveries }) => [
    id,
    keys.tryField(step.id, lane, id),
    ...deadLetterFields(lostLetter(step.id, id, deliveries)),
  ]);
  const lost = await run.redis.eval(
    LOSE,
    3,
    key,
    keys.dlq,
    keys.tries,
    step.id,
    ...args,
  ) as string[];
  for (const id of lost) {
    run.log.error(
      `${keys.flow}/${step.id}: entry ${id} of ${key} was trimmed while pending; ` +
        `its items are lost (see dlq list)`,
    );
  }
  for (const stage of step.stages) {
    if (stage.ctx.stage === step.id) stage.stats.failed += lost.length;
  }
  return new Set(lost);
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
