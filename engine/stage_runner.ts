import type { Actor, Outcome, StageContext } from "./actor.ts";
import { backoffDelay, sleep } from "./backoff.ts";
import type { DeadLetter } from "./dead_letters.ts";
import {
  askedWait,
  cutShort,
  endingError,
  errorMessage,
  isAway,
  isOutage,
  isRetryable,
  isServiceFailure,
  PermanentError,
  thrownAt,
} from "./errors.ts";
import { checkEmitted } from "./emitted.ts";
import { maskUrlsIn } from "./mask_url.ts";
import type { Fence } from "./edge.ts";
import { type Envelope, updatesIn } from "./item.ts";
import { MAX_REASONS, OTHER_REASONS, type StageStats } from "./stats.ts";
import { untilAborted } from "./until_aborted.ts";
import type { WindowOptions } from "./window.ts";

type Item = Envelope<unknown>;

/** One stage's actor and what it needs to run a batch through it. */
export interface StageWork {
  actor: Actor<unknown, unknown>;
  ctx: StageContext;
  stats: StageStats;
  retries: number;
  /**
   * Longest one try of a batch may take (ms): past it the try's signal
   * (ctx.signal as handle gets it) is aborted, a warning says so, and the
   * try fails as a PermanentError, so the batch is split at once, each half
   * tried once, down to the item that holds it (waiting out every retry of
   * a hang cost a timeout each). The try's late outputs are not read: a
   * stage that ignores its signal runs on unseen. Absent: no limit.
   */
  batchTimeout?: number;
  /** Backoff base in ms (tests shorten it). */
  backoffBase?: number;
  /** How long a batch waits for a service that is away; default AWAY_MAX_MS (tests shorten it). */
  awayMaxMs?: number;
  /**
   * The stage's own window. A step's window gathers its batches; a stage
   * fused after the first one gets what the stage before it emitted, cut to
   * this window's size and weight (stage_loop.ts).
   */
  window?: WindowOptions;
  /** In a pipelined step (stage_loop.ts), how many of its batches this stage runs at once; default 1. */
  concurrency?: number;
  /** Warnings about the stage's own code said already (said once per stage). */
  said?: Set<string>;
  /** Tries past batchTimeout since the last warning of them, and when that was (see within). */
  timedOut?: { unsaid: number; saidAt: number };
}

/** What a batch became: items to pass on, and items for dead letters. */
export interface BatchResult {
  out: Item[];
  letters: DeadLetter[];
  /** Items dropped on purpose; counted only when some were (for the batch's span). */
  dropped?: number;
  /** Items that kept failing (dead-lettered), and the first one's error (for the span). */
  failed?: number;
  failure?: string;
  /** Some try of the batch or of a piece of it succeeded: its failures are its items'. */
  passed?: boolean;
  /** Items that failed alone for the service's sake (isServiceFailure): see GIVE_UP_ALONE. */
  serviceFailed?: number;
  /** Why the split gave up on the service (see GIVE_UP_ALONE): the pieces left are not tried. */
  givenUp?: string;
}

/**
 * Items of one batch that may fail alone for the service's sake
 * (isServiceFailure: a timeout, a 429 or 5xx), with nothing of the batch
 * passing, before the split stops trying its pieces: a service that fails
 * whatever it is given would otherwise be asked once per piece, 2n - 1
 * calls for n items (about 25 hours for 256 items at a 30 s timeout and 5
 * client retries). Three, not one or two: two bad items side by side fail
 * alone before any good one is tried. Errors that are not the service's
 * (a stage's own code throwing on bad input) never count: three bad items
 * at the head of a batch would otherwise send its good items to dead
 * letters untried.
 */
const GIVE_UP_ALONE = 3;

/**
 * What one attempt of `handle` said. Kept apart from the stage until the
 * attempt returns, so an attempt that throws half-way leaves no trace.
 * Outputs go into an array sized for one output per input, which is what
 * most stages emit: stores into it cost a fraction of growing it by `push`.
 */
class Collector implements Outcome<unknown> {
  #out: Item[];
  #n = 0;
  drops?: string[];
  rejects?: [Item, string, string | undefined][];
  /** The first reason given that was not a non-empty string (see reasonOf). */
  odd?: { reason: unknown };
  constructor(expected: number) {
    this.#out = new Array(expected);
  }
  emit(item: Item): void {
    checkEmitted(item);
    this.#out[this.#n++] = item;
  }
  drop(_item: Item, reason: string): void {
    (this.drops ??= []).push(this.#reason(reason));
  }
  reject(item: Item, reason: string, detail?: string): void {
    const said = detail === undefined ? undefined : this.#reason(detail);
    (this.rejects ??= []).push([item, this.#reason(reason), said]);
  }
  #reason(reason: unknown): string {
    if (typeof reason === "string" && reason !== "") {
      // A stage's own words may quote a URL it was given, password and all, as a thrown
      // message may (those are masked in `failed`).
      return reason.includes(":") ? maskUrlsIn(reason) : reason;
    }
    this.odd ??= { reason };
    return reasonOf(reason);
  }
  /** The emitted items, in order, with no room left over. */
  take(): Item[] {
    if (this.#out.length !== this.#n) this.#out.length = this.#n;
    return this.#out;
  }
}

/**
 * Runs a batch through a stage and counts what happened. A batch that
 * throws is retried with backoff; one that keeps throwing is split in halves
 * until the bad item stands alone and goes to dead letters, so one bad item
 * never stops a flow nor takes its batch-mates with it. Only an abort of the
 * stage's signal escapes, and a FlowEndingError (engine/errors.ts).
 */
export async function processBatch(work: StageWork, batch: Item[]): Promise<BatchResult> {
  return await runBatch(work, batch);
}

/**
 * processBatch without the promise when the actor's `handle` returns none
 * and does not throw: the in-memory hot path. Anything that must wait (an
 * async actor, a retry's backoff) turns the result into a promise.
 */
export function runBatch(
  work: StageWork,
  batch: Item[],
  fence?: Fence,
): BatchResult | Promise<BatchResult> {
  let passed: Item[] | undefined;
  if (work.actor.updates !== true && batch.some(isUpdate)) {
    passed = batch.filter(isUpdate);
    batch = batch.filter((item) => !isUpdate(item));
  }
  work.stats.received += itemsIn(work, batch);
  const result: BatchResult = { out: [], letters: [], passed: false };
  const pending = batch.length > 0
    ? attempt(work, batch, work.retries, result, 0, fence)
    : undefined;
  if (pending) return pending.then(() => finish(work, result, passed));
  return finish(work, result, passed);
}

/** Items of `batch` as `received` counts them: a stage that takes merge updates does not count those. */
function itemsIn(work: StageWork, batch: readonly Item[]): number {
  return batch.length - (work.actor.updates === true ? updatesIn(batch) : 0);
}

function isUpdate(item: Item): boolean {
  return item.update === true;
}

/** Counts the items a batch emitted (merge updates are not items) and appends the updates passed by. */
function finish(work: StageWork, result: BatchResult, passed: Item[] | undefined): BatchResult {
  work.stats.emitted += result.out.length - updatesIn(result.out);
  if (passed) { for (const item of passed) result.out.push(item); }
  return result;
}

/**
 * Try number `tries` of a batch; synchronous as long as `handle` and
 * `fence` are. The fence first leaves out items whose deliveries this
 * process no longer holds (edge.ts), before the first try and every retry.
 */
function attempt(
  work: StageWork,
  batch: Item[],
  retries: number,
  result: BatchResult,
  tries: number,
  fence?: Fence,
  waiting?: Waiting,
): void | Promise<void> {
  if (fence) {
    const held = fence(batch);
    if (held instanceof Promise) {
      return held.then((b) => {
        // Left out: not this stage's any more, so not in flight in it either.
        work.stats.received -= batch.length - b.length;
        return b.length > 0 ? once(work, b, retries, result, tries, fence, waiting) : undefined;
      });
    }
    if (held.length === 0) return;
    batch = held;
  }
  return once(work, batch, retries, result, tries, fence, waiting);
}

/** One try of `handle` on a batch the fence has let through. */
function once(
  work: StageWork,
  batch: Item[],
  retries: number,
  result: BatchResult,
  tries: number,
  fence: Fence | undefined,
  waiting: Waiting | undefined,
): void | Promise<void> {
  const collector = new Collector(batch.length);
  const started = performance.now();
  let pending: unknown;
  // A try with a time limit has a signal of its own, aborted when the limit passes.
  const timed = work.batchTimeout !== undefined ? new AbortController() : undefined;
  try {
    // A copy: a stage that empties or splices its batch must not take the
    // items away from the retry and the split.
    const ctx = timed
      ? { ...work.ctx, signal: AbortSignal.any([work.ctx.signal, timed.signal]) }
      : work.ctx;
    pending = work.actor.handle(batch.slice(), collector, ctx);
  } catch (error) {
    work.stats.busyMs += performance.now() - started;
    return failed(work, batch, retries, result, tries, error, fence, waiting);
  }
  // Only a promise is waited for: a stage (in plain JavaScript) that returns another value is done.
  if (pending !== undefined && typeof (pending as PromiseLike<void>)?.then !== "function") {
    sayOnce(
      work,
      "returned",
      `handle returned ${Array.isArray(pending) ? "an array" : typeof pending}, which is not ` +
        "read: a stage passes items on with out.emit(item)",
    );
  }
  if (typeof (pending as PromiseLike<void> | undefined)?.then === "function") {
    let promise = Promise.resolve(pending as PromiseLike<void>);
    if (timed) promise = within(work, promise, batch.length, timed);
    return settle(work, batch, retries, result, tries, collector, started, promise, fence, waiting);
  }
  succeeded(work, collector, result, batch, performance.now() - started);
  if (waiting) wentThrough(work, batch, waiting);
}

/**
 * Says that a batch which waited out an outage went through: the wait was
 * said when it began, and an operator watching a Postgres outage saw no line
 * that it had ended (Redis's own pauses say "resuming").
 */
function wentThrough(work: StageWork, batch: readonly Item[], waiting: Waiting): void {
  if (waiting.tries === 0 || waiting.over) return;
  const { ctx } = work;
  ctx.log.info(
    `${ctx.flow}/${ctx.stage}: batch of ${batch.length} went through after waiting ` +
      `${seconds(Date.now() - waiting.since)} for the outage to end`,
  );
}

/**
 * `promise`, or a PermanentError once the stage's batchTimeout has passed
 * without it settling: the try's own signal is aborted with it, and a
 * warning says so (a slow stage's tries otherwise ran twice without a word).
 */
function within(
  work: StageWork,
  promise: Promise<void>,
  items: number,
  timed: AbortController,
): Promise<void> {
  const ms = work.batchTimeout!;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const error = new PermanentError(
        `handle did not return within ${ms < 1000 ? `${ms} ms` : seconds(ms)} (the stage's ` +
          `batchTimeout) on a batch of ${items}`,
      );
      // Said at most once a minute, with how many: a stage that hangs on every item had a
      // line per try.
      const { ctx } = work;
      const t = work.timedOut ??= { unsaid: 0, saidAt: -Infinity };
      t.unsaid++;
      if (Date.now() - t.saidAt >= SAY_EVERY_MS) {
        ctx.log.warn(
          `${ctx.flow}/${ctx.stage}: ${t.unsaid === 1 ? "a try" : `${t.unsaid} tries`} of a ` +
            `batch did not return within its batchTimeout: a try's signal is aborted, and its ` +
            "batch split down to the item that holds it, which goes to dead letters (said at " +
            "most once a minute)",
        );
        t.unsaid = 0;
        t.saidAt = Date.now();
      }
      timed.abort(error);
      reject(error);
    }, ms);
    promise.then(
      () => (clearTimeout(timer), resolve()),
      (error) => (clearTimeout(timer), reject(error)),
    );
  });
}

async function settle(
  work: StageWork,
  batch: Item[],
  retries: number,
  result: BatchResult,
  tries: number,
  collector: Collector,
  started: number,
  pending: Promise<void>,
  fence: Fence | undefined,
  waiting: Waiting | undefined,
): Promise<void> {
  try {
    // A kill does not wait for an actor that ignores its signal.
    await untilAborted(pending, work.ctx.signal);
  } catch (error) {
    work.stats.busyMs += performance.now() - started;
    return await failed(work, batch, retries, result, tries, error, fence, waiting);
  }
  succeeded(work, collector, result, batch, performance.now() - started);
  if (waiting) wentThrough(work, batch, waiting);
}

/**
 * Doublings of the backoff between tries of a batch in an outage: at the
 * default base (100 ms), a try every 0 to 1.6 s while it lasts.
 */
const OUTAGE_MAX_STEP = 4;

/** Longest error message a failure's log lines and dead letters quote (cutShort). */
const MAX_REASON = 2000;

/** How long a batch waits for a service that is away (RetryHint.away) before failing as usual. */
export const AWAY_MAX_MS = 10 * 60_000;

/** While a batch waits, a warning says so this often. */
const SAY_EVERY_MS = 60_000;

/** A batch waiting out an outage: its tries so far, since when, when it last said so. */
interface Waiting {
  tries: number;
  since: number;
  said: number;
  /** Gave up waiting for a service that is away: its retries and halves fail as usual. */
  over: boolean;
}

function awayMax(work: StageWork): number {
  return work.awayMaxMs ?? AWAY_MAX_MS;
}

function seconds(ms: number): string {
  return ms >= 120_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`;
}

/** Try number `tries` threw: retry it after a backoff, split it, or dead-letter its one item. */
async function failed(
  work: StageWork,
  batch: Item[],
  retries: number,
  result: BatchResult,
  tries: number,
  error: unknown,
  fence: Fence | undefined,
  waiting: Waiting | undefined,
): Promise<void> {
  const { ctx, stats } = work;
  ctx.signal.throwIfAborted();
  // Not this batch's fault, and no other batch would fare better: the run ends.
  if (endingError(error)) throw error;
  // A stage's own message may quote a URL it was given, password and all (masked before it
  // is cut, so no password is cut in half and left unmasked); a message can be a server's
  // whole error page, said in a log line per retry and kept in every item's dead letter.
  const why = cutShort(maskUrlsIn(errorMessage(error)), MAX_REASON) + maskUrlsIn(thrownAt(error));
  // Nor is an outage (a dropped connection to Redis), which every item would
  // meet alike: tried again until Redis answers, spending neither the
  // batch's retries nor its items' attempts, so an outage cannot split good
  // items into dead letters. A service that is away (refused, 502 or 503
  // after the client's own retries: RetryHint.away) is waited out the same
  // way, for up to `awayMaxMs` per batch; past that it is an ordinary
  // failure, so a wrong URL or a service that never comes back does not
  // hold a one-shot flow for ever. The wait between tries grows to
  // OUTAGE_MAX_STEP doublings.
  const outage = isOutage(error);
  const away = !outage && isAway(error);
  const now = Date.now();
  if (away && waiting !== undefined && now - waiting.since >= awayMax(work) && !waiting.over) {
    ctx.log.warn(
      `${ctx.flow}/${ctx.stage}: batch of ${batch.length}: gave up waiting after ` +
        `${seconds(now - waiting.since)}; retrying and splitting it as any failure`,
      { error: why },
    );
    waiting = { ...waiting, over: true };
  }
  if (outage || (away && !waiting?.over)) {
    stats.retries++;
    const w = waiting ?? { tries: 0, since: now, said: now, over: false };
    if (w.tries === 0) {
      ctx.log.warn(
        `${ctx.flow}/${ctx.stage}: batch of ${batch.length} met an outage, ` +
          `trying again until it ends`,
        { error: why },
      );
    } else if (now - w.said >= SAY_EVERY_MS) {
      ctx.log.warn(
        `${ctx.flow}/${ctx.stage}: batch of ${batch.length}: still waiting after ` +
          `${seconds(now - w.since)}`,
        { error: why },
      );
      w.said = now;
    }
    const backoff = backoffDelay(Math.min(w.tries, OUTAGE_MAX_STEP), work.backoffBase);
    await sleep(Math.max(backoff, askedWait(error)), ctx.signal);
    ctx.signal.throwIfAborted();
    return await attempt(work, batch, retries, result, tries, fence, { ...w, tries: w.tries + 1 });
  }
  for (const item of batch) item.attempts++;
  // An error that is not retryable (an API's 400 for one bad input) will
  // fail the same way again: skip the retries and split now.
  if (tries < retries && isRetryable(error)) {
    stats.retries++;
    ctx.log.warn(`${ctx.flow}/${ctx.stage}: batch of ${batch.length} failed, retrying`, {
      attempt: tries + 1,
      error: why,
    });
    await sleep(Math.max(backoffDelay(tries, work.backoffBase), askedWait(error)), ctx.signal);
    ctx.signal.throwIfAborted();
    return await attempt(work, batch, retries, result, tries + 1, fence, waiting);
  }
  if (batch.length === 1) {
    deadLetter(work, batch, result, `failed: ${why}`);
    if (isRetryable(error) && isServiceFailure(error)) {
      result.serviceFailed = (result.serviceFailed ?? 0) + 1;
    }
    if (!result.passed && (result.serviceFailed ?? 0) >= GIVE_UP_ALONE) {
      result.givenUp = `failed: ${why} (not tried alone: ${result.serviceFailed} items of its ` +
        `batch failed alone and none passed, so the service fails whatever it is given)`;
      ctx.log.warn(
        `${ctx.flow}/${ctx.stage}: ${result.serviceFailed} items failed alone and none of their ` +
          `batch passed: the rest of the batch goes to dead letters without more calls`,
        { error: why },
      );
    }
    return;
  }
  // The retries were spent on the whole batch; halves get one attempt
  // each, and the split stops asking a service that fails them all (GIVE_UP_ALONE).
  const mid = batch.length >>> 1;
  // A batch that gave up waiting for a service passes that on: its halves do not wait again.
  const given = waiting?.over ? waiting : undefined;
  // What the service asked to wait (Retry-After) holds for the first half too.
  const asked = askedWait(error);
  if (asked > 0 && !result.givenUp) {
    await sleep(asked, ctx.signal);
    ctx.signal.throwIfAborted();
  }
  for (const half of [batch.slice(0, mid), batch.slice(mid)]) {
    if (result.givenUp) deadLetter(work, half, result, result.givenUp);
    else await attempt(work, half, 0, result, 0, fence, given);
  }
}

/** Sends `items` to dead letters for `reason`, counted as failed. */
function deadLetter(work: StageWork, items: Item[], result: BatchResult, reason: string): void {
  work.stats.failed += items.length;
  work.stats.failedUpdates += updatesIn(items);
  result.failed = (result.failed ?? 0) + items.length;
  result.failure ??= reason.replace(/^failed: /, "");
  for (const item of items) {
    result.letters.push({ stage: work.ctx.stage, reason, attempts: item.attempts, item });
  }
}

/** Counts what a successful try of `batch` taking `ms` said, and keeps its outputs. */
function succeeded(
  work: StageWork,
  collector: Collector,
  result: BatchResult,
  batch: readonly Item[],
  ms: number,
): void {
  const { ctx, stats } = work;
  stats.busyMs += ms;
  result.passed = true;
  const items = itemsIn(work, batch);
  // A batch of merge updates alone holds no item: counted, it read as a batch size of 0.
  if (items > 0) {
    stats.batches++;
    stats.onBatch?.(items, ms);
  }
  let folded = false;
  if (collector.drops) {
    for (const reason of collector.drops) {
      // A stage held to account says the items it let go through out.drop: the engine's words.
      folded = stats.count(stats.dropped, reason, 1, reason === UNSAID) || folded;
    }
    result.dropped = (result.dropped ?? 0) + collector.drops.length;
  }
  if (collector.rejects) {
    for (const [item, reason, detail] of collector.rejects) {
      folded = stats.count(stats.rejected, reason) || folded;
      result.letters.push({
        stage: ctx.stage,
        reason: detail ?? reason,
        attempts: item.attempts,
        item,
      });
    }
  }
  const out = collector.take();
  const unsaid = items - out.length - (collector.drops?.length ?? 0) -
    (collector.rejects?.length ?? 0);
  if (unsaid > 0) {
    // Counted as dropped, so the summary still adds up and says why.
    stats.count(stats.dropped, UNSAID, unsaid, true);
    result.dropped = (result.dropped ?? 0) + unsaid;
    sayOnce(work, "unaccounted", unaccounted(unsaid, items));
  }
  if (folded) sayOnce(work, "reasons", MANY_REASONS);
  if (collector.odd) {
    const { reason } = collector.odd;
    sayOnce(
      work,
      "reason",
      `out.drop and out.reject take a reason, a non-empty string; got ${
        reason === null ? "null" : reason === "" ? "an empty string" : typeof reason
      } (counted as ${JSON.stringify(reasonOf(reason))})`,
    );
  }
  if (result.out.length === 0) result.out = out;
  else for (const item of out) result.out.push(item);
}

/** What a stage is told, once, when it gave more reasons than are counted apart. */
const MANY_REASONS = `more than ${MAX_REASONS} different reasons given to out.drop or ` +
  `out.reject: the rest are counted as "${OTHER_REASONS}". A reason is a short label that the ` +
  "summary counts by; give the item's own words as the third argument, detail, which its dead " +
  'letter keeps: out.reject(item, "price missing", `price missing for ${item.payload.url}`)';

/** The drop reason of items a stage neither emitted, dropped nor rejected. */
export const UNSAID = "not passed on";

/** What a stage is told, once, when `unsaid` of a batch's `items` were neither emitted, dropped nor rejected. */
export function unaccounted(unsaid: number, items: number): string {
  return `${unsaid} of a batch's ${items} items were neither emitted, dropped nor ` +
    `rejected (counted as dropped, "${UNSAID}"): emit an item (out.emit), drop it with ` +
    "a reason (out.drop) or send it to dead letters (out.reject)";
}

/**
 * A reason a stage's own code gave that is not a non-empty string (step
 * modules are not type-checked): an Error's message, else its text, else
 * NO_REASON. Kept as given, an Error or object keyed the counts by identity
 * and they folded into one row of the summary ("20 rejected, 1 counted"),
 * and a missing one left the dead letter without a reason.
 */
function reasonOf(reason: unknown): string {
  let text = "";
  if (reason instanceof Error) text = reason.message;
  else if (reason !== undefined && reason !== null && typeof reason !== "object") {
    text = String(reason);
  } else if (reason !== undefined && reason !== null) {
    try {
      text = JSON.stringify(reason) ?? "";
    } catch {
      text = String(reason);
    }
  }
  return text === "" || text === "{}" ? NO_REASON : maskUrlsIn(text);
}

/** What a drop or dead letter given no reason counts as. */
const NO_REASON = "no reason given";

/** Warns once per stage about what its own code did (`key` tells the warnings apart). */
function sayOnce(work: StageWork, key: string, message: string): void {
  const said = work.said ??= new Set();
  if (said.has(key)) return;
  said.add(key);
  work.ctx.log.warn(`${work.ctx.flow}/${work.ctx.stage}: ${message} (said once)`);
}
