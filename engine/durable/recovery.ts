import type { Redis } from "ioredis";
import { sleep } from "../backoff.ts";
import type { DeadLetter } from "../dead_letters.ts";
import { errorMessage } from "../stage_runner.ts";
import { decodeEntry, type StreamEntry } from "./codec.ts";
import { type DurableStepRun, LANES, unparsable } from "./durable_step.ts";
import type { Lane } from "./keys.ts";
import { deadLetterFields } from "./redis_dead_letters.ts";
import { nextId, pairs } from "./redis_info.ts";

/**
 * Recovery: entries idle longer than claimAfter on any consumer (a dead
 * process) are claimed by this one; an entry delivered maxDeliveries times
 * goes to dead letters instead, with the count, so a poison entry that kills
 * its consumer cannot go round for ever.
 *
 * A process that dies holds entries of every step, not only the one that
 * killed it, so the delivery count alone would send innocent entries to dead
 * letters with the guilty one (and their items may already be in a sink).
 * Redelivered entries are therefore run one at a time per process, each
 * counted in `tries` just before it starts, and an entry is dead-lettered
 * only when it was also started maxDeliveries - 1 times alone without
 * finishing (its first delivery ran with others, so it counts as one).
 */
export async function claimLoop(
  run: DurableStepRun,
  claimed: { lane: Lane; entries: StreamEntry[] }[],
): Promise<void> {
  const { keys, step, options, stop } = run;
  const every = Math.max(250, Math.min(options.claimAfter / 2, 5000));
  while (!stop.aborted) {
    await sleep(every, stop);
    if (stop.aborted) return;
    for (const lane of LANES) {
      const key = keys.input(step.id, lane);
      try {
        // What this consumer holds is queued or running here, not abandoned:
        // claiming it again would only count a delivery that never happened.
        const pending = (await run.redis.xpending(
          key,
          step.id,
          "IDLE",
          options.claimAfter,
          "-",
          "+",
          100,
        ) as Pending[]).filter((p) => p[1] !== run.consumer);
        if (pending.length === 0) continue;
        const over = await guilty(run, lane, pending);
        const retry = pending.filter((p) => !over.includes(p)).map((p) => p[0]);
        if (over.length > 0) await deadLetterEntries(run, lane, over);
        if (retry.length > 0) {
          const got = await run.redis.xclaim(
            key,
            step.id,
            run.consumer,
            options.claimAfter,
            ...retry,
          ) as [string, string[]][];
          const entries = got.filter((g) => g && g[1]).map(([id, f]) => decodeEntry(id, f));
          if (entries.length > 0) {
            run.log.info(
              `${keys.flow}/${step.id}: claimed ${entries.length} entries left by a silent consumer`,
            );
            claimed.push({ lane, entries });
          }
        }
      } catch (error) {
        if (stop.aborted) return;
        run.log.warn(`${keys.flow}/${step.id}: claim check failed`, { error: errorMessage(error) });
      }
    }
  }
}

type Pending = [id: string, consumer: string, idle: number, deliveries: number];

/** The pending entries that have used up their deliveries and their tries. */
async function guilty(run: DurableStepRun, lane: Lane, pending: Pending[]): Promise<Pending[]> {
  const { keys, step, maxDeliveries } = run;
  const worn = pending.filter((p) => p[3] >= maxDeliveries);
  if (worn.length === 0 || maxDeliveries <= 1) return worn;
  const tries = await run.redis.hmget(
    keys.tries,
    ...worn.map((p) => keys.tryField(step.id, lane, p[0])),
  );
  return worn.filter((_, i) => Number(tries[i] ?? 0) >= maxDeliveries - 1);
}

async function deadLetterEntries(
  run: DurableStepRun,
  lane: Lane,
  over: Pending[],
): Promise<void> {
  const { keys, step } = run;
  const key = keys.input(step.id, lane);
  for (const [id, consumer, , deliveries] of over) {
    const [found] = await run.redis.xrange(key, id, id);
    const letters: DeadLetter[] = [];
    if (found) {
      const entry = decodeEntry(found[0], found[1]);
      const reason = `delivered ${deliveries} times and never acknowledged (last to ${consumer})`;
      if (entry.items) {
        for (const item of entry.items) {
          letters.push({ stage: step.id, reason, attempts: deliveries, item });
        }
      } else letters.push(unparsable(step.id, entry));
    }
    const multi = run.redis.multi();
    for (const l of letters) multi.xadd(keys.dlq, "*", ...deadLetterFields(l));
    multi.xack(key, step.id, id);
    multi.hdel(keys.tries, keys.tryField(step.id, lane, id));
    await multi.exec();
    run.log.warn(
      `${keys.flow}/${step.id}: entry ${id} went to dead letters after ${deliveries} deliveries`,
    );
    for (const stage of step.stages) {
      if (stage.ctx.stage === step.id) stage.stats.failed += letters.length;
    }
  }
}

/**
 * Trims the step's input streams below what its group has read and
 * acknowledged: below the oldest pending entry, or past the last delivered
 * one when nothing is pending. An unread or unacknowledged entry is never
 * trimmed.
 */
export async function trimLoop(run: DurableStepRun): Promise<void> {
  const { keys, step, stop } = run;
  while (!stop.aborted) {
    await sleep(2000, stop);
    for (const lane of LANES) {
      try {
        await trimStream(run.redis, keys.input(step.id, lane), step.id);
      } catch (error) {
        if (stop.aborted) return;
        run.log.warn(`${keys.flow}/${step.id}: trim failed`, { error: errorMessage(error) });
      }
    }
  }
}

/** Trims one stream below what its only group has acknowledged; returns entries removed. */
export async function trimStream(redis: Redis, key: string, group: string): Promise<number> {
  const [count, minPending] = await redis.xpending(key, group) as [number, string | null];
  let threshold: string;
  if (count > 0 && minPending) threshold = minPending;
  else {
    const groups = (await redis.xinfo("GROUPS", key) as unknown[]).map(pairs);
    const mine = groups.find((g) => g.name === group);
    const last = String(mine?.["last-delivered-id"] ?? "0-0");
    if (last === "0-0") return 0;
    threshold = nextId(last);
  }
  return await redis.xtrim(key, "MINID", threshold);
}
