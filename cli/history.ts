import type { Redis } from "ioredis";
import type { FlowKeys } from "../engine/redis/keys.ts";

/** Minutes of history kept: the last 24 h. */
export const HISTORY_MINUTES = 1440;

/** One minute's counts: field ("<stage>:out", "tokens", ...) -> how many in that minute. */
export interface Minute {
  /** Minute number: ms since epoch / 60000, floored. */
  t: number;
  counts: Record<string, number>;
}

/**
 * Per-minute counts of the last 24 h, for the dashboard's sparklines. A
 * memory flow keeps them in this process; a durable flow in Redis, one
 * hash per minute with a 25 h TTL (so it is bounded, and `reset` removes
 * it with the flow's other keys). HINCRBY adds, so every process of a
 * flow adds its counts to the same minute, and a restart does not blank it.
 */
export interface History {
  add(minute: number, counts: Record<string, number>): Promise<void>;
  /** Minutes with counts, oldest first, from `since` (a minute number) on. */
  read(since: number): Promise<Minute[]>;
}

export class MemoryHistory implements History {
  readonly #minutes = new Map<number, Record<string, number>>();
  add(minute: number, counts: Record<string, number>): Promise<void> {
    const into = this.#minutes.get(minute) ?? {};
    for (const [k, n] of Object.entries(counts)) into[k] = (into[k] ?? 0) + n;
    this.#minutes.set(minute, into);
    for (const t of this.#minutes.keys()) {
      if (t <= minute - HISTORY_MINUTES) this.#minutes.delete(t);
    }
    return Promise.resolve();
  }
  read(since: number): Promise<Minute[]> {
    return Promise.resolve(
      [...this.#minutes].filter(([t]) => t >= since).sort(([a], [b]) => a - b)
        .map(([t, counts]) => ({ t, counts: { ...counts } })),
    );
  }
}

export class RedisHistory implements History {
  constructor(readonly redis: Redis, readonly keys: FlowKeys) {}
  async add(minute: number, counts: Record<string, number>): Promise<void> {
    const key = this.keys.history(minute);
    const tx = this.redis.multi();
    for (const [k, n] of Object.entries(counts)) if (n) tx.hincrby(key, k, n);
    tx.expire(key, (HISTORY_MINUTES + 60) * 60);
    await tx.exec();
  }
  async read(since: number): Promise<Minute[]> {
    const now = Math.floor(Date.now() / 60_000);
    const from = Math.max(since, now - HISTORY_MINUTES + 1);
    const pipe = this.redis.pipeline();
    for (let t = from; t <= now; t++) pipe.hgetall(this.keys.history(t));
    const replies = (await pipe.exec()) ?? [];
    const out: Minute[] = [];
    replies.forEach(([error, value], i) => {
      const hash = value as Record<string, string> | null;
      if (error || !hash || Object.keys(hash).length === 0) return;
      const counts: Record<string, number> = {};
      for (const [k, v] of Object.entries(hash)) counts[k] = Number(v);
      out.push({ t: from + i, counts });
    });
    return out;
  }
}

/**
 * Samples a run's counters and adds what they rose by to the history,
 * once per `everyMs` (a minute; tests shorten it), into the minute the
 * sample was taken in. `flush` adds what is left (at the end of a run).
 */
export class HistoryRecorder {
  #last: Record<string, number> = {};
  #timer?: ReturnType<typeof setInterval>;
  #writing: Promise<void> = Promise.resolve();

  constructor(
    readonly history: History,
    readonly counters: () => Record<string, number>,
    readonly onError: (error: unknown) => void,
  ) {
    this.#last = counters();
  }

  start(everyMs = 60_000): void {
    this.#timer = setInterval(() => void this.flush(), everyMs);
  }

  /** What the counters rose by since the last flush: the current minute, not saved yet. */
  unsaved(): Record<string, number> {
    return this.#delta(this.counters());
  }

  #delta(now: Record<string, number>): Record<string, number> {
    const delta: Record<string, number> = {};
    for (const [k, n] of Object.entries(now)) {
      const d = n - (this.#last[k] ?? 0);
      if (d > 0) delta[k] = d;
    }
    return delta;
  }

  flush(): Promise<void> {
    const now = this.counters();
    const delta = this.#delta(now);
    // The highest each counter reached: one the engine took back (an item counted emitted that
    // a durable commit dead-lettered) and that rose again was counted twice.
    for (const [k, n] of Object.entries(now)) this.#last[k] = Math.max(n, this.#last[k] ?? 0);
    const minute = Math.floor(Date.now() / 60_000);
    if (Object.keys(delta).length === 0) return this.#writing;
    // Bounded: a run that ends while Redis is away must not wait on it.
    this.#writing = this.#writing.then(() => within(this.history.add(minute, delta), 2000))
      .catch(this.onError);
    return this.#writing;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
