import { nextTurn, sleep } from "./backoff.ts";
import { isPolling, type SourceEntry } from "./flow.ts";
import { type Envelope, envelope, type RawItem } from "./item.ts";
import { type Logger, withContext } from "./log.ts";
import type { Source } from "./source.ts";
import { errorMessage, thrownEnding } from "./errors.ts";
import { maskUrlsIn } from "./mask_url.ts";
import { endSourceSpan, startSourceSpan, traceOf, withSpan } from "./trace.ts";
import type { SourceStats } from "./stats.ts";
import { type Clock, everyDelay, nextCronPoll, parseCron, systemClock } from "./schedule.ts";

/** A source of the flow with its place in the flow file. */
export interface ScrapeSource {
  /** How the flow declares it: name, schedule, priority. */
  entry: SourceEntry;
  /** The source itself. */
  source: Source;
}

/**
 * Where a source's batches go: the first edge. In memory, its channel; over
 * Redis, one script that appends the batch and stores the source's
 * position, only while this process holds the source's lease.
 */
export interface SourceOutlet {
  /**
   * Appends a batch with the source's position after it; `done` (with no
   * items) says a one-shot source has emitted everything. An outlet that
   * takes a batch in parts (a channel smaller than the batch) says each
   * part through `accepted` as it goes in, so the source's count never
   * trails what its stages have received, also when a kill cuts the send
   * short; what it does not say is counted once the promise resolves.
   */
  emit(
    items: Envelope<RawItem>[],
    checkpoint: unknown,
    done: boolean,
    accepted?: (n: number) => void,
  ): Promise<void>;
  /**
   * Records that the cron tick `tick` (ms) is being polled, before the
   * poll; false when it was polled already (another process did), so the
   * poll is skipped. Over Redis it is written with the source's position in
   * one script, and only while this process holds the lease: each tick is
   * polled by one process once. Absent in memory, where one loop sees every tick.
   */
  claim?(tick: number, checkpoint: unknown): Promise<boolean>;
  /**
   * Gives back a claimed tick whose poll a stop cut short, the tick before
   * it (`before`) stored again, so the next run polls
   * it: a deploy that lands mid-read of a daily tick would delay its items
   * a day. A crash gives nothing back (the poll is not repeated then).
   */
  unclaim?(tick: number, before: number): Promise<void>;
}

/** The longest delay setTimeout keeps (2^31 - 1 ms); a longer one fires at once. */
const MAX_TIMER = 2 ** 31 - 1;

/**
 * A source that has emitted for this long without the event loop getting a
 * turn yields one (nextTurn), so timers and signals run while a flow that
 * does no I/O races through memory: a stop() or a test's timeout set on a
 * timer, the live table, Ctrl-C. A turn costs about 12 µs, so once per
 * 10 ms is lost in the noise.
 */
const TURN_MS = 10;

/** A first cron tick further off than this is said at start (a second's wait is not news). */
const FIRST_TICK_SAID_MS = 10_000;

/** What `pumpSource` needs besides the source and its outlet. */
export interface PumpOptions {
  /** Stops the pump between reads, and aborts a read under way. */
  signal: AbortSignal;
  /** Where failed polls and schedule notes go. */
  log: Logger;
  /** The flow name, for log lines. */
  flow: string;
  /** The last cron tick polled, as stored by an earlier holder of the source. */
  lastTick?: number;
  /** Time and randomness for ticks and jitter; tests inject their own. */
  clock?: Clock;
}

/**
 * The Scraper's loop for one source, the same in every mode: reads it,
 * wraps what it yields in envelopes (stable id, fresh event) and emits
 * them; polls again after `every` or at the next `cron` tick (see
 * schedule.ts), each poll up to `jitter` late, or, for a one-shot source,
 * emits `done`. Polling lives here, not in sources: a source only knows how
 * to read once.
 * A failing read is counted and logged, and a polling source tries again
 * at its next tick; a one-shot source that cannot be read is over (said as
 * done, or the flow would wait for it for ever). An error of the outlet
 * (a lost lease, a hard stop) ends the pump.
 *
 * Returns true once a one-shot source is done; false when `signal` stopped it.
 */
export async function pumpSource(
  { entry, source }: ScrapeSource,
  stats: SourceStats,
  outlet: SourceOutlet,
  opts: PumpOptions,
): Promise<boolean> {
  const { signal } = opts;
  const log = withContext(opts.log, { source: entry.name });
  const clock = opts.clock ?? systemClock;
  let turnAt = performance.now();
  /** Reads the source once; true when a stop cut the read short (it neither ended nor failed). */
  const read = async (): Promise<boolean> => {
    stats.reads++;
    let polled = 0;
    let ended = false;
    let failure: string | undefined;
    stats.lastRead = Date.now();
    stats.reading = true;
    const span = startSourceSpan(opts.flow, entry.name, entry.kind);
    const trace = traceOf(span);
    const reading = withSpan(span, () => source.read(signal)[Symbol.asyncIterator]());
    try {
      for (;;) {
        let next: IteratorResult<RawItem[]>;
        try {
          next = await withSpan(span, () => reading.next());
        } catch (error) {
          // Not this read's fault, and no later read would fare better (a right Redis refuses
          // the politeness buckets): the run ends with it, rather than failing every poll.
          if (!signal.aborted && thrownEnding(error)) throw error;
          if (!signal.aborted) {
            stats.errors++;
            stats.failing = true;
            // Into the report, the summary and the log: a URL's password must not go with it.
            stats.lastError = failure = maskUrlsIn(errorMessage(error));
            // In the read's span: an exported log record is tied to the span it is written in.
            const said = `${opts.flow}: source ${entry.name} failed: ${stats.lastError}`;
            withSpan(span, () => log.error(said));
          }
          break;
        }
        if (next.done) {
          ended = true;
          break;
        }
        const raws = next.value;
        const now = Date.now();
        const batch: Envelope<RawItem>[] = new Array(raws.length);
        for (let i = 0; i < raws.length; i++) batch[i] = envelope(raws[i], entry.name, now);
        if (trace !== undefined) { for (const item of batch) item.trace = trace; }
        let counted = 0;
        await outlet.emit(batch, source.checkpoint?.(), false, (n) => {
          counted += n;
          stats.emitted += n;
        });
        stats.emitted += batch.length - counted;
        polled += batch.length;
        if (performance.now() - turnAt >= TURN_MS) {
          await nextTurn();
          turnAt = performance.now();
        }
        if (signal.aborted) break;
      }
      if (failure === undefined && !signal.aborted) {
        stats.lastOk = Date.now();
        stats.failing = false;
      }
    } finally {
      stats.reading = false;
      await reading.return?.()?.catch(() => {});
      endSourceSpan(span, polled, failure);
    }
    log.debug?.(`${opts.flow}: source ${entry.name} read ${polled} items`);
    return !ended && failure === undefined && signal.aborted;
  };

  if (entry.cron !== undefined) {
    const schedule = parseCron(entry.cron, entry.tz);
    let last = opts.lastTick;
    let first = true;
    while (!signal.aborted) {
      const poll = nextCronPoll(schedule, last, clock, entry.jitter);
      if (!poll) {
        log.warn(`${opts.flow}: source ${entry.name}: cron ${entry.cron} fires no more`);
        await sleep(MAX_TIMER, signal);
        continue;
      }
      // A cron source waits for its first tick, as cron does: say when, or it looks idle.
      if (first && poll.at - clock.now() >= FIRST_TICK_SAID_MS) {
        log.info(
          `${opts.flow}: source ${entry.name}: first poll at ${new Date(poll.at).toISOString()} ` +
            `(cron ${entry.cron}${entry.tz && entry.tz !== "UTC" ? ` in ${entry.tz}` : ""})`,
        );
      }
      first = false;
      // Timers hold at most ~24.8 days: a yearly tick is waited for in steps.
      while (!signal.aborted && clock.now() < poll.at) {
        await sleep(Math.min(poll.at - clock.now(), MAX_TIMER), signal);
      }
      if (signal.aborted) break;
      // With none stored before it, the schedule's tick before it: stored, it makes the next run
      // take this tick for one missed (none stored reads as a first start, which waits for the
      // next), and `status` shows a time the schedule has.
      const before = last ?? schedule.latest(poll.tick - 1) ?? poll.tick - 1;
      last = poll.tick;
      if (outlet.claim && !(await outlet.claim(poll.tick, source.checkpoint?.()))) continue;
      if (signal.aborted) {
        await outlet.unclaim?.(poll.tick, before);
        break;
      }
      if (poll.late) {
        log.info(
          `${opts.flow}: source ${entry.name}: polling the missed tick ${
            new Date(poll.tick).toISOString()
          } now`,
        );
      }
      if (await read()) await outlet.unclaim?.(poll.tick, before);
    }
    return false;
  }

  while (!signal.aborted) {
    await read();
    if (!isPolling(entry)) {
      if (signal.aborted) return false;
      await outlet.emit([], source.checkpoint?.(), true);
      return true;
    }
    await sleep(everyDelay(entry.every!, clock, entry.jitter), signal);
  }
  return false;
}
