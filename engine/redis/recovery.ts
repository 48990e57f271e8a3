import type { Redis } from "ioredis";
import { sleep } from "../backoff.ts";
import type { DeadLetter } from "../dead_letters.ts";
import { errorMessage } from "../errors.ts";
import { decodeEntry, type StreamEntry } from "./codec.ts";
import { type DurableStepRun, LANES, unparsable } from "./step_run.ts";
import type { Lane } from "./keys.ts";
import { commitOnce } from "./commit.ts";
import { deadLetterLost } from "./lost_entries.ts";
import { isLostFlow } from "./until_redis.ts";
import { isNoPermission, RedisRefusedError } from "./no_permission.ts";

/** The step as its lines name it. */
const who = (run: DurableStepRun) => `${run.keys.flow}/${run.step.id}`;

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
  claimed: {
    push(claim: { lane: Lane; entries: StreamEntry[] }): void;
    /** A right the Redis user lacks (no XCLAIM): the step ends the run with it. */
    refused?(error: RedisRefusedError): void;
  },
  opts: { staleAfterMs?: number } = {},
): Promise<void> {
  const { keys, step, options, stop } = run;
  const every = Math.max(250, Math.min(options.claimAfter / 2, 5000));
  const stale = opts.staleAfterMs ?? staleAfter(options.claimAfter);
  let prunedAt = Date.now();
  let told = false;
  while (!stop.aborted) {
    await sleep(every, stop);
    if (stop.aborted) return;
    const prune = Date.now() - prunedAt >= Math.max(every, stale / 10);
    if (prune) prunedAt = Date.now();
    let waiting = 0;
    let claimedAny = false;
    for (const lane of LANES) {
      const key = keys.input(step.id, lane);
      try {
        const look = await pendingElsewhere(run, lane);
        waiting += look.waiting;
        const lost = await deadLetterLost(
          run,
          lane,
          look.pending.map(([id, , , n]) => ({ id, deliveries: n })),
        );
        const pending = look.pending.filter((p) => !lost.has(p[0]));
        if (pending.length > 0) {
          const over = await guilty(run, lane, pending);
          const retry = pending.filter((p) => !over.includes(p)).map((p) => p[0]);
          if (over.length > 0) retry.push(...await deadLetterEntries(run, lane, over));
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
              for (const e of entries) run.held.set(`${lane} ${e.id}`, e.items?.length ?? 0);
              run.log.info(
                `${keys.flow}/${step.id}: claimed ${entries.length} ${
                  entries.length === 1 ? "entry" : "entries"
                } left by a silent consumer`,
              );
              claimed.push({ lane, entries });
              claimedAny = true;
            }
          }
        }
        if (prune) await pruneStale(run, key, stale);
      } catch (error) {
        if (stop.aborted) return;
        // Checked for ever, entries a dead consumer left would wait for ever.
        if (isNoPermission(error)) {
          return claimed.refused?.(new RedisRefusedError("the claim check", error, who(run)));
        }
        run.log.warn(`${keys.flow}/${step.id}: claim check failed`, { error: errorMessage(error) });
      }
    }
    // Said once, and again only after entries were claimed (a new silence
    // may follow): a live process beside this one holds entries now and then
    // none, and each of its batches was said again as if something were stuck.
    if (waiting > 0 && !told) {
      run.log.info(
        `${keys.flow}/${step.id}: ${waiting} ${waiting === 1 ? "entry" : "entries"} pending on ` +
          `other consumers (processes of this flow, running or dead); any idle for ` +
          `${options.claimAfter / 1000}s is claimed`,
      );
      told = true;
    } else if (claimedAny) told = false;
  }
}

/**
 * Entries to claim: those idle past claimAfter (at most 100), and how many
 * others are pending on other consumers, not idle long enough yet. What
 * this step has in hand (`held`) is queued or running here, not
 * abandoned: claiming it again would count a delivery that never
 * happened. What Redis says this consumer holds beyond that was delivered
 * by a read whose reply was lost, and is claimed like any other.
 * One round trip (the summary and the idle entries, pipelined).
 */
async function pendingElsewhere(
  run: DurableStepRun,
  lane: Lane,
): Promise<{ pending: Pending[]; waiting: number }> {
  const { step, options } = run;
  const key = run.keys.input(step.id, lane);
  const replies = await run.redis.pipeline()
    .xpending(key, step.id)
    .xpending(key, step.id, "IDLE", options.claimAfter, "-", "+", 100)
    .exec();
  const [summary, idle] = (replies ?? []).map(([error, value]) => {
    if (error) throw error;
    return value;
  }) as [[number, string | null, string | null, [string, string][] | null], Pending[]];
  const held = run.held;
  const pending = idle.filter((p) => !held.has(`${lane} ${p[0]}`));
  let elsewhere = 0;
  for (const [name, count] of summary[3] ?? []) {
    if (name !== run.consumer) elsewhere += Number(count);
  }
  return { pending, waiting: Math.max(0, elsewhere - pending.length) };
}

/**
 * How long a consumer must be idle, with nothing pending, before the claim
 * loop deletes it: ten times claimAfter and at least five minutes. Deleting
 * such a consumer loses nothing (a live one is recreated by its next read),
 * so the bound only has to spare live processes paused by backpressure
 * from flickering out of `status`; killed processes leave within minutes.
 */
export function staleAfter(claimAfter: number): number {
  return Math.max(10 * claimAfter, 5 * 60_000);
}

// Checks and deletes in one step on the server, so a consumer that reads
// between the check and the delete cannot lose the entries it just got.
const PRUNE = `
local gone = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] ~= ARGV[2] and f['pending'] == 0 and f['idle'] > tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    table.insert(gone, f['name'])
  end
end
return gone
`;

/**
 * Deletes the group's consumers that hold nothing and have been idle over
 * `idleMs` (killed processes), never `keep`; returns their names.
 */
export async function pruneConsumers(
  redis: Redis,
  key: string,
  group: string,
  keep: string,
  idleMs: number,
): Promise<string[]> {
  return await redis.eval(PRUNE, 1, key, group, keep, String(idleMs)) as string[];
}

// Deletes the consumer only if nothing is pending to it, checked on the server.
const LEAVE = `
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then return 0 end
for _, c in ipairs(consumers) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] == ARGV[2] then
    if f['pending'] ~= 0 then return 0 end
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
    return 1
  end
end
return 0
`;

/**
 * Deletes `consumer` from the group when nothing is pending to it: a process
 * that ends cleanly leaves, so `status` and `reset` do not take it for a
 * live one (its pending entries, if any, keep it there for others to claim).
 */
export async function leaveGroup(
  redis: Redis,
  key: string,
  group: string,
  consumer: string,
): Promise<boolean> {
  return await redis.eval(LEAVE, 1, key, group, consumer) === 1;
}

async function pruneStale(run: DurableStepRun, key: string, idleMs: number): Promise<void> {
  const gone = await pruneConsumers(run.redis, key, run.step.id, run.consumer, idleMs);
  if (gone.length > 0) {
    run.log.info(
      `${run.keys.flow}/${run.step.id}: removed ${gone.length} consumers idle over ` +
        `${Math.round(idleMs / 1000)}s with nothing pending: ${gone.join(", ")}`,
    );
  }
}

type Pending = [id: string, consumer: string, idle: number, deliveries: number];

/**
 * "stage X", or for a fused step the stages it runs: which of them a dying
 * process was in is not known, and the dead letter names the step's first.
 */
function stepName(step: DurableStepRun["step"]): string {
  const ids = step.stages.map((s) => s.ctx.stage);
  return ids.length === 1 ? `stage ${ids[0]}` : `fused step ${ids.join(" + ")}`;
}

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

/**
 * Dead-letters the worn entries that hold one item (or did not parse), each
 * in one idempotent commit, and returns the ids of those that hold more:
 * they are claimed and split instead (redis_edge.ts), so that only the
 * item that stops its processes goes to dead letters, not its entry-mates.
 */
async function deadLetterEntries(
  run: DurableStepRun,
  lane: Lane,
  over: Pending[],
): Promise<string[]> {
  const { keys, step } = run;
  const key = keys.input(step.id, lane);
  const split: string[] = [];
  for (const [id, consumer, , deliveries] of over) {
    const [found] = await run.redis.xrange(key, id, id);
    if (!found) {
      await deadLetterLost(run, lane, [{ id, deliveries }]);
      continue;
    }
    const letters: DeadLetter[] = [];
    const entry = decodeEntry(found[0], found[1]);
    // Items a window's batches committed before the crash are done: only
    // the rest is split, or dead-lettered.
    const upToField = keys.upToField(step.id, lane, id);
    const upTo = Number(await run.redis.hget(keys.tries, upToField) ?? 0);
    const rest = entry.items?.slice(upTo);
    if (rest && rest.length > 1) {
      split.push(id);
      continue;
    }
    // Taken first, if still idle: the decision above is a snapshot, and
    // another process's claim loop may have claimed the entry since (one
    // try short, in its eyes) and be running it now. Claimed here, idle
    // starts again, so no one claims it before the letter is committed.
    const mine = await run.redis.xclaim(
      key,
      step.id,
      run.consumer,
      run.options.claimAfter,
      id,
      "JUSTID",
    );
    if (mine.length === 0) continue;
    const tryField = keys.tryField(step.id, lane, id);
    const tries = Number(await run.redis.hget(keys.tries, tryField) ?? 0);
    const reason = tries === 0
      // maxDeliveries 1: never run alone, and the crash may have been another item's.
      ? `delivered ${deliveries} ${deliveries === 1 ? "time" : "times"} and never ` +
        `acknowledged: the process it was delivered to stopped before finishing it, as a ` +
        `crash, an out-of-memory kill or a frozen event loop does, in ${stepName(step)} (last ` +
        `to ${consumer}), maybe on another item, and maxDeliveries is ${run.maxDeliveries}, ` +
        `so it is not delivered again`
      : `delivered ${deliveries} times and never acknowledged: ` +
        `every process that ran it alone (${tries} times) stopped before finishing it, ` +
        `as a crash, an out-of-memory kill or a frozen event loop does, in ${stepName(step)} ` +
        `(last to ${consumer})`;
    if (rest) {
      for (const item of rest) {
        letters.push({ stage: step.id, reason, attempts: deliveries, item });
      }
    } else letters.push(unparsable(step.id, entry));
    const gone = await commitOnce(run.redis, {
      input: key,
      group: step.id,
      dlq: keys.dlq,
      tries: keys.tries,
    }, {
      entries: [entry],
      bodies: [],
      letters,
      tryField,
      consumer: run.consumer,
      cut: upTo > 0 ? { entries: [{ id, field: upToField, upTo }] } : undefined,
    });
    if (gone.length > 0) continue;
    run.log.warn(
      `${keys.flow}/${step.id}: entry ${id} went to dead letters after ${deliveries} deliveries`,
    );
    // Counted in as well as dead: this run handed them to dead letters.
    for (const stage of step.stages) {
      if (stage.ctx.stage !== step.id) continue;
      stage.stats.received += letters.length;
      stage.stats.failed += letters.length;
    }
  }
  return split;
}

/**
 * Trims the step's input streams below what its group has read and
 * acknowledged: below the oldest pending entry, or past the last delivered
 * one when nothing is pending. An unread or unacknowledged entry is never
 * trimmed.
 */
export async function trimLoop(
  run: DurableStepRun,
  refused?: (error: RedisRefusedError) => void,
): Promise<void> {
  const { keys, step, stop } = run;
  while (!stop.aborted) {
    await sleep(2000, stop);
    for (const lane of LANES) {
      try {
        await trimStream(run.redis, keys.input(step.id, lane), step.id);
      } catch (error) {
        // Redis lost the flow's streams (it restarted without persistence): the step's reads
        // meet that too and end the flow saying so; a warning here every 2 s would bury it.
        if (stop.aborted || isLostFlow(error)) return;
        // Untrimmed, the streams would grow for as long as the flow runs.
        if (isNoPermission(error)) {
          return refused?.(new RedisRefusedError("the trim", error, who(run)));
        }
        run.log.warn(`${keys.flow}/${step.id}: trim failed`, { error: errorMessage(error) });
      }
    }
  }
}

// Reads the group's state and trims in one step on the server: were they
// two round trips, entries delivered between them (with nothing pending
// before) would lie below the new last-delivered-id and be trimmed while
// pending, and a crash of their holder would then lose them.
const TRIM = `
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
local threshold = pending[2]
if pending[1] == 0 then
  local last = '0-0'
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    if f['name'] == ARGV[1] then last = f['last-delivered-id'] end
  end
  if last == '0-0' then return 0 end
  -- the id just after last: its sequence plus one, as digits (it can pass 2^53)
  local ms, seq = string.match(last, '^(%d+)-(%d+)$')
  local i = #seq
  while i > 0 and seq:sub(i, i) == '9' do i = i - 1 end
  if i == 0 then seq = '1' .. string.rep('0', #seq)
  else seq = seq:sub(1, i - 1) .. string.char(seq:byte(i) + 1) .. string.rep('0', #seq - i) end
  threshold = ms .. '-' .. seq
end
return redis.call('XTRIM', KEYS[1], 'MINID', threshold)
`;

/**
 * Trims one stream below what its group has acknowledged (see trimLoop),
 * atomically; returns entries removed.
 */
export async function trimStream(redis: Redis, key: string, group: string): Promise<number> {
  return await redis.eval(TRIM, 1, key, group) as number;
}
