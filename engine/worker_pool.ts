import type { Actor, Outcome, StageContext } from "./actor.ts";
import { errorMessage, FlowEndingError } from "./errors.ts";
import type { Envelope } from "./item.ts";
import { nestedPast } from "./nested_past.ts";
import {
  type HostError,
  type HostReply,
  type HostRequest,
  type ItemRef,
  type Said,
  type StageBuild,
  unpackVector,
} from "./stage_host.ts";

type Item = Envelope<unknown>;

/** How a pool builds its stage in each worker. */
export interface PoolOptions extends StageBuild {
  /** The module the workers run (Registry.worker.module). */
  module: URL;
  workers: number;
}

interface Waiting {
  id: number;
  items: readonly Item[];
  out: Outcome<unknown>;
  resolve(): void;
  reject(error: unknown): void;
}

/** One worker thread and the batches it was sent and has not answered. */
class Thread {
  readonly worker: Worker;
  /** In the order sent, which is the order the worker runs them (one after another). */
  readonly waiting = new Map<number, Waiting>();
  opened: Promise<void>;
  dead?: Error;
  readonly #open: { resolve(): void; reject(e: unknown): void };
  readonly #orphaned: (w: Waiting) => void;

  /** `orphaned` takes the batches a dying worker held but had not started. */
  constructor(opts: PoolOptions, ctx: StageContext, orphaned: (w: Waiting) => void) {
    this.#orphaned = orphaned;
    // Permissions: a Deno worker inherits the main thread's by default.
    this.worker = new Worker(opts.module, { type: "module", name: `${opts.flow}/${opts.stage}` });
    let open!: { resolve(): void; reject(e: unknown): void };
    this.opened = new Promise((resolve, reject) => open = { resolve, reject });
    this.#open = open;
    const where = `${opts.flow}/${opts.stage}`;
    this.worker.onmessage = ({ data }: MessageEvent<HostReply>) => {
      switch (data.type) {
        case "opened":
          return open.resolve();
        case "open-failed":
          return this.#die(rebuild(data.error));
        case "exited":
          return this.#die(new Error(`${where}: stage worker exited: ${data.how}`));
        case "log":
          return ctx.log[data.level]?.(data.msg, data.fields);
        case "tally":
          return ctx.tally?.(data.name, data.n);
        case "done":
        case "failed": {
          const w = this.waiting.get(data.id);
          if (!w) return;
          this.waiting.delete(data.id);
          if (data.type === "failed") return w.reject(rebuild(data.error));
          try {
            replay(data.said, w.items, w.out);
            w.resolve();
          } catch (e) {
            w.reject(e);
          }
        }
      }
    };
    // Running out of heap is not caught here: V8 ends the whole process,
    // as on the main thread (each isolate has the run's old-space limit;
    // a stage worker holds only the batches in hand, so it is the main
    // thread's state that reaches it, and cli/heap_watch.ts warns of that).
    this.worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#die(new Error(`${where}: stage worker died: ${event.message}`));
    };
    const { module: _module, workers: _workers, ...build } = opts;
    const request: HostRequest = { type: "open", ...build };
    this.worker.postMessage(request);
  }

  /** Sends a batch; throws, holding nothing, when structured clone cannot copy it. */
  send(w: Waiting): void {
    const deep = w.items.findIndex((item) => nestedPast(item, MAX_DEPTH));
    if (deep >= 0) {
      throw new Error(`item ${(w.items[deep] as Item).id} nests past ${MAX_DEPTH} levels`);
    }
    this.waiting.set(w.id, w);
    try {
      const request: HostRequest = { type: "batch", id: w.id, items: w.items as Item[] };
      this.worker.postMessage(request);
    } catch (error) {
      this.waiting.delete(w.id);
      throw error;
    }
  }

  /**
   * A worker that died (an uncaught error, Deno.exit, self.close) or could
   * not open is ended. The batch it was running, the first it was sent,
   * fails with `error` and is retried and split like any failure; the
   * batches queued behind it did nothing wrong, so they go to another
   * worker uncharged.
   */
  #die(error: Error): void {
    if (this.dead) return;
    this.dead = error;
    this.#open.reject(error);
    this.worker.terminate();
    const [running, ...queued] = this.waiting.values();
    this.waiting.clear();
    running?.reject(error);
    for (const w of queued) this.#orphaned(w);
  }
}

/**
 * How deep an item may nest to be sent to a worker. Deno takes a message
 * nested some 2,700 to 3,900 levels deep, then drops it unread in the
 * worker, with no error on either side: the batch was waited for for ever
 * (deeper, postMessage throws). Far below that, and far above what data
 * nests, such a batch runs on the main thread as one postMessage refuses.
 */
const MAX_DEPTH = 1000;

/**
 * An actor whose `handle` runs in one of N Web Workers, each holding its
 * own copy of the stage built from kind and config (engine/stage_host.ts).
 * It is an actor like any other to the stage runner, so retries, the split
 * down to a bad item, dead letters and counts happen on the main thread
 * exactly as without workers: each retry and each half of a split batch is
 * one more call, sent to the least busy worker. Batches travel by
 * structured clone; the stage loop bounds how many are in flight. A batch
 * structured clone cannot copy (a symbol or a function in an item), or
 * that nests past MAX_DEPTH, runs on `local`, the main
 * thread's own copy of the stage, as it would without workers.
 */
export function workerPool(
  opts: PoolOptions,
  local: Actor<unknown, unknown>,
): Actor<unknown, unknown> {
  const threads: Thread[] = [];
  let ctx: StageContext;
  let next = 0;
  let closed = false;
  const where = `${opts.flow}/${opts.stage}`;

  const spawn = async (i: number) => {
    const thread = new Thread(opts, ctx, orphaned);
    threads[i] = thread;
    await thread.opened;
    return thread;
  };
  /** The live worker with the fewest batches in hand; a dead one is replaced. */
  const pick = async (): Promise<Thread> => {
    let best = -1;
    for (let i = 0; i < threads.length; i++) {
      if (threads[i].dead) return await spawn(i);
      if (best < 0 || threads[i].waiting.size < threads[best].waiting.size) best = i;
    }
    await threads[best].opened;
    return threads[best];
  };
  /** A batch a dead worker held unstarted, sent again (it was copied once, so it copies again). */
  const orphaned = (w: Waiting) => {
    if (closed) return w.reject(new Error(`${where}: the stage closed`));
    pick().then((thread) => thread.send(w)).catch(w.reject);
  };

  return {
    async open(c) {
      ctx = c;
      await Promise.all(Array.from({ length: opts.workers }, (_, i) => spawn(i)));
    },
    async handle(items, out, c) {
      const thread = await pick();
      let w!: Waiting;
      const done = new Promise<void>((resolve, reject) => {
        w = { id: next++, items, out, resolve, reject };
      });
      try {
        thread.send(w);
      } catch (error) {
        c.log.debug?.(
          `${where}: a batch of ${items.length} ran on the main thread: ` +
            `a worker cannot be sent it (${errorMessage(error)})`,
        );
        return await local.handle(items, out, c);
      }
      await done;
    },
    close() {
      closed = true;
      for (const t of threads) {
        t.worker.terminate();
        const gone = new Error(`${where}: the stage closed`);
        for (const w of t.waiting.values()) w.reject(gone);
        t.waiting.clear();
      }
    },
  };
}

/** Says on the main thread what `handle` said in the worker, on the original items. */
export function replay(said: Said[], items: readonly Item[], out: Outcome<unknown>): void {
  const item = (ref: ItemRef): Item => {
    if (typeof ref === "number") return items[ref];
    if (!Array.isArray(ref)) return ref;
    const [of, envelope, payload] = ref;
    const from = items[of];
    const rebuilt = payload
      ? { ...from, ...envelope, payload: { ...(from.payload as object), ...payload } }
      : { ...from, ...envelope };
    if ("vector" in envelope) rebuilt.vector = unpackVector(envelope.vector) as number[];
    return rebuilt;
  };
  for (const s of said) {
    if (s[0] === "emit") out.emit(item(s[1]));
    else if (s[0] === "drop") out.drop(item(s[1]), s[2], s[3]);
    else out.reject(item(s[1]), s[2], s[3]);
  }
}

/** The worker's error as the stage runner reads errors: its message and hints (RetryHint). */
export function rebuild(e: HostError): Error {
  if (e.ending) return new FlowEndingError(e.message);
  const error = new Error(e.message);
  error.name = e.name;
  // No frames of this thread's: where the worker's code failed is in the message (thrownAt).
  error.stack = `${e.name}: ${e.message}`;
  if (e.retryable === false) Object.assign(error, { retryable: false });
  for (const hint of ["outage", "away", "service"] as const) {
    if (e[hint]) Object.assign(error, { [hint]: true });
  }
  return error;
}
