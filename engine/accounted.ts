import type { Actor, Outcome, StageContext } from "./actor.ts";
import { PermanentError } from "./errors.ts";
import { checkOwnEmitted } from "./emitted.ts";
import type { Envelope } from "./item.ts";
import type { StageSpec } from "./registry.ts";
import { unaccounted, UNSAID } from "./stage_runner.ts";

/**
 * The actor a flow runs for a stage: a built-in's as it is, and one of the
 * user's own (a step module, a stage registered in code) held to account
 * (`accounted`), unless its spec says it leaves its inputs alone.
 */
export function heldToAccount<A extends Actor<never, never>>(spec: StageSpec, actor: A): A {
  return spec.leavesInputs === true ? actor : accounted(actor) as unknown as A;
}

/**
 * A stage of the user's own (a step module, a stage registered in code),
 * held to account item by item, which the engine's counts cannot do for
 * every stage at no cost:
 *
 * - Each try of a batch is handed copies of its items (copyItem: payloads
 *   copied to the bottom, and vectors), and what it rejects goes to dead
 *   letters as it was given. A stage that changes its input in place
 *   (`item.payload.tags.push(x)`, `{ ...item.payload }` and then a nested
 *   array changed) had its changes kept through the retries and the split
 *   of a failing batch: a good item of a batch holding a bad one was tagged
 *   once per try, and its dead letter held the changed item, which a replay
 *   would change again.
 *
 * - Two items emitted under one id for one input (`{ ...item, payload }`
 *   twice) fail that input, with how to give each its own id. Sinks keep
 *   one item per id, so one of them was lost unsaid: the JSONL sink kept
 *   the first, a collecting test sink the last.
 * - An input both emitted and rejected fails, as a stage's mistake: the
 *   item went on and to dead letters, whence a replay sent it again.
 * - An input that left no trace (neither emitted, dropped nor rejected) is
 *   dropped as "not passed on" and said once, though another input made two
 *   items: counts alone (2 in, 2 out) hid it.
 *
 * An output is traced to its input by the ingestion event it carries, which
 * `{ ...item, ... }` keeps. An item the stage made with `envelope()` traces
 * to no input, so an input it was made from is not accounted for by it: a
 * stage that folds inputs into an item of its own drops them with a reason,
 * or they are dropped "not passed on" and said. Before, any such item turned
 * the trace off for its batch, and an input forgotten beside it was lost
 * without a word (in 10, out 10). A merge update is not checked: it shares
 * its story's id by design. A redelivered or retried batch makes the same
 * outputs, so both checks answer alike on every try.
 */
export function accounted<I, O>(actor: Actor<I, O>): Actor<I, O> {
  if ((actor as { [ACCOUNTED]?: true })[ACCOUNTED]) return actor;
  let said = false, saidUncopied = false;
  const settle = (
    batch: readonly Envelope<I>[],
    trace: Trace,
    out: Outcome<O>,
    ctx: StageContext,
  ) => {
    // A try given up on (its batchTimeout passed, or the run stopped hard) is no one's to count:
    // its late end said its inputs were "neither emitted, dropped nor rejected".
    if (ctx.signal.aborted) return;
    if (trace.twice) {
      const { id, count } = trace.twice;
      throw new PermanentError(
        `emitted ${count} items with the id ${id} for one input: give each its own id, such as ` +
          "{ ...item, id: itemId(payload), payload } (itemId from millrace's mod.ts), as sinks " +
          "keep one item per id",
      );
    }
    if (trace.both !== undefined) {
      throw new PermanentError(
        `emitted an item for one input and rejected it too (id ${trace.both}): the item went ` +
          "on and to dead letters both, whence a replay would send it on again; emit it or " +
          "reject it",
      );
    }
    let forgotten = 0;
    for (const item of batch) {
      if (trace.events.has(item.event)) continue;
      out.drop(item, UNSAID);
      forgotten++;
    }
    if (forgotten > 0 && !said) {
      said = true;
      const hint = trace.madeOwn(batch)
        ? "; an item made with envelope() traces to no input: emit one made from an input as " +
          "{ ...item, id: itemId(payload), payload }, or drop the inputs it stands for"
        : "";
      ctx.log.warn(
        `${ctx.flow}/${ctx.stage}: ${unaccounted(forgotten, batch.length)}${hint} (said once)`,
      );
    }
  };
  const held: Actor<I, O> & { [ACCOUNTED]: true } = {
    [ACCOUNTED]: true,
    window: actor.window,
    updates: actor.updates,
    open: actor.open ? (ctx) => actor.open!(ctx) : undefined,
    close: actor.close ? () => actor.close!() : undefined,
    handle(batch, out, ctx) {
      const trace = new Trace(batch, out);
      const copies = batch.map(copyItem);
      if (!saidUncopied && copies.some((c, i) => c === batch[i])) {
        saidUncopied = true;
        ctx.log.warn(
          `${ctx.flow}/${ctx.stage}: an item too large to copy (over ${COPY_BUDGET} values, or ` +
            `${COPY_DEPTH} levels deep, or holding itself) was handed to the stage as it is: a ` +
            `change it makes to it in place stays through a retry (said once)`,
        );
      }
      const done = actor.handle(copies, trace, ctx);
      if (done instanceof Promise) return done.then(() => settle(batch, trace, out, ctx));
      settle(batch, trace, out, ctx);
    },
  };
  return held;
}

/** Marks an actor `accounted` made, so that it is not wrapped twice. */
const ACCOUNTED = Symbol("accounted");

/**
 * Nodes a copy of one payload may make, and how deep it may go: past
 * either, the stage is given the item itself (a cycle, a huge document),
 * so no item can hold the stage in the copy or overflow the stack.
 */
const COPY_BUDGET = 100_000, COPY_DEPTH = 200;

/**
 * `item` with its payload copied to the bottom, and its vector: plain
 * objects, arrays and Dates are copied, anything else (a Map, a class's
 * instance) is shared; a payload past the budget is not copied at all (the
 * item itself is returned).
 */
export function copyItem<T>(item: Envelope<T>): Envelope<T> {
  if (item === null || typeof item !== "object") return item;
  const budget = { left: COPY_BUDGET };
  const payload = copyValue(item.payload, budget, 0);
  if (budget.left < 0) return item;
  const copy = { ...item, payload: payload as T };
  if (Array.isArray(item.vector)) copy.vector = item.vector.slice();
  return copy;
}

function copyValue(v: unknown, budget: { left: number }, depth: number): unknown {
  if (v === null || typeof v !== "object" || --budget.left < 0) return v;
  if (depth > COPY_DEPTH) {
    budget.left = -1;
    return v;
  }
  if (Array.isArray(v)) {
    const out = new Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = copyValue(v[i], budget, depth + 1);
    return out;
  }
  if (v instanceof Date) return new Date(v.getTime());
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    out[k] = copyValue((v as Record<string, unknown>)[k], budget, depth + 1);
  }
  return out;
}

/** An Outcome that passes everything on and notes which inputs it heard of, and ids said twice. */
class Trace implements Outcome<never> {
  readonly #batch: readonly Envelope<unknown>[];
  /**
   * The inputs as given, by id and event, made at the first drop or reject
   * (a batch that only emits needs none): what is rejected or dropped goes
   * on as it came.
   */
  #given?: Map<string, Envelope<unknown>>;
  readonly #out: Outcome<never>;
  /** Events of the inputs emitted, dropped or rejected. */
  readonly events = new Set<string>();
  /** Outputs by id and event, counted. */
  readonly #emitted = new Map<string, number>();
  twice?: { id: string; count: number };
  /** The id of an input both emitted and rejected. */
  both?: string;
  /** Inputs rejected, by id and event. */
  readonly #rejected = new Set<string>();

  constructor(batch: readonly Envelope<unknown>[], out: Outcome<never>) {
    this.#batch = batch;
    this.#out = out;
  }

  /** Whether some output carries an event none of `batch` had: an item made with envelope(). */
  madeOwn(batch: readonly Envelope<unknown>[]): boolean {
    const given = new Set(batch.map((item) => item.event));
    for (const key of this.#emitted.keys()) {
      if (!given.has(key.slice(key.lastIndexOf(" ") + 1))) return true;
    }
    return false;
  }

  /** The input `item` is a copy of, or `item` itself (a stage may make a new one). */
  #asGiven(item: Envelope<unknown>): Envelope<unknown> {
    if (item === null || typeof item !== "object") return item;
    this.#given ??= new Map(this.#batch.map((given) => [`${given.id} ${given.event}`, given]));
    return this.#given.get(`${item.id} ${item.event}`) ?? item;
  }

  emit(item: Envelope<never>): void {
    checkOwnEmitted(item); // a payload JSON would mangle (a Map, a URL) too
    this.#out.emit(item); // checks it is an envelope first
    if (item.update === true) return;
    this.events.add(item.event);
    const key = `${item.id} ${item.event}`;
    if (this.#rejected.has(key)) this.both ??= item.id;
    const count = (this.#emitted.get(key) ?? 0) + 1;
    this.#emitted.set(key, count);
    if (count > 1 && (this.twice === undefined || this.twice.id === item.id)) {
      this.twice = { id: item.id, count };
    }
  }

  drop(item: Envelope<unknown>, reason: string, detail?: string): void {
    this.#out.drop(this.#asGiven(item), reason, detail);
    if (item !== null && typeof item === "object") this.events.add(item.event);
  }

  reject(item: Envelope<unknown>, reason: string, detail?: string): void {
    this.#out.reject(this.#asGiven(item), reason, detail);
    if (item === null || typeof item !== "object") return;
    this.events.add(item.event);
    const key = `${item.id} ${item.event}`;
    this.#rejected.add(key);
    if (this.#emitted.has(key)) this.both ??= item.id;
  }
}
