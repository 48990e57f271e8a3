import type { Channel } from "./channel.ts";
import type { DeadLetter, DeadLetters } from "./dead_letters.ts";
import type { Commit, Delivery, Edge } from "./edge.ts";
import type { Envelope } from "./item.ts";

type Item = Envelope<unknown>;

/**
 * An edge in memory: deliveries are the batches of a bounded channel, and a
 * commit sends the outputs to the next stage's channel (waiting while it is
 * full: that is the backpressure) and the dead letters to the flow's
 * writer. Acknowledging costs nothing, and a delivery a batch ends in the
 * middle of (Commit.partial) has nothing to record.
 */
export class MemoryEdge implements Edge {
  constructor(
    readonly input: Channel<Item>,
    /** The next stage's channel; none for the last stage. */
    readonly output: Channel<Item> | undefined,
    readonly deadLetters: DeadLetters,
    /** Aborts a send that waits on a full channel (a hard stop). */
    readonly kill: AbortSignal,
  ) {}

  tryRead(): Delivery[] | undefined {
    const items = this.input.tryReceive();
    return items && [this.#delivery(items)];
  }

  async read(timeoutMs?: number): Promise<Delivery[] | "timeout" | undefined> {
    const got = timeoutMs === undefined
      ? await this.input.receive(this.kill)
      : await this.input.receive(this.kill, timeoutMs);
    return got === undefined || got === "timeout" ? got : [this.#delivery(got)];
  }

  /** Synchronous when the next channel has room and there are no dead letters. */
  commit({ deliveries, out, letters }: Commit): void | Promise<void> {
    const urgent = deliveries.length === 1 && deliveries[0].urgent === true;
    if (letters.length > 0) return this.#withLetters(out, letters, urgent);
    return this.#send(out, urgent);
  }

  close(): void {
    this.output?.close();
  }

  #send(out: Item[], urgent: boolean): void | Promise<void> {
    if (this.output && out.length > 0 && !this.output.trySend(out, urgent)) {
      return this.output.send(out, this.kill, urgent);
    }
  }

  async #withLetters(out: Item[], letters: DeadLetter[], urgent: boolean): Promise<void> {
    await this.deadLetters.write(letters);
    await this.#send(out, urgent);
  }

  #delivery(items: Item[]): Delivery {
    return this.input.isUrgent(items) ? { items, urgent: true } : { items };
  }
}
