import type { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import { sleep } from "../backoff.ts";
import { type DurableOptions, isPolling } from "../flow.ts";
import { type Logger, withContext } from "../log.ts";
import { pumpSource, type ScrapeSource, type SourceOutlet } from "../source_pump.ts";
import { errorMessage, FlowEndingError } from "../errors.ts";
import { hash128 } from "../hash.ts";
import { SourceStats } from "../stats.ts";
import { type EncodedEntry, encodeEntries } from "./codec.ts";
import { deadLetterFields, unencodableLetter } from "./redis_dead_letters.ts";
import type { FlowKeys } from "./keys.ts";
import { entrySize } from "./redis_edge.ts";
import { backlog } from "./redis_info.ts";
import { BacklogGauge } from "./backlog_gauge.ts";
import { untilRedis } from "./until_redis.ts";
import { untilAborted } from "../until_aborted.ts";
import type { WindowOptions } from "../window.ts";

/**
 * Appends a source's entries and its new position, but only while the
 * caller still holds the lease: a process that paused past its lease (a GC
 * stall, a network split) finds the lease moved and cannot emit behind the
 * new holder's back. The lease value carries the fencing token. Each send
 * of a lease is numbered (ARGV[4], "<holder>#<n>", kept in KEYS[5]), so a
 * send re-sent after its reply was lost appends nothing twice; and each send
 * names the one before it (ARGV[5], empty for a lease's first), so a send
 * that finds its predecessor missing appends nothing: Redis came back from a
 * crash without its last writes (`appendfsync everysec`), those items are
 * gone with the position saved beside them, and the source must go back to
 * the position Redis still has instead of going on from its own.
 *
 * The send's number is written last: Redis 7.0 can come back from a crash
 * with only the first writes of a script applied (a truncated append-only
 * file whose cut transaction it keeps, then replays at the next restart),
 * and a number written before its entries would make the send's retry a
 * no-op that loses them; written last, such a retry sends them again, and
 * a copy is what the flow can afford (it dedupes), a loss is not. A claimed
 * tick is stored after the number, for the same reason: stored alone, the
 * claim's retry would be refused and the tick never polled.
 *
 * A send may also claim a cron tick (ARGV[6], ms; empty for none) before
 * the source is polled for it: the tick is stored beside the position, and a
 * tick at or before the stored one is refused (returns 2), so no tick is
 * polled twice, whichever process holds the lease.
 *
 * ARGV[7] is how many dead letters follow (10 fields each, appended to
 * KEYS[7]), then the entries as (body, n) pairs: a source's item JSON
 * cannot hold is dead-lettered in the same script that moves the source
 * past it, so it is neither lost nor sent again.
 */
/**
 * Gives back a claimed cron tick (KEYS[2]) whose poll a stop cut short:
 * the tick before it (ARGV[3]) is stored again, while this
 * process still holds the lease (KEYS[1] = ARGV[1]) and the tick stored is
 * still the one it claimed (ARGV[2]).
 */
const UNCLAIM = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
return 1
`;

const EMIT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('LOSTLEASE lease lost') end
local last = redis.call('GET', KEYS[5])
if last == ARGV[4] then return 0 end
if ARGV[5] ~= '' and last ~= ARGV[5] then
  return redis.error_reply('LOSTSENDS sends of this lease are missing')
end
if ARGV[6] ~= '' then
  local polled = redis.call('GET', KEYS[6])
  if polled and tonumber(polled) >= tonumber(ARGV[6]) then
    redis.call('SET', KEYS[5], ARGV[4])
    return 2
  end
end
local letters = tonumber(ARGV[7])
for i = 1, letters do
  local j = 7 + (i - 1) * 10
  redis.call('XADD', KEYS[7], '*', ARGV[j + 1], ARGV[j + 2], ARGV[j + 3], ARGV[j + 4],
    ARGV[j + 5], ARGV[j + 6], ARGV[j + 7], ARGV[j + 8], ARGV[j + 9], ARGV[j + 10])
end
for i = 8 + letters * 10, #ARGV, 2 do
  redis.call('XADD', KEYS[2], '*', 'b', ARGV[i], 'n', ARGV[i + 1])
end
if ARGV[2] ~= '' then redis.call('SET', KEYS[3], ARGV[2]) end
if ARGV[3] ~= '0' then redis.call('SET', KEYS[4], ARGV[3]) end
redis.call('SET', KEYS[5], ARGV[4])
if ARGV[6] ~= '' then redis.call('SET', KEYS[6], ARGV[6]) end
return 1`;

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** Most entries, and most bytes of them, one EMIT appends: a part of a source's batch. */
const PART_ENTRIES = 64;
const PART_BYTES = 4 * 1024 * 1024;

/** The entries from `at` that one EMIT appends: PART_ENTRIES at most, PART_BYTES give or take one. */
function partOf<E extends { body: { length: number } }>(entries: readonly E[], at: number): E[] {
  let end = at, bytes = 0;
  while (end < entries.length && end - at < PART_ENTRIES && (end === at || bytes < PART_BYTES)) {
    bytes += entries[end++].body.length;
  }
  return entries.slice(at, end);
}

/**
 * `<host>:<pid>` of the process a lease's value names: the value is its
 * consumer (`<host>:<pid>:<random>`) and its fencing token after a `#`.
 */
export function leaseProcess(holder: string): string {
  return holder.split(":").slice(0, 2).join(":");
}

export interface SourceLeasesRun {
  sources: readonly ScrapeSource[];
  redis: Redis;
  keys: FlowKeys;
  options: DurableOptions;
  /** Stage id of the first step: its input streams are where sources emit. */
  first: string;
  /** The first step's window: entries are sized to fill it whole. */
  firstWindow?: WindowOptions;
  consumer: string;
  /** A millrace command for the flow as its person types it, for a line that suggests one (`reset`). */
  command: (args: string) => string;
  log: Logger;
  stop: AbortSignal;
  kill: AbortSignal;
}

/**
 * The sources of a durable flow, each run by the one source pump
 * (source_pump.ts) in one process at a time, whichever holds its lease;
 * the others wait to take over if it dies.
 * Batches and the source's position are written together, so a restarted or
 * failed-over source resumes where the last batch left off, and a one-shot
 * source that finished is not read again.
 */
export class SourceLeases {
  readonly stats: SourceStats[];
  readonly #entryItems: number;
  /** The first step's backlog, shared by the sources this process reads (see #room). */
  readonly #first: BacklogGauge;

  constructor(readonly run: SourceLeasesRun) {
    this.#entryItems = entrySize(run.options.entryItems, run.firstWindow);
    this.#first = new BacklogGauge(() => backlog(run.redis, run.keys, run.first));
    this.stats = run.sources.map((s) => new SourceStats(s.entry.name, s.entry.kind));
  }

  async start(): Promise<void> {
    await Promise.all(this.run.sources.map((s, i) => this.#source(s, this.stats[i])));
  }

  /**
   * One source's task: it lasts until the flow stops (a drained flow stops
   * itself), not until the source is done. A one-shot source's done mark
   * can vanish after it was written, when Redis comes back from a crash
   * without the last writes of its append-only file (`appendfsync
   * everysec`); whoever saw it done then runs it again from its saved
   * position, or the flow would wait for that mark for ever.
   */
  async #source(s: ScrapeSource, stats: SourceStats): Promise<void> {
    const { keys, stop, kill } = this.run;
    const name = s.entry.name;
    // Its lines name the source in a structured log, as a memory flow's do.
    const log = withContext(this.run.log, { source: name });
    const leaseMs = Math.max(1000, this.run.options.claimAfter);
    const oneShot = !isPolling(s.entry);
    const who = `${keys.flow}: source ${name}`;
    const anyStop = AbortSignal.any([stop, kill]);
    const retry = <T>(call: () => Promise<T>, signal = anyStop) =>
      untilRedis(call, { who, what: "a Redis call", log, signal });
    /** Whether this process has seen the source done (its mark, or its own last batch). */
    let seenDone = false;
    try {
      while (!stop.aborted) {
        let vanished = false;
        if (oneShot) {
          const done = await retry(() => this.run.redis.get(keys.done(name)));
          if (done !== null) {
            if (!seenDone && done !== "1" && done !== settingsOf(s.entry)) {
              // A path or a count edited after the source was done was read by no one, unsaid.
              log.warn(
                `${who}: its settings changed since it was marked done, and a done source is ` +
                  `not read again: \`${
                    this.run.command("reset")
                  }\` starts the flow over, or a new name for the source reads it as new`,
              );
            }
            if (!seenDone) {
              // Said so that a rerun after a stop does not read as "nothing to do".
              log.info(
                `${who} is done: it emitted everything, in an earlier run or another process; ` +
                  `this run finishes what of it waits in Redis, if anything ` +
                  `(\`${this.run.command("reset")}\` starts the flow over)`,
              );
            }
            seenDone = true;
            await sleep(1000, stop);
            continue;
          }
          vanished = seenDone;
        }
        const holder = await retry(() => this.#acquire(name, leaseMs));
        if (!holder) {
          await sleep(Math.min(leaseMs / 3, 1000), stop);
          continue;
        }
        const lost = new AbortController();
        const renewal = this.#renew(name, holder, leaseMs, lost);
        try {
          if (await this.#emit(s, stats, holder, lost.signal, vanished, retry)) seenDone = true;
        } finally {
          lost.abort();
          await renewal;
          // Past a stop, too: the next holder should not wait out the lease.
          await retry(() => this.run.redis.eval(RELEASE, 1, keys.lease(name), holder), kill);
        }
      }
    } catch (error) {
      if (kill.aborted) throw error;
      if (stop.aborted) return; // stopped while Redis was away
      // One that ends the run is said by the run's last line.
      if (!(error instanceof FlowEndingError)) log.error(`${who}: ended: ${errorMessage(error)}`);
      throw error;
    }
  }

  /** Takes the lease if free; returns the holder value (consumer and fencing token). */
  async #acquire(source: string, leaseMs: number): Promise<string | undefined> {
    const { redis, keys, consumer } = this.run;
    if (await redis.exists(keys.lease(source))) return undefined;
    const token = await redis.incr(keys.fence(source));
    const holder = `${consumer}#${token}`;
    const ok = await redis.set(keys.lease(source), holder, "PX", leaseMs, "NX");
    return ok === "OK" ? holder : undefined;
  }

  async #renew(source: string, holder: string, leaseMs: number, lost: AbortController) {
    const { redis, keys, stop } = this.run;
    while (!lost.signal.aborted) {
      await sleep(leaseMs / 3, lost.signal);
      if (lost.signal.aborted) return;
      try {
        // Not waited for past the lease's end: a renewal queued while Redis
        // is away would keep the source (and a kill) waiting until it is back.
        const renew = redis.eval(RENEW, 1, keys.lease(source), holder, leaseMs);
        if (await untilAborted(renew, lost.signal) !== 1) {
          withContext(this.run.log, { source }).warn(
            `${keys.flow}: source ${source}: lease lost, stepping back`,
          );
          lost.abort();
        }
      } catch {
        if (stop.aborted) return; // renewals resume when Redis answers again
      }
    }
  }

  /**
   * Backpressure on the first edge: while the first step's backlog is above
   * maxBacklog, the source is not read further (its generator is simply not
   * resumed), so a fast source cannot fill Redis ahead of a slow flow
   * (BacklogGauge: asked every 100 ms). When Redis does not answer, the
   * send that follows waits for it instead.
   */
  async #room(signal: AbortSignal): Promise<void> {
    const { options } = this.run;
    while (!signal.aborted) {
      let entries = 0;
      try {
        entries = await untilAborted(this.#first.entries(), signal);
      } catch {
        return;
      }
      // Entries of the size this source writes (entrySize), not entryItems: before a window
      // they are smaller, and the source paused short of maxBacklog (at 86% before a 256 window).
      if (entries * this.#entryItems <= options.maxBacklog) return;
      await sleep(100, signal);
    }
  }

  /**
   * Reads the source while the lease holds. Returns true when a one-shot
   * source has emitted everything (and said so in Redis).
   */
  async #emit(
    s: ScrapeSource,
    stats: SourceStats,
    holder: string,
    lost: AbortSignal,
    vanished: boolean,
    retry: <T>(call: () => Promise<T>) => Promise<T>,
  ): Promise<boolean> {
    const { entry, source } = s;
    const { redis, keys, options, stop, kill, first } = this.run;
    const log = withContext(this.run.log, { source: entry.name });
    const saved = await retry(() => redis.get(keys.position(entry.name)));
    // Only this holder writes either key, so reading them one after the other is safe.
    const tick = entry.cron === undefined
      ? null
      : await retry(() => redis.get(keys.tick(entry.name)));
    if (vanished) {
      log.warn(
        `${keys.flow}: the done mark of source ${entry.name} vanished (Redis lost writes?); ` +
          `resuming from position ${saved ?? "none (the start)"}`,
      );
    }
    source.resume?.(saved === null ? undefined : JSON.parse(saved));
    const lane = entry.priority === "high" ? "high" : "normal";
    const signal = AbortSignal.any([stop, lost]);
    const emitKeys = [
      keys.lease(entry.name),
      keys.input(first, lane),
      keys.position(entry.name),
      keys.done(entry.name),
      keys.emitted(entry.name),
      keys.tick(entry.name),
      keys.dlq,
    ];
    let sends = 0;
    /** One EMIT: entries (and letters) appended, and with the last part the checkpoint. */
    const sendPart = (
      entries: readonly EncodedEntry[],
      letters: readonly string[],
      checkpoint: unknown,
      done: boolean,
      tick?: number,
    ): Promise<unknown> => {
      const args: (string | Buffer)[] = [
        holder,
        checkpoint === undefined ? "" : JSON.stringify(checkpoint),
        done ? settingsOf(entry) : "0",
        `${holder}#${++sends}`,
        sends === 1 ? "" : `${holder}#${sends - 1}`,
        tick === undefined ? "" : String(tick),
        String(letters.length / 10),
        ...letters,
      ];
      for (const e of entries) args.push(e.body, String(e.n));
      return untilRedis(
        () => redis.eval(EMIT, emitKeys.length, ...emitKeys, ...args),
        {
          who: `${keys.flow}: source ${entry.name}`,
          what: tick === undefined ? "emit" : "tick claim",
          log,
          signal: kill,
          isRetryable: (error) => !isLostLease(error) && !isLostSends(error),
        },
      );
    };
    const send = async (
      items: Parameters<SourceOutlet["emit"]>[0],
      checkpoint: unknown,
      done: boolean,
      tick?: number,
    ): Promise<unknown> => {
      // An item JSON cannot hold (a BigInt, a cycle: what a source
      // registered in code may make) cannot go to Redis: it is
      // dead-lettered under the source's name, and the rest go on, as a
      // sink that cannot write it would do in memory.
      const letters: string[] = [];
      const entries = encodeEntries(items, this.#entryItems, options.entryBytes, (item, error) => {
        letters.push(...deadLetterFields(unencodableLetter(entry.name, item, error)));
      });
      stats.deadLettered += letters.length / 10;
      // A batch as large as a whole file (a json source's) goes in parts, each waiting for
      // room: as one script it held Redis for seconds (5 s for 1M items) and put all of it on
      // the edge past maxBacklog. The checkpoint rides with the last part, so a crash between
      // parts makes the source send the batch again: its earlier parts twice, none lost.
      let sent: unknown;
      for (let at = 0; at === 0 || at < entries.length;) {
        const part = partOf(entries, at);
        const last = at + part.length >= entries.length;
        // Between parts too when the batch is the source's last (a one-shot file).
        if (items.length > 0 && (!done || at > 0)) await this.#room(signal);
        sent = await sendPart(
          part,
          at === 0 ? letters : [],
          last ? checkpoint : undefined,
          last && done,
          tick,
        );
        this.#first.appended(part.length);
        at += part.length;
        if (part.length === 0) break;
      }
      return sent;
    };
    const outlet: SourceOutlet = {
      emit: async (items, checkpoint, done) => {
        await send(items, checkpoint, done);
      },
      // 0 (a re-sent claim whose reply was lost) is ours as much as 1.
      claim: async (at, checkpoint) => (await send([], checkpoint, false, at)) !== 2,
      unclaim: async (at, before) => {
        await untilRedis(
          () =>
            redis.eval(
              UNCLAIM,
              2,
              keys.lease(entry.name),
              keys.tick(entry.name),
              holder,
              String(at),
              String(before),
            ),
          {
            who: `${keys.flow}: source ${entry.name}`,
            what: "giving back a tick",
            log,
            signal: kill,
          },
        );
      },
    };
    const lastTick = tick === null ? undefined : Number(tick);
    try {
      return await pumpSource(s, stats, outlet, {
        signal,
        log,
        flow: keys.flow,
        lastTick,
      });
    } catch (error) {
      kill.throwIfAborted();
      if (lost.aborted || isLostLease(error)) return false;
      if (isLostSends(error)) {
        log.warn(
          `${keys.flow}: source ${entry.name}: Redis lost its last sends (back from a crash ` +
            `without its last writes?); going back to the position Redis kept`,
        );
        return false;
      }
      throw error;
    }
  }
}

function isLostLease(error: unknown): boolean {
  return String((error as Error)?.message).includes("LOSTLEASE");
}

function isLostSends(error: unknown): boolean {
  return String((error as Error)?.message).includes("LOSTSENDS");
}

/**
 * What a one-shot source's done mark holds: a hash of its kind and config,
 * so a run after the file changed them can say the source will not be read
 * again (a mark of "1" is from before marks held it).
 */
function settingsOf(entry: { kind: string; config: unknown }): string {
  return hash128(JSON.stringify([entry.kind, entry.config]));
}
