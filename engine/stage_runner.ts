import type { Actor, Outcome, StageContext } from "./actor.ts";
import { backoffDelay, sleep } from "./backoff.ts";
import type { Channel } from "./channel.ts";
import type { DeadLetter, DeadLetters } from "./dead_letters.ts";
import type { Envelope } from "./item.ts";
import type { StageStats } from "./stats.ts";
import { windowed, type WindowOptions } from "./window.ts";

type Item = Envelope<unknown>;

/** One stage's actor and what it needs to run a batch through it. */
export interface StageWork {
  actor: Actor<unknown, unknown>;
  ctx: StageContext;
  stats: StageStats;
  retries: number;
  /** Backoff base in ms (tests shorten it). */
  backoffBase?: number;
}

/** Everything one in-memory stage needs; built by run_flow.ts. */
export interface StageRun extends StageWork {
  input: Channel<Item>;
  /** Absent for the last stage: what it emits counts as published. */
  output?: Channel<Item>;
  window?: WindowOptions;
  concurrency: number;
  deadLetters: DeadLetters;
}

/** What a batch became: items to pass on, and items for dead letters. */
export interface BatchResult {
  out: Item[];
  letters: DeadLetter[];
}

/**
 * What one attempt of `handle` said. Kept apart from the stage until the
 * attempt returns, so an attempt that throws half-way leaves no trace.
 */
class Collector implements Outcome<unknown> {
  readonly out: Item[] = [];
  drops?: string[];
  rejects?: [Item, string, string | undefined][];
  emit(item: Item): void {
    this.out.push(item);
  }
  drop(_item: Item, reason: string): void {
    (this.drops ??= []).push(reason);
  }
  reject(item: Item, reason: string, detail?: string): void {
    (this.rejects ??= []).push([item, reason, detail]);
  }
}

/**
 * Runs one in-memory stage until its input closes and drains: reads
 * batches (through a window when the stage has one), keeps up to
 * `concurrency` of them in `handle` at once, and passes outputs on. Closes
 * its output when done.
 */
export async function runStage(run: StageRun): Promise<void> {
  const { actor, ctx, input, output, concurrency } = run;
  const inflight = new Set<Promise<void>>();
  const handle = async (batch: Item[]) => {
    const result = await processBatch(run, batch);
    if (result.letters.length > 0) await run.deadLetters.write(result.letters);
    if (output && result.out.length > 0 && !output.trySend(result.out)) {
      await output.send(result.out, ctx.signal);
    }
  };
  try {
    const batches = run.window ? windowed(input, run.window, ctx.signal) : input;
    for await (const batch of batches) {
      if (concurrency === 1) {
        await handle(batch);
        continue;
      }
      const p: Promise<void> = handle(batch).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= concurrency) await Promise.race(inflight);
    }
    await Promise.all(inflight);
  } finally {
    await Promise.allSettled(inflight);
    output?.close();
    await actor.close?.();
  }
}

/**
 * Runs a batch through a stage and counts what happened. A batch that
 * throws is retried with backoff; one that keeps throwing is split in halves
 * until the bad item stands alone and goes to dead letters, so one bad item
 * never stops a flow nor takes its batch-mates with it. Only an abort of the
 * stage's signal escapes.
 */
export async function processBatch(work: StageWork, batch: Item[]): Promise<BatchResult> {
  work.stats.received += batch.length;
  const result: BatchResult = { out: [], letters: [] };
  await attempt(work, batch, work.retries, result);
  work.stats.emitted += result.out.length;
  return result;
}

async function attempt(
  work: StageWork,
  batch: Item[],
  retries: number,
  result: BatchResult,
): Promise<void> {
  const { actor, ctx, stats } = work;
  for (let tries = 0;; tries++) {
    const collector = new Collector();
    const started = performance.now();
    try {
      const pending = actor.handle(batch, collector, ctx);
      if (pending) await pending;
    } catch (error) {
      stats.busyMs += performance.now() - started;
      ctx.signal.throwIfAborted();
      for (const item of batch) item.attempts++;
      // An error that says `retryable: false` (an API's 400 for one bad
      // input) will fail the same way again: skip the retries and split now.
      if (tries < retries && (error as { retryable?: unknown })?.retryable !== false) {
        stats.retries++;
        ctx.log.warn(`${ctx.flow}/${ctx.stage}: batch of ${batch.length} failed, retrying`, {
          attempt: tries + 1,
          error: errorMessage(error),
        });
        await sleep(backoffDelay(tries, work.backoffBase), ctx.signal);
        ctx.signal.throwIfAborted();
        continue;
      }
      if (batch.length === 1) {
        stats.failed++;
        result.letters.push({
          stage: ctx.stage,
          reason: `failed: ${errorMessage(error)}`,
          attempts: batch[0].attempts,
          item: batch[0],
        });
        return;
      }
      // The retries were spent on the whole batch; halves get one attempt
      // each, so a dead dependency costs log2(n) rounds, not n retries.
      const mid = batch.length >>> 1;
      await attempt(work, batch.slice(0, mid), 0, result);
      await attempt(work, batch.slice(mid), 0, result);
      return;
    }
    stats.busyMs += performance.now() - started;
    stats.batches++;
    if (collector.drops) {
      for (const reason of collector.drops) stats.count(stats.dropped, reason);
    }
    if (collector.rejects) {
      for (const [item, reason, detail] of collector.rejects) {
        stats.count(stats.rejected, reason);
        result.letters.push({
          stage: ctx.stage,
          reason: detail ?? reason,
          attempts: item.attempts,
          item,
        });
      }
    }
    if (result.out.length === 0) result.out = collector.out;
    else for (const item of collector.out) result.out.push(item);
    return;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
