/**
 * A bounded channel of batches: the only place in-memory items wait between
 * stages. Capacity counts items, not batches, so memory is bounded however
 * stages batch. The default policy suspends the sender while the channel is
 * full; that waiting is the backpressure that slows a fast stage to the pace
 * of a slow one.
 *
 * The fast path is synchronous: `trySend` and `tryReceive` move a whole batch
 * without a promise when the channel is neither full nor empty, so the cost
 * of an edge is paid per batch, never per item.
 *
 * @example
 * ```ts
 * import { Channel } from "../mod.ts";
 * const ch = new Channel<number>(4);
 * await ch.send([1, 2]);
 * ch.close();
 * for await (const batch of ch) console.log(batch); // [1, 2]
 * ```
 */
export class Channel<T> {
  /** Items it holds before `send` waits: the backpressure between two stages. */
  readonly capacity: number;
  #queue: T[][] = [];
  #head = 0;
  /** Urgent batches (a `priority: high` source's), received before the queue. */
  #urgent: T[][] = [];
  #marked = new WeakSet<T[]>();
  #items = 0;
  #closed = false;
  #senders: { batch: T[]; resolve: () => void; reject: (e: unknown) => void }[] = [];
  #receivers: { resolve: (b: T[] | undefined) => void; reject: (e: unknown) => void }[] = [];

  /** `capacity`: a positive integer of items (not batches). */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`channel capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
  }

  /** Items buffered now. */
  get size(): number {
    return this.#items;
  }

  /** True once `close` was called; buffered batches can still be received. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Accepts the batch now if it fits; never waits. An urgent batch is
   * received before every batch that is not, and `isUrgent` tells it apart.
   */
  trySend(batch: T[], urgent = false): boolean {
    if (this.#closed) throw new ChannelClosedError();
    if (batch.length === 0) return true;
    if (urgent) this.#marked.add(batch);
    const receiver = this.#receivers.shift();
    if (receiver) {
      receiver.resolve(batch);
      return true;
    }
    if (this.#senders.length > 0 || this.#items + batch.length > this.capacity) return false;
    this.#push(batch);
    return true;
  }

  /** Whether a batch received from this channel was sent urgent. */
  isUrgent(batch: T[]): boolean {
    return this.#marked.has(batch);
  }

  /**
   * Sends a batch, waiting while the channel is full. A batch larger than
   * the capacity is split, so no more than `capacity` items are ever held;
   * `accepted` hears of each part as it goes in (a source counts them, so
   * its count never trails what was received, also when `signal` cuts the
   * send short).
   */
  async send(
    batch: T[],
    signal?: AbortSignal,
    urgent = false,
    accepted?: (n: number) => void,
  ): Promise<void> {
    if (batch.length > this.capacity) {
      for (let i = 0; i < batch.length; i += this.capacity) {
        await this.send(batch.slice(i, i + this.capacity), signal, urgent, accepted);
      }
      return;
    }
    if (this.trySend(batch, urgent)) return accepted?.(batch.length);
    signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      // The listener must go when the send completes: a long-lived signal
      // would otherwise keep every batch ever sent through it alive.
      const onAbort = () => {
        const i = this.#senders.indexOf(waiter);
        if (i >= 0) {
          this.#senders.splice(i, 1);
          reject(signal!.reason);
        }
      };
      const waiter = {
        batch,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          accepted?.(batch.length);
          resolve();
        },
        reject,
      };
      // An urgent batch waits ahead of every batch that is not (behind earlier urgent ones):
      // on a full channel it would otherwise queue behind a backlog it is meant to overtake.
      const at = urgent ? this.#senders.findIndex((s) => !this.#marked.has(s.batch)) : -1;
      this.#senders.splice(at < 0 ? this.#senders.length : at, 0, waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Takes the oldest batch if there is one; never waits. */
  tryReceive(): T[] | undefined {
    if (this.#urgent.length > 0) {
      const batch = this.#urgent.shift()!;
      this.#items -= batch.length;
      this.#admitSenders();
      return batch;
    }
    if (this.#head === this.#queue.length) return undefined;
    const batch = this.#queue[this.#head];
    this.#queue[this.#head++] = undefined as unknown as T[];
    this.#items -= batch.length;
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    this.#admitSenders();
    return batch;
  }

  /**
   * The next batch, waiting while the channel is empty; undefined once the
   * channel is closed and drained. With `timeout` (ms), resolves to
   * "timeout" when nothing arrived in time, which is how a
   * batch window wakes up for `maxWait`.
   */
  receive(signal?: AbortSignal): Promise<T[] | undefined>;
  /** As above, resolving to "timeout" when nothing arrived within `timeout` ms. */
  receive(signal: AbortSignal | undefined, timeout: number): Promise<T[] | undefined | "timeout">;
  receive(signal?: AbortSignal, timeout?: number): Promise<T[] | undefined | "timeout"> {
    const ready = this.tryReceive();
    if (ready) return Promise.resolve(ready);
    if (this.#closed) return Promise.resolve(undefined);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => settle(() => reject(signal!.reason));
      const settle = (fn: () => void) => {
        const i = this.#receivers.indexOf(waiter);
        if (i >= 0) this.#receivers.splice(i, 1);
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        fn();
      };
      const waiter = {
        resolve: (b: T[] | undefined) => settle(() => resolve(b)),
        reject: (e: unknown) => settle(() => reject(e)),
      };
      this.#receivers.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeout !== undefined) {
        timer = setTimeout(() => settle(() => resolve("timeout")), timeout);
      }
    });
  }

  /**
   * No more sends; receivers drain what is buffered, then get undefined.
   * Senders still waiting are let in first: their batches were offered
   * before the close, and dropping them would lose items.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#senders.splice(0)) {
      this.#push(s.batch);
      s.resolve();
    }
    if (this.#items === 0) { for (const r of this.#receivers.splice(0)) r.resolve(undefined); }
  }

  /**
   * Closes and drops what is buffered: a kill abandons those items on
   * purpose (the runner reports them as in flight), so each receiver ends
   * after the batch in hand instead of working through the queue.
   */
  abandon(): void {
    this.close();
    this.#urgent = [];
    this.#queue = [];
    this.#head = 0;
    this.#items = 0;
  }

  /** Every batch until the channel is closed and drained. */
  async *[Symbol.asyncIterator](): AsyncGenerator<T[]> {
    for (;;) {
      const batch = this.tryReceive() ?? await this.receive();
      if (batch === undefined) return;
      yield batch;
    }
  }

  #push(batch: T[]): void {
    if (this.#marked.has(batch)) this.#urgent.push(batch);
    else this.#queue.push(batch);
    this.#items += batch.length;
  }

  #admitSenders(): void {
    while (this.#senders.length > 0) {
      const next = this.#senders[0];
      if (this.#items > 0 && this.#items + next.batch.length > this.capacity) break;
      this.#senders.shift();
      this.#push(next.batch);
      next.resolve();
    }
    if (this.#closed && this.#items === 0) {
      for (const r of this.#receivers.splice(0)) r.resolve(undefined);
    }
  }
}

/** Thrown by a send on a closed channel: a bug in the caller, not a condition to retry. */
export class ChannelClosedError extends Error {
  constructor() {
    super("send on a closed channel");
    this.name = "ChannelClosedError";
  }
}
