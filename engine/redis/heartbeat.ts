import { sleep } from "../backoff.ts";
import { errorMessage } from "../errors.ts";
import type { Lane } from "./keys.ts";
import { RedisScript } from "./redis_script.ts";
import { type DurableStepRun, LANES } from "./step_run.ts";

/**
 * KEYS[1]: an input stream. ARGV[1]: its group, ARGV[2]: this consumer,
 * ARGV[3]: the idle time (ms) to give each entry, then entry ids. Each id
 * still pending to this consumer is claimed again by it (JUSTID: its
 * delivery count stays) with that idle time; an id pending elsewhere or no
 * longer pending is left alone, and so is one whose entry is gone from the
 * stream (XCLAIM would drop it from the group without a word:
 * lost_entries.ts reports those). Returns the ids it marked.
 */
const MARK = new RedisScript(`
local marked = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  if #redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1, ARGV[2]) > 0
    and #redis.call('XRANGE', KEYS[1], id, id) > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'IDLE', ARGV[3], 'JUSTID')
    table.insert(marked, id)
  end
end
return marked
`);

/**
 * Sets the idle time of the entries `ids` of `stream` that are still
 * pending to `consumer`, and of no others: 0 to renew them (heartbeatLoop),
 * or claimAfter to hand them over at once (RedisEdge's release on a hard
 * stop). An entry another process has claimed meanwhile is its own: taking
 * it back would have a third process claim it while the second still runs it.
 * Returns the ids it marked: those still this consumer's.
 */
export async function markHeld(
  redis: DurableStepRun["redis"],
  stream: string,
  group: string,
  consumer: string,
  idleMs: number,
  ids: readonly string[],
): Promise<string[]> {
  const marked: string[] = [];
  for (let i = 0; i < ids.length; i += CHUNK) {
    const chunk = [group, consumer, String(idleMs), ...ids.slice(i, i + CHUNK)];
    marked.push(...(await MARK.run(redis, [stream], chunk) as string[]));
  }
  return marked;
}

/** Ids per script call: a step holds a few windows' worth of entries. */
const CHUNK = 200;

/**
 * Keeps the entries this step holds from looking abandoned: every third of
 * `claimAfter`, each entry read or claimed and not yet committed (`held`)
 * has its idle time set back to 0, so other processes claim only the
 * entries of a process that stopped (crashed, frozen, cut off), not a batch
 * a live one is still working on. Without it, a batch that took longer than
 * `claimAfter` (a slow embedding API with its retries, an LLM step, a fused
 * step running several stages) was claimed and run a second time by another
 * process: its calls paid twice, the first commit kept and the other's
 * work thrown away. A frozen or stopped process renews nothing (its event
 * loop does not run), so its entries are still claimed after `claimAfter`.
 */
export async function heartbeatLoop(run: DurableStepRun): Promise<void> {
  const { keys, step, options, stop } = run;
  const every = Math.max(100, options.claimAfter / 3);
  while (!stop.aborted) {
    await sleep(every, stop);
    if (stop.aborted) return;
    const ids: Record<Lane, string[]> = { high: [], normal: [] };
    for (const held of run.held.keys()) {
      const space = held.indexOf(" ");
      ids[held.slice(0, space) as Lane].push(held.slice(space + 1));
    }
    for (const lane of LANES) {
      try {
        await markHeld(run.redis, keys.input(step.id, lane), step.id, run.consumer, 0, ids[lane]);
      } catch (error) {
        if (stop.aborted) return;
        run.log.warn(`${keys.flow}/${step.id}: renewing held entries failed`, {
          error: errorMessage(error),
        });
      }
    }
  }
}
