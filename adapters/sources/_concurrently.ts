/**
 * Runs `task` on what `next` hands out, at most `limit` at once, and yields
 * each result as it settles (the order they finish in, not the order they
 * started in). `next` is asked for more whenever a place is free, and
 * answers undefined when there is nothing it wants started now: the loop
 * ends once nothing runs and `next` still has nothing. A task that throws
 * ends the loop with its error, after the others running have settled;
 * so does a caller that stops reading (break, return, throw).
 *
 * A crawl uses it so that one host's slow pages, or the pause its
 * Retry-After asks, do not hold the other hosts' pages: each host's own
 * limits (rate, burst, connections) are still kept by the HTTP client.
 *
 * @example
 * ```ts
 * import { concurrently } from "./_concurrently.ts";
 *
 * const queue = [30, 10, 20];
 * const done: number[] = [];
 * const sleep = (ms: number) => new Promise<number>((r) => setTimeout(() => r(ms), ms));
 * for await (const ms of concurrently(3, () => queue.shift(), sleep)) done.push(ms);
 * if (done.join() !== "10,20,30") throw new Error(done.join());
 * ```
 */
export async function* concurrently<T, R>(
  limit: number,
  next: () => T | undefined,
  task: (input: T) => Promise<R>,
): AsyncGenerator<R> {
  type Settled = { key: number; ok: true; value: R } | { key: number; ok: false; error: unknown };
  const running = new Map<number, Promise<Settled>>();
  let key = 0;
  const fill = () => {
    while (running.size < limit) {
      const input = next();
      if (input === undefined) return;
      const k = key++;
      running.set(
        k,
        task(input).then(
          (value): Settled => ({ key: k, ok: true, value }),
          (error): Settled => ({ key: k, ok: false, error }),
        ),
      );
    }
  };
  try {
    fill();
    while (running.size > 0) {
      const settled = await Promise.race(running.values());
      running.delete(settled.key);
      if (!settled.ok) throw settled.error;
      yield settled.value;
      fill();
    }
  } finally {
    await Promise.allSettled(running.values());
  }
}

/** A URL HostTurns handed out, to give back with `done` once its fetch ended. */
export interface Turn {
  url: string;
  /** Its host's queue. */
  readonly queue: HostQueue;
}

interface HostQueue {
  urls: string[];
  /** The first URL not handed out yet. */
  at: number;
  /** Handed out and not done. */
  running: number;
}

/**
 * A crawl's URLs handed out one host at a time in turn (a, b, c, a, b, ...),
 * each host's in the order given, and at most `perHost` of one host's out at
 * once: the places a pool has go to the hosts that can answer now, not to
 * requests queued behind a slow host's connections or its Retry-After pause.
 * URLs that do not parse are one more host.
 */
export class HostTurns {
  readonly #queues: HostQueue[] = [];
  /** The queue whose turn is next. */
  #turn = 0;
  /** URLs handed out and not done, of every host: a crawl's requests under way. */
  running = 0;

  constructor(urls: readonly string[], readonly perHost = Number.POSITIVE_INFINITY) {
    const byHost = new Map<string, HostQueue>();
    for (const url of urls) {
      const host = URL.parse(url)?.host ?? "";
      let queue = byHost.get(host);
      if (!queue) byHost.set(host, queue = { urls: [], at: 0, running: 0 });
      queue.urls.push(url);
    }
    this.#queues = [...byHost.values()];
  }

  /**
   * The next URL in turn whose host has a place, as `admit` takes it: true
   * hands it out, false drops it (and the next one is asked), undefined
   * leaves it and every URL after it where they are (a budget spent).
   * Undefined when no host with URLs left has a place, or `admit` stopped.
   */
  take(admit: (url: string) => boolean | undefined): Turn | undefined {
    const n = this.#queues.length;
    for (let tried = 0; tried < n;) {
      const queue = this.#queues[this.#turn];
      if (queue.at >= queue.urls.length || queue.running >= this.perHost) {
        this.#turn = (this.#turn + 1) % n;
        tried++;
        continue;
      }
      const url = queue.urls[queue.at];
      const verdict = admit(url);
      if (verdict === undefined) return undefined;
      queue.at++;
      if (!verdict) continue; // the same host's next URL, in the same turn
      queue.running++;
      this.running++;
      this.#turn = (this.#turn + 1) % n;
      return { url, queue };
    }
    return undefined;
  }

  /** A URL handed out is done with: its host may have another out. */
  done(turn: Turn): void {
    turn.queue.running--;
    this.running--;
  }

  /** The URLs not handed out nor dropped yet, host by host. */
  rest(): string[] {
    return this.#queues.flatMap((q) => q.urls.slice(q.at));
  }
}

/** What `ticking` yields when the time its reader named passed before the next value came. */
export const TICK: unique symbol = Symbol("tick");

/**
 * The values of `source` as they come, and TICK whenever the time `due()`
 * names (epoch ms; undefined: none) passes first: a reader can act on time
 * (a batch that has waited long enough) while its source is slow to give.
 * The source is asked for its next value only once the reader took the
 * last one, as a plain loop would; stopping the loop stops the source.
 *
 * @example
 * ```ts
 * import { TICK, ticking } from "./_concurrently.ts";
 *
 * async function* slow() {
 *   await new Promise((r) => setTimeout(r, 50));
 *   yield "late";
 * }
 * const seen: unknown[] = [];
 * for await (const v of ticking(slow(), () => seen.length === 0 ? Date.now() : undefined)) {
 *   seen.push(v);
 * }
 * if (seen[0] !== TICK || seen[1] !== "late") throw new Error(String(seen));
 * ```
 */
export async function* ticking<T>(
  source: AsyncIterator<T>,
  due: () => number | undefined,
): AsyncGenerator<T | typeof TICK> {
  let next: Promise<IteratorResult<T>> | undefined;
  try {
    for (;;) {
      next ??= source.next();
      const at = due();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const result = at === undefined ? await next : await Promise.race([
        next,
        new Promise<typeof TICK>((resolve) => {
          timer = setTimeout(() => resolve(TICK), Math.max(0, at - Date.now()));
        }),
      ]);
      clearTimeout(timer);
      if (result === TICK) {
        yield TICK;
        continue;
      }
      next = undefined;
      if (result.done) return;
      yield result.value;
    }
  } finally {
    // A value asked for and not taken is let go; its failure is the source's own to end with.
    next?.catch(() => {});
    await source.return?.(undefined);
  }
}
