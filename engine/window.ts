import type { Channel } from "./channel.ts";
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

const jsonLength = (item: Envelope<unknown>) => JSON.stringify(item.payload).length;

/**
 * Collects items into batches by count, weight and age. It keeps no timer
 * itself: `deadline` says when the oldest pending item is due, and the
 * reader that owns the window decides how to wait for it. That keeps the
 * window pure and its tests free of real time.
 */
export class Window<T extends Envelope<unknown>> {
  readonly size: number;
  readonly maxWeight: number;
  readonly maxWait: number;
  readonly #weigh: (item: T) => number;
  #pending: T[] = [];
  #weight = 0;
  #firstAt = 0;

  constructor(opts: WindowOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 1) {
      throw new RangeError(`window size must be a positive integer, got ${opts.size}`);
    }
    this.size = opts.size;
    this.maxWeight = opts.maxWeight ?? Infinity;
    this.maxWait = opts.maxWait ?? Infinity;
    this.#weigh = opts.maxWeight === undefined ? () => 0 : (opts.weigh ?? jsonLength);
  }

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
   * Adds items; returns the batches they completed, in order. An item heavier
   * than `maxWeight` by itself still goes out, alone: refusing it would lose it.
   */
  add(items: readonly T[], now: number): T[][] {
    const full: T[][] = [];
    for (const item of items) {
      const w = this.#weigh(item);
      if (this.#pending.length > 0 && this.#weight + w > this.maxWeight) full.push(this.flush()!);
      if (this.#pending.length === 0) this.#firstAt = now;
      this.#pending.push(item);
      this.#weight += w;
      if (this.#pending.length >= this.size || this.#weight >= this.maxWeight) {
        full.push(this.flush()!);
      }
    }
    return full;
  }

  /** Takes whatever is pending (on maxWait, or on close). */
  flush(): T[] | undefined {
    if (this.#pending.length === 0) return undefined;
    const batch = this.#pending;
    this.#pending = [];
    this.#weight = 0;
    return batch;
  }
}

/**
 * Reads a channel through a window: yields full batches as they form, the
 * pending batch when `maxWait` passes with no new item, and the rest when the
 * channel closes, so nothing accepted is left behind on shutdown.
 */
export async function* windowed<T extends Envelope<unknown>>(
  input: Channel<T>,
  opts: WindowOptions,
  signal?: AbortSignal,
): AsyncGenerator<T[]> {
  const window = new Window<T>(opts);
  for (;;) {
    const deadline = window.deadline;
    const got = deadline === undefined
      ? (input.tryReceive() ?? await input.receive(signal))
      : (input.tryReceive() ?? await input.receive(signal, Math.max(0, deadline - Date.now())));
    if (got === undefined) break;
    if (got === "timeout") {
      yield window.flush()!;
      continue;
    }
    yield* window.add(got, Date.now());
    if (window.deadline !== undefined && window.deadline <= Date.now()) yield window.flush()!;
  }
  const rest = window.flush();
  if (rest) yield rest;
}
