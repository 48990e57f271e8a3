import type { Envelope, RawItem } from "./item.ts";
import type { Logger } from "./log.ts";
import type { WindowOptions } from "./window.ts";

/**
 * What a stage says about each item of a batch. A collector rather than a
 * returned array: the hot path pushes into arrays the runner already owns and
 * allocates nothing per item beyond the output itself.
 */
export interface Outcome<O = RawItem> {
  /** Pass an item on to the next stage (zero, one or many per input). */
  emit(item: Envelope<O>): void;
  /**
   * Filter an item out on purpose (a duplicate): counted, not dead-lettered.
   * `reason` is a short label that summaries count by ("near-duplicate");
   * `detail`, when given, is the whole message kept with the item
   * ("near-duplicate of 3f2a…").
   */
  drop(item: Envelope<unknown>, reason: string, detail?: string): void;
  /** Refuse a bad item: counted by `reason`, sent to dead letters with `detail` (else `reason`), never retried. */
  reject(item: Envelope<unknown>, reason: string, detail?: string): void;
}

/** What a stage sees of the running flow. */
export interface StageContext {
  /** The flow name, for log lines and keys. */
  readonly flow: string;
  /** The stage id, e.g. "validate" or "embed#2" when a kind repeats. */
  readonly stage: string;
  /** Aborts when the flow is killed: long calls (HTTP, embeddings) should pass it on. */
  readonly signal: AbortSignal;
  /** The run's logger. */
  readonly log: Logger;
  /**
   * Counts what the stage spends on an outside service (`tokens`,
   * `requests`, `cached`), shown per stage in the run's report. Absent
   * where nothing keeps count (an actor called by hand).
   */
  readonly tally?: (name: string, n: number) => void;
}

/**
 * A pipeline stage. `handle` takes a batch and reports per item through
 * `out`. It may throw: the runner retries the batch with backoff, then splits
 * it to find the bad item, which alone goes to dead letters. Outputs of an
 * attempt that threw are discarded, so `handle` must not emit before it is
 * sure, and must be safe to call again with the same items.
 */
export interface Actor<I = RawItem, O = RawItem> {
  /**
   * A batch window in front of `handle`, when it depends on the actor
   * itself (the Embedder weighs items by the tokens it will send); else the
   * stage spec's `window(config)` gives it.
   */
  readonly window?: WindowOptions;
  /**
   * The actor takes merge updates (envelopes with `update`, engine/item.ts)
   * in its batches: the publish stage, which writes them to its sinks.
   * Otherwise the runner passes them on untouched, after the batch's other
   * outputs, so an enricher or an embedder never sees one and never pays
   * for one (an update's text did not change).
   */
  readonly updates?: boolean;
  /**
   * Called once before the first batch: connect, load, check; throwing stops the flow before it
   * starts.
   */
  open?(ctx: StageContext): void | Promise<void>;
  /**
   * Handles one batch, saying for each item emit, drop or reject through `out`; may throw, and is
   * then retried.
   */
  handle(batch: readonly Envelope<I>[], out: Outcome<O>, ctx: StageContext): void | Promise<void>;
  /** Called once after the last batch, also on shutdown. */
  close?(): void | Promise<void>;
}

/**
 * What is wrong with what a stage's create() returned, or undefined when it
 * is an actor. A stage's own code is not type-checked (a step module): a
 * create that returns nothing, or an object whose handle is misspelt, would
 * fail every batch at run time, so a flow's build and runStage refuse it.
 */
export function actorProblem(made: unknown): string | undefined {
  if (typeof (made as Partial<Actor> | undefined)?.handle === "function") return undefined;
  const what = made === undefined || made === null
    ? `${made}, not an actor`
    : "an actor with no handle(batch, out) function";
  return `its create() returned ${what}: return { handle(batch, out) { ... } }`;
}
