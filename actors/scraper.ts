import { sleep } from "../engine/backoff.ts";
import type { Channel } from "../engine/channel.ts";
import { type Envelope, envelope, type RawItem } from "../engine/item.ts";
import type { Logger } from "../engine/log.ts";
import type { SourceEntry } from "../engine/flow.ts";
import type { Source } from "../engine/source.ts";
import { errorMessage } from "../engine/errors.ts";
import { SourceStats } from "../engine/stats.ts";

/** A source of the flow with its place in the flow file. */
export interface ScrapeSource {
  entry: SourceEntry;
  source: Source;
}

/**
 * The first actor: reads every source, wraps what they yield in envelopes
 * (stable id, fresh event) and feeds the first edge. Polling lives here, not
 * in sources: a source only knows how to read once, the Scraper knows when.
 * A failing read is counted and logged, and a polling source tries again at
 * its next tick; it never stops the other sources.
 */
export class Scraper {
  readonly stats: SourceStats[];

  constructor(
    readonly sources: readonly ScrapeSource[],
    readonly log: Logger,
    readonly flow: string,
  ) {
    this.stats = sources.map((s) => new SourceStats(s.entry.name, s.entry.kind));
  }

  /**
   * Runs until every one-shot source is read and `stop` aborts the polling
   * ones; then closes `output`. `kill` aborts a send that waits on a full edge.
   */
  async run(
    output: Channel<Envelope<RawItem>>,
    stop: AbortSignal,
    kill: AbortSignal,
  ): Promise<void> {
    try {
      await Promise.all(
        this.sources.map((s, i) => this.#poll(s, this.stats[i], output, stop, kill)),
      );
    } finally {
      output.close();
      await Promise.allSettled(this.sources.map((s) => s.source.close?.()));
    }
  }

  async #poll(
    { entry, source }: ScrapeSource,
    stats: SourceStats,
    output: Channel<Envelope<RawItem>>,
    stop: AbortSignal,
    kill: AbortSignal,
  ): Promise<void> {
    while (!stop.aborted) {
      stats.reads++;
      try {
        for await (const raws of source.read(stop)) {
          const now = Date.now();
          const batch: Envelope<RawItem>[] = new Array(raws.length);
          for (let i = 0; i < raws.length; i++) batch[i] = envelope(raws[i], entry.name, now);
          stats.emitted += batch.length;
          if (!output.trySend(batch)) await output.send(batch, kill);
          if (stop.aborted) break;
        }
      } catch (error) {
        if (kill.aborted) throw error;
        if (!stop.aborted) {
          stats.errors++;
          stats.lastError = errorMessage(error);
          this.log.error(`${this.flow}: source ${entry.name} failed: ${stats.lastError}`);
        }
      }
      if (entry.every === undefined) return;
      await sleep(entry.every, stop);
    }
  }
}
