import type { Delivery, Edge, Fence } from "./edge.ts";
import type { Envelope } from "./item.ts";
import { type BatchResult, runBatch, type StageWork } from "./stage_runner.ts";
import { tracedBatch } from "./trace.ts";
import { type Batch, chunks, Window, type WindowOptions } from "./window.ts";

type Item = Envelope<unknown>;

/** One step of a flow: what it runs, and the edge it reads and commits through. */
export interface StageLoop<D extends Delivery = Delivery> {
  /** One stage, or several cheap ones fused (run back to back on each batch). */
  stages: readonly StageWork[];
  edge: Edge<D>;
  window?: WindowOptions;
  /**
   * Batches handled at once. A pipelined step of several stages takes its
   * stages' own instead (StageWork.concurrency), each at its own stage.
   */
  concurrency: number;
  /** Commit batches in the order they were read, however they finish (see BuiltStage). */
  ordered?: boolean;
  /**
   * For an edge whose commit is a round trip: keep each stage's batches
   * and one committing in hand (see runStageLoop). A step of one stage at
   * concurrency above 1 already keeps that many batches out, and is not.
   */
  pipelined?: boolean;
}

/**
 * The one stage loop, whatever the edge: reads deliveries, gathers them in
 * the window (hard limits on size and weight, flushed at maxWait), keeps up
 * to `concurrency` batches in hand, runs each through the stages (retries,
 * then the split down to the bad item: stage_runner.ts) and commits what it
 * became to the edge. Urgent and redelivered deliveries skip the window and
 * go at once, cut within its limits and committed whole. When the edge has
 * nothing more (closed, or the flow stopping) the window flushes, batches
 * in hand finish, and the loop closes the edge.
 *
 * Pipelined (a Redis edge's steps), the loop keeps each stage's batches
 * and one committing in hand: each stage takes its batches in read order,
 * as many at once as its own concurrency allows (Turns: one, for a
 * deduper, which so sees what it would unpipelined; two per worker for a
 * stage on workers), and the commits go out in read order; the next
 * batches run while the last one's commit, and each stage's Redis calls,
 * are out. An urgent or redelivered delivery waits for those batches and
 * runs alone, as it does unpipelined.
 *
 * A batch that goes through without waiting (a synchronous actor, room on
 * the next channel) costs no promise at all: the loop drains what its
 * input holds in one go, which keeps memory edges near empty, so items die
 * young and cheap instead of being promoted by the GC while they queue.
 */
export async function runStageLoop<D extends Delivery>(loop: StageLoop<D>): Promise<void> {
  const { edge, stages } = loop;
  // In a step of several stages each stage keeps its own concurrency, so a
  // deduper fused before a stage on workers still takes one batch at a time.
  const pipelined = loop.pipelined === true && (stages.length > 1 || loop.concurrency === 1);
  const widths = stages.map((s) => Math.max(1, s.concurrency ?? 1));
  const concurrency = pipelined ? widths.reduce((a, b) => a + b, 1) : loop.concurrency;
  const ordered = pipelined || loop.ordered === true;
  const turns = pipelined ? widths.map((w) => new Turns(w)) : undefined;
  let seq = 0;
  const inflight = new Set<Promise<void>>();
  const failed: { error?: unknown; at?: true } = {};
  // Aborted when a batch in flight fails: a read waiting for items that may
  // never come (a quiet source, or a durable flow whose drain waits on the
  // failed batch's own entries) must not keep the failure from the flow.
  const failing = new AbortController();
  const read = (timeout?: number): Promise<D[] | "timeout" | undefined> => {
    const reading = edge.read(timeout);
    if (concurrency === 1) return reading;
    // A listener per read, removed when it settles: racing each read with
    // one long-lived promise would keep every race alive as long as the loop.
    return new Promise((resolve, reject) => {
      const onFail = () => reject(failed.error);
      failing.signal.addEventListener("abort", onFail, { once: true });
      reading.then(resolve, reject).finally(() =>
        failing.signal.removeEventListener("abort", onFail)
      );
    });
  };

  // The last commit of an ordered loop: the next one waits for it. Once a
  // batch has failed, none behind it commits: the loop is failing, and a
  // later batch committed before an earlier one would break read order.
  let previous: Promise<unknown> = Promise.resolve();
  let broken: { error: unknown } | undefined;
  const handle = (deliveries: readonly D[], items: Item[], partial?: Batch<D>["partial"]) => {
    const commit = (r: BatchResult) =>
      edge.commit(partial ? { deliveries, ...r, partial } : { deliveries, ...r });
    const order = turns && { turns, seq: seq++ };
    const held = partial ? [...deliveries, partial.delivery] : deliveries;
    const result = runStages(stages, items, edge.fence?.(held), order);
    if (ordered) {
      const committed = Promise.all([result, previous]).then(([r]) => {
        if (broken) throw broken.error;
        return commit(r);
      });
      previous = committed.catch((error) => void (broken ??= { error }));
      return committed;
    }
    return result instanceof Promise ? result.then(commit) : commit(result);
  };
  /** Returns a promise only when the loop has to wait before reading on. */
  const submit = (pending: void | Promise<void>): void | Promise<void> => {
    if (!pending) return;
    if (concurrency === 1) return pending;
    const p: Promise<void> = pending.finally(() => inflight.delete(p));
    p.catch((error) => {
      if (!failed.at) Object.assign(failed, { error, at: true });
      failing.abort();
    });
    inflight.add(p);
    if (inflight.size >= concurrency) return Promise.race(inflight).catch(() => {});
  };
  /** An urgent or redelivered delivery: at once, in chunks the window allows, one commit. */
  const atOnce = async (d: D) => {
    const out: Item[] = [];
    const letters = [];
    const fence = edge.fence?.([d]);
    for (const chunk of chunks(d.items, loop.window)) {
      const r = await runStages(stages, chunk, fence);
      for (const item of r.out) out.push(item);
      letters.push(...r.letters);
    }
    await edge.commit({ deliveries: [d], out, letters });
  };

  const window = loop.window && new Window<D>(loop.window);
  try {
    for (;;) {
      if (failed.at) throw failed.error;
      const deadline = window?.deadline;
      const timeout = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
      const got = edge.tryRead?.() ?? await read(timeout);
      if (got === undefined) break;
      if (got !== "timeout") {
        for (const d of got) {
          if ((d.alone || d.urgent) && pipelined) await Promise.allSettled(inflight);
          if (d.alone && edge.alone) await edge.alone(d, () => atOnce(d));
          else if (d.alone || d.urgent) await atOnce(d);
          else if (!window) {
            const wait = submit(handle([d], d.items));
            if (wait) await wait;
          } else {
            for (const b of window.add(d, Date.now())) {
              const wait = submit(handle(b.deliveries, b.items, b.partial));
              if (wait) await wait;
            }
          }
        }
      }
      const due = window?.deadline;
      if (due !== undefined && due <= Date.now()) {
        const b = window!.flush()!;
        const wait = submit(handle(b.deliveries, b.items));
        if (wait) await wait;
      }
    }
    const last = window?.flush();
    if (last) await submit(handle(last.deliveries, last.items));
    await Promise.all(inflight);
    if (failed.at) throw failed.error;
  } finally {
    await Promise.allSettled(inflight);
    await edge.close?.();
  }
}

/** A batch through one stage, in its span (trace.ts). */
function traced(
  stage: StageWork,
  items: Item[],
  fence?: Fence,
): BatchResult | Promise<BatchResult> {
  return tracedBatch(stage.ctx, items, () => runBatch(stage, items, fence));
}

/**
 * A batch through each stage in turn; synchronous as long as each stage is
 * (and `fence`, checked before every try, is).
 * A fused stage after the first gets what the one before it emitted, in
 * batches its own window allows: its size and weight stay hard limits.
 */
function runStages(
  stages: readonly StageWork[],
  items: Item[],
  fence?: Fence,
  order?: { turns: Turns[]; seq: number },
): BatchResult | Promise<BatchResult> {
  if (stages.length === 1 && !order) return traced(stages[0], items, fence);
  return (async () => {
    const result: BatchResult = { out: items, letters: [] };
    try {
      for (const [i, stage] of stages.entries()) {
        if (order) await order.turns[i].wait(order.seq);
        if (result.out.length > 0) {
          const out: Item[] = [];
          for (const batch of i === 0 ? [result.out] : chunks(result.out, stage.window)) {
            const r = await traced(stage, batch, fence);
            for (const item of r.out) out.push(item);
            for (const letter of r.letters) result.letters.push(letter);
          }
          result.out = out;
        }
        order?.turns[i].pass(order.seq);
      }
    } catch (error) {
      // The batches behind this one would wait for it for ever.
      order?.turns.forEach((t) => t.fail(error));
      throw error;
    }
    return result;
  })();
}

/**
 * Batches through one stage in the order they were numbered, at most
 * `width` at once: batch n starts once batch n - 1 has started and every
 * batch up to n - width has passed (at width 1, once batch n - 1 has
 * passed), so one slow batch holds back those `width` after it. Batches
 * may pass out of order when width is above 1; the next stage's turns put
 * them back in order.
 */
class Turns {
  readonly #width: number;
  /** The next batch to start. */
  #next = 0;
  /** Every batch numbered below it has passed. */
  #low = 0;
  /** Batches numbered above #low that have passed. */
  readonly #passed = new Set<number>();
  readonly #waiting = new Map<number, { go: () => void; fail: (e: unknown) => void }>();
  #failed?: { error: unknown };

  constructor(width: number) {
    this.#width = width;
  }

  wait(seq: number): void | Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed.error);
    if (!this.#may(seq)) return new Promise((go, fail) => this.#waiting.set(seq, { go, fail }));
    this.#next++;
    this.#wake();
  }

  pass(seq: number): void {
    this.#passed.add(seq);
    while (this.#passed.delete(this.#low)) this.#low++;
    this.#wake();
  }

  fail(error: unknown): void {
    this.#failed ??= { error };
    for (const w of this.#waiting.values()) w.fail(error);
    this.#waiting.clear();
  }

  #may(seq: number): boolean {
    return seq === this.#next && seq < this.#low + this.#width;
  }

  /** Starts the waiting batches whose turn it now is. */
  #wake(): void {
    for (let w = this.#waiting.get(this.#next); w && this.#may(this.#next);) {
      this.#waiting.delete(this.#next++);
      w.go();
      w = this.#waiting.get(this.#next);
    }
  }
}
