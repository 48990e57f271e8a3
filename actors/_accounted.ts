import type { Actor, Outcome, StageContext } from "../engine/actor.ts";
import { PermanentError } from "../engine/errors.ts";
import type { Envelope } from "../engine/item.ts";
import { unaccounted, UNSAID } from "../engine/stage_runner.ts";

/**
 * A stage of the user's own (a step module), held to account item by item,
 * which the engine's counts cannot do for every stage at no cost:
 *
 * - Two items emitted under one id for one input (`{ ...item, payload }`
 *   twice) fail that input, with how to give each its own id. Sinks keep
 *   one item per id, so one of them was lost unsaid: the JSONL sink kept
 *   the first, a collecting test sink the last.
 * - An input that left no trace (neither emitted, dropped nor rejected) is
 *   dropped as "not passed on" and said once, though another input made two
 *   items: counts alone (2 in, 2 out) hid it.
 *
 * An output is traced to its input by the ingestion event it carries, which
 * `{ ...item, ... }` keeps. When some output carries an event no input had
 * (the stage made envelopes of its own), items cannot be traced and only
 * the stage runner's count holds; nor is a merge update checked, which
 * shares its story's id by design. A redelivered or retried batch makes the
 * same outputs, so both checks answer alike on every try.
 */
export function accounted<I, O>(actor: Actor<I, O>): Actor<I, O> {
  let said = false;
  const settle = (
    batch: readonly Envelope<I>[],
    trace: Trace,
    out: Outcome<O>,
    ctx: StageContext,
  ) => {
    if (trace.twice) {
      const { id, count } = trace.twice;
      throw new PermanentError(
        `emitted ${count} items with the id ${id} for one input: give each its own id, such as ` +
          "{ ...item, id: itemId(payload), payload } (itemId from millrace's mod.ts), as sinks " +
          "keep one item per id",
      );
    }
    if (trace.foreign) return;
    let forgotten = 0;
    for (const item of batch) {
      if (trace.events.has(item.event)) continue;
      out.drop(item, UNSAID);
      forgotten++;
    }
    if (forgotten > 0 && !said) {
      said = true;
      ctx.log.warn(`${ctx.flow}/${ctx.stage}: ${unaccounted(forgotten, batch.length)} (said once)`);
    }
  };
  return {
    window: actor.window,
    updates: actor.updates,
    open: actor.open ? (ctx) => actor.open!(ctx) : undefined,
    close: actor.close ? () => actor.close!() : undefined,
    handle(batch, out, ctx) {
      const trace = new Trace(batch, out);
      const done = actor.handle(batch, trace, ctx);
      if (done instanceof Promise) return done.then(() => settle(batch, trace, out, ctx));
      settle(batch, trace, out, ctx);
    },
  };
}

/** An Outcome that passes everything on and notes which inputs it heard of, and ids said twice. */
class Trace implements Outcome<never> {
  readonly #inputs: Set<string>;
  readonly #out: Outcome<never>;
  /** Events of the inputs emitted, dropped or rejected. */
  readonly events = new Set<string>();
  /** Outputs by id and event, counted. */
  readonly #emitted = new Map<string, number>();
  /** Some output carries an event no input had: outputs cannot be traced to inputs. */
  foreign = false;
  twice?: { id: string; count: number };

  constructor(batch: readonly Envelope<unknown>[], out: Outcome<never>) {
    this.#inputs = new Set(batch.map((item) => item.event));
    this.#out = out;
  }

  emit(item: Envelope<never>): void {
    this.#out.emit(item); // checks it is an envelope first
    if (item.update === true) return;
    if (!this.#inputs.has(item.event)) this.foreign = true;
    this.events.add(item.event);
    const key = `${item.id} ${item.event}`;
    const count = (this.#emitted.get(key) ?? 0) + 1;
    this.#emitted.set(key, count);
    if (count > 1 && (this.twice === undefined || this.twice.id === item.id)) {
      this.twice = { id: item.id, count };
    }
  }

  drop(item: Envelope<unknown>, reason: string, detail?: string): void {
    this.#out.drop(item, reason, detail);
    if (item !== null && typeof item === "object") this.events.add(item.event);
  }

  reject(item: Envelope<unknown>, reason: string, detail?: string): void {
    this.#out.reject(item, reason, detail);
    if (item !== null && typeof item === "object") this.events.add(item.event);
  }
}
