import { Cron } from "croner";

/**
 * When a polling source is read: every `every` ms after the last read ends
 * (`every:`), or at the ticks of a cron expression (`cron:`, in a time zone),
 * each poll a random delay up to `jitter` after it is due, so many flows
 * started together do not all knock on one host in the same second.
 *
 * Cron ticks are absolute times, so a durable flow can store the last tick it
 * polled and a process taking over the source knows which ticks are done
 * (engine/redis/source_lease.ts); `every:` counts from the last read and has
 * nothing to store.
 */

/** What a schedule reads of the world: injected in tests, so tick times can be asserted. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** A number in [0, 1): how much of the jitter this poll waits. */
  random(): number;
}

export const systemClock: Clock = { now: () => Date.now(), random: () => Math.random() };

/** A parsed cron expression in its time zone. */
export interface CronSchedule {
  readonly expression: string;
  readonly tz: string;
  /** The first tick strictly after `after` (ms); undefined when the expression has no more. */
  next(after: number): number | undefined;
  /** The latest tick at or before `at` (ms); undefined when there is none. */
  latest(at: number): number | undefined;
}

/**
 * Parses a cron expression: five fields (minute hour day-of-month month
 * day-of-week) or six with seconds first, read in the IANA time zone `tz`.
 * Throws an Error whose message says which field is wrong, fit to follow
 * the field's path in a flow-file error.
 */
export function parseCron(expression: string, tz = "UTC"): CronSchedule {
  checkTimeZone(tz);
  const fields = expression.trim().split(/\s+/).filter(Boolean);
  if (fields.length !== 5 && fields.length !== 6) {
    throw new Error(
      `expected a cron expression of 5 fields (minute hour day month weekday, e.g. "*/5 * * * *") ` +
        `or 6 with seconds first (e.g. "*/30 * * * * *"), got ${fields.length} field(s) in ` +
        JSON.stringify(expression),
    );
  }
  const outside = outOfRange(fields);
  if (outside) throw new Error(`invalid cron expression ${JSON.stringify(expression)}: ${outside}`);
  let cron: Cron;
  try {
    cron = new Cron(expression, { timezone: tz, paused: true });
  } catch (error) {
    const why = String((error as Error).message ?? error).replace(/^CronPattern:\s*/, "")
      // croner counts months from 0 in its messages: say the month as written.
      .replace(
        /(Invalid value for (?:month|day): )(-?\d+)/,
        (_, text, n) => text + (Number(n) + 1),
      );
    throw new Error(`invalid cron expression ${JSON.stringify(expression)}: ${why}`);
  }
  if (cron.nextRun(new Date(0)) === null) {
    throw new Error(`cron expression ${JSON.stringify(expression)} never fires`);
  }
  return {
    expression,
    tz,
    next: (after) => cron.nextRun(new Date(after))?.getTime(),
    latest(at) {
      // croner's previous runs are strictly before a whole second: ask from the next one.
      const from = Math.floor(at / 1000) * 1000 + 1000;
      return cron.previousRuns(1, new Date(from))[0]?.getTime();
    },
  };
}

/** Each field's name and the values it takes, in the order of a five-field expression. */
const FIELDS: readonly [string, number, number][] = [
  ["minute", 0, 59],
  ["hour", 0, 23],
  ["day", 1, 31],
  ["month", 1, 12],
  ["weekday", 0, 7],
];

/**
 * The first number of a field outside what the field takes, said: croner
 * lets a range run past its field's end (`1-60/5` minutes), and says a day
 * of 0 as -1. Names (JAN, MON) and croner's L, W, # and ? are its to check.
 */
function outOfRange(fields: readonly string[]): string | undefined {
  const named = fields.length === 6 ? [["second", 0, 59] as const, ...FIELDS] : FIELDS;
  for (const [i, field] of fields.entries()) {
    const [name, low, high] = named[i];
    for (const part of field.split(",")) {
      for (const token of part.split("/")[0].split("-")) {
        if (!/^\d+$/.test(token)) continue;
        const n = Number(token);
        if (n < low || n > high) return `${name} ${n} is out of range ${low}-${high}`;
      }
    }
  }
  return undefined;
}

/** Refuses a time zone name the runtime does not know, naming it. */
export function checkTimeZone(tz: string): void {
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz });
  } catch {
    throw new Error(
      `unknown time zone ${JSON.stringify(tz)}; give an IANA name such as UTC or Europe/Berlin`,
    );
  }
}

/** The next poll of a cron source: the tick it stands for, and when to start it. */
export interface CronPoll {
  /** The tick (ms) this poll is for: what a durable flow stores as polled. */
  tick: number;
  /** When the poll starts (ms): the tick, or now for a missed one, plus its jitter. */
  at: number;
  /** The tick was missed (passed while no one polled): it is polled at once. */
  late: boolean;
}

/**
 * Which tick to poll next and when, given the last tick polled (undefined:
 * none yet) and the time now. Ticks that passed since the last one polled
 * (no process held the source, or a poll outlasted the interval) are caught
 * up with one poll for the latest of them, not one per tick: a source reads
 * what is there now, so polling it five times in a row yields nothing more.
 * A source never polled waits for its first tick, as cron does. Returns
 * undefined when the expression fires no more.
 */
export function nextCronPoll(
  schedule: CronSchedule,
  last: number | undefined,
  clock: Clock,
  jitter = 0,
): CronPoll | undefined {
  const now = clock.now();
  const delay = jitter > 0 ? Math.floor(clock.random() * jitter) : 0;
  if (last !== undefined) {
    const missed = schedule.latest(now);
    if (missed !== undefined && missed > last) return { tick: missed, at: now + delay, late: true };
  }
  const tick = schedule.next(Math.max(now, last ?? now));
  return tick === undefined ? undefined : { tick, at: tick + delay, late: false };
}

/** How long to wait after a read of an `every:` source ends: the interval plus its jitter. */
export function everyDelay(every: number, clock: Clock, jitter = 0): number {
  return every + (jitter > 0 ? Math.floor(clock.random() * jitter) : 0);
}
