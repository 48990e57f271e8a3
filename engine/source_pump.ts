import { sleep } from "./backoff.ts";
import type { SourceEntry } from "./flow.ts";
import { type Envelope, envelope, type RawItem } from "./item.ts";
import type { Logger } from "./log.ts";
import type { Source } from "./source.ts";
import { errorMessage } from "./errors.ts";
import { maskUrlsIn } from "./mask_url.ts";
import type { SourceStats } from "./stats.ts";

/** A source of the flow with its place in the flow file. */
export interface ScrapeSource {
  entry: SourceEntry;
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
   * items) says a one-shot source has emitted everything.
   */
  emit(items: Envelope<RawItem>[], checkpoint: unknown, done: boolean): Promise<void>;
}

/**
 * The Scraper's loop for one source, the same in every mode: reads it,
 * wraps what it yields in envelopes (stable id, fresh event) and emits
 * them; polls again after `every`, or, for a one-shot source, emits `done`.
 * Polling lives here, not in sources: a source only knows how to read once.
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
  opts: { signal: AbortSignal; log: Logger; flow: string },
): Promise<boolean> {
  const { signal, log } = opts;
  while (!signal.aborted) {
    stats.reads++;
    const reading = source.read(signal)[Symbol.asyncIterator]();
    try {
      for (;;) {
        let next: IteratorResult<RawItem[]>;
        try {
          next = await reading.next();
        } catch (error) {
          if (!signal.aborted) {
            stats.errors++;
            // Into the report, the summary and the log: a URL's password must not go with it.
            stats.lastError = maskUrlsIn(errorMessage(error));
            log.error(`${opts.flow}: source ${entry.name} failed: ${stats.lastError}`);
          }
          break;
        }
        if (next.done) break;
        const raws = next.value;
        const now = Date.now();
        const batch: Envelope<RawItem>[] = new Array(raws.length);
        for (let i = 0; i < raws.length; i++) batch[i] = envelope(raws[i], entry.name, now);
        await outlet.emit(batch, source.checkpoint?.(), false);
        stats.emitted += batch.length;
        if (signal.aborted) break;
      }
    } finally {
      await reading.return?.()?.catch(() => {});
    }
    if (entry.every === undefined) {
      if (signal.aborted) return false;
      await outlet.emit([], source.checkpoint?.(), true);
      return true;
    }
    await sleep(entry.every, signal);
  }
  return false;
}
