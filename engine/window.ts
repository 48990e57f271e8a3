import type { Delivery, Item } from "./edge.ts";
import type { Envelope } from "./item.ts";

/** When a batch window flushes: whichever trigger comes first. */
export interface WindowOptions {
  /** Flush at this many items. */
  size: number;
  /** Flush when the items' summed weight reaches this (bytes, or tokens for embeddings). */
  maxWeight?: number;
  /** Weight of one item; default: the length of its JSON payload. Only called when maxWeight is set. */
  // deno-lint-ignore no-explicit-any
  weigh?(item: Envelope<any>): number;
  /** Flush this long (ms) after the first item of a batch arrived, full or not. */
  maxWait?: number;
}

/** A batch a window let go, and the deliveries whose last item it holds. */
export interface Batch<D extends Delivery = Delivery> {
  /** The items, in arrival order. */
  items: Item[];
  /** The deliveries whose last item is in this batch: acknowledged with it. */
  deliveries: D[];
  /**
   * The delivery this batch ends in the middle of, and how many of its
   * items (from its first) this batch and those before it hold: the rest
   * waits in the window for the next batch. An edge that acknowledges per
   * delivery records the progress (a Redis edge, so that a delivery read
   * again after a crash resumes after them).
   */
  partial?: { delivery: D; upTo: number };
}

const jsonLength = (item: Item) => JSON.stringify(item.payload).length;

/**
 * Collects deliveries into batches by count, weight and age: a batch never
 * holds more than `size` items nor (unless one item alone is heavier) more
 * than `maxWeight`, in memory and over Redis alike. Where a batch ends in
 * the middle of a delivery, the rest of it waits here for the next batch,
 * so batches keep the order items were read in, whatever the edge.
 *
 * It keeps no timer: `deadline` says when the oldest pending item is due,
 * and the stage loop decides how to wait for it, so the window is pure and
 * its tests are free of real time.
 */
export class Window<D extends Delivery = Delivery> {
  /** Most items per batch. */
  readonly size: number;
  /** Most summed weight per batch; Infinity when not set. */
  readonly maxWeight: number;
  /** Ms the oldest pending item waits before a batch goes out short; Infinity when not set. */
  readonly maxWait: number;
  readonly #weigh: (item: Item) => number;
  #pending: Item[] = [];
  #whole: D[] = [];
  #weight = 0;
  #firstAt = 0;

  /** A window of `opts`; a size that is not a positive integer is refused. */
  constructor(opts: WindowOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 1) {
      throw new RangeError(`window size must be a positive integer, got ${opts.size}`);
    }
    this.size = opts.size;
    this.maxWeight = opts.maxWeight ?? Infinity;
    this.maxWait = opts.maxWait ?? Infinity;
    this.#weigh = opts.maxWeight === undefined ? () => 0 : (opts.weigh ?? jsonLength);
  }

  /** Items held, waiting for a batch. */
  get pending(): number {
    return this.#pending.length;
  }

  /** When the pending batch is due by `maxWait` (ms since the epoch of `now`), or undefined. */
  get deadline(): number | undefined {
    return this.#pending.length && this.maxWait !== Infinity
      ? this.#firstAt + this.maxWait
      : undefined;
  }

  /**
   * Adds a delivery; returns the batches it completed, in order. An item
   * heavier than `maxWeight` by itself still goes out, alone: refusing it
   * would lose it.
   */
  add(delivery: D, now: number): Batch<D>[] {
    const { items } = delivery;
    const full: Batch<D>[] = [];
    for (let k = 0; k < items.length; k++) {
      const w = this.#weigh(items[k]);
      if (this.#pending.length > 0 && this.#weight + w > this.maxWeight) {
        full.push(this.#take(k > 0 ? { delivery, upTo: k } : undefined));
      }
      if (this.#pending.length === 0) this.#firstAt = now;
      this.#pending.push(items[k]);
      this.#weight += w;
      if (this.#pending.length >= this.size || this.#weight >= this.maxWeight) {
        if (k === items.length - 1) {
          this.#whole.push(delivery);
          full.push(this.#take());
          return full;
        }
        full.push(this.#take({ delivery, upTo: k + 1 }));
      }
    }
    this.#whole.push(delivery);
    return full;
  }

  /** Takes whatever is pending (on maxWait, or on close). */
  flush(): Batch<D> | undefined {
    return this.#pending.length === 0 ? undefined : this.#take();
  }

  #take(partial?: { delivery: D; upTo: number }): Batch<D> {
    const batch: Batch<D> = { items: this.#pending, deliveries: this.#whole };
    if (partial) batch.partial = partial;
    this.#pending = [];
    this.#whole = [];
    this.#weight = 0;
    return batch;
  }
}

/** Cuts items into batches within the window's size and weight, e.g. a delivery handled at once. */
export function chunks(items: Item[], opts: WindowOptions | undefined): Item[][] {
  if (!opts || items.length <= 1) return [items];
  if (opts.maxWeight === undefined && items.length <= opts.size) return [items];
  const window = new Window({ ...opts, maxWait: undefined });
  const out = window.add({ items }, 0).map((b) => b.items);
  const last = window.flush();
  if (last) out.push(last.items);
  return out;
}
