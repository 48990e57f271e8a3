import type { Actor, Outcome, StageContext } from "./actor.ts";
import {
  endingError,
  errorMessage,
  isAway,
  isOutage,
  isServiceFailure,
  thrownAt,
} from "./errors.ts";
import { checkEmitted } from "./emitted.ts";
import type { Envelope } from "./item.ts";
import type { Logger, LogLevel } from "./log.ts";
import type { Registry } from "./registry.ts";

type Item = Envelope<unknown>;

/** What a worker needs to build the stage as the main thread would: kind, config and where. */
export interface StageBuild {
  kind: string;
  config: unknown;
  flow: string;
  stage: string;
  baseDir: string;
  outDir: string;
}

/** What the main thread asks of a stage worker. */
export type HostRequest =
  | ({ type: "open" } & StageBuild)
  | { type: "batch"; id: number; items: Item[] };

/**
 * An item said as what changed from the batch's item `of` (same id): the
 * envelope's fields that differ, and the payload's. An enricher or an
 * embedder adds a few fields to an item whose text is most of its size, so
 * the change travels back and the text does not: cloning whole items back
 * cost the worker more time than the enrich steps themselves.
 */
export type Patch = [
  of: number,
  envelope: Record<string, unknown>,
  payload?: Record<string, unknown>,
];

/**
 * What `handle` said an item is: an item of the batch passed on unchanged
 * travels back as its index, one derived from it (same id, no field
 * removed) as a Patch, any other item whole.
 */
export type ItemRef = number | Patch | Item;

/** One thing `handle` said of one item, in the order it said it. */
export type Said =
  | [op: "emit", item: ItemRef]
  | [op: "drop", item: ItemRef, reason: string, detail?: string]
  | [op: "reject", item: ItemRef, reason: string, detail?: string];

/** An error thrown inside a worker, as far as the stage runner reads it (RetryHint). */
export interface HostError {
  message: string;
  name: string;
  retryable?: boolean;
  ending?: boolean;
  outage?: boolean;
  away?: boolean;
  service?: boolean;
}

/** What a stage worker answers. */
export type HostReply =
  | { type: "opened" }
  | { type: "open-failed"; error: HostError }
  | { type: "done"; id: number; said: Said[] }
  | { type: "failed"; id: number; error: HostError }
  | { type: "exited"; how: string }
  | { type: "log"; level: LogLevel; msg: string; fields?: Record<string, unknown> }
  | { type: "tally"; name: string; n: number };

interface Port {
  postMessage(message: HostReply, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<HostRequest>) => void) | null;
}

/**
 * The worker's side of a stage running on a pool (engine/worker_pool.ts):
 * builds the stage from its kind and config out of `registry`, as the main
 * thread would, then runs each batch it is sent through `handle` and
 * answers with what `handle` said, or with the error it threw. It keeps no
 * retries and no counts: the main thread's stage runner does those, calling
 * back in for each retry and each half of a split batch.
 */
export function serveStage(registry: Registry, port: Port = self as unknown as Port): void {
  const log = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>) =>
    port.postMessage({ type: "log", level, msg, fields });
  const logger: Logger = {
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
  };
  // What the stage spends (tokens, requests) is counted on the main thread.
  const tally = (name: string, n: number) => port.postMessage({ type: "tally", name, n });
  let actor: Actor<unknown, unknown> | undefined;
  let ctx: StageContext | undefined;
  // Batches run one after another: a worker is one core.
  let queue: Promise<void> = Promise.resolve();
  if (port === (globalThis as unknown)) sayExits(port);

  const open = async (r: Extract<HostRequest, { type: "open" }>) => {
    try {
      const spec = registry.stages.get(r.kind);
      if (!spec) throw new Error(`a stage worker knows no stage kind ${r.kind}`);
      ctx = {
        flow: r.flow,
        stage: r.stage,
        signal: new AbortController().signal,
        log: logger,
        tally,
      };
      const env = { flow: r.flow, baseDir: r.baseDir, outDir: r.outDir, log: logger, registry };
      actor = await spec.create(r.config, env);
      await actor.open?.(ctx);
      port.postMessage({ type: "opened" });
    } catch (error) {
      port.postMessage({ type: "open-failed", error: hostError(error) });
    }
  };

  const run = async (id: number, items: Item[]) => {
    const said: Said[] = [];
    const moved: ArrayBuffer[] = [];
    const index = new Map<Item, number>();
    const ids = new Map<string, number[]>();
    const taken = new Uint8Array(items.length);
    for (let i = 0; i < items.length; i++) {
      index.set(items[i], i);
      const same = ids.get(items[i].id);
      if (same) same.push(i);
      else ids.set(items[i].id, [i]);
    }
    const ref = (item: Item): ItemRef => {
      let i = index.get(item);
      if (i === undefined) {
        const same = ids.get(item.id);
        if (same === undefined) return item;
        // Derived from the first item of its id not yet said: a batch may hold an id twice.
        i = same.find((j) => taken[j] === 0) ?? same[same.length - 1];
      }
      taken[i] = 1;
      return items[i] === item ? i : patchOf(items[i], item, i, moved) ?? item;
    };
    const out: Outcome<unknown> = {
      emit: (item) => {
        checkEmitted(item);
        said.push(["emit", ref(item)]);
      },
      drop: (item, reason, detail) => void said.push(["drop", ref(item), reason, detail]),
      reject: (item, reason, detail) => void said.push(["reject", ref(item), reason, detail]),
    };
    try {
      await actor!.handle(items, out, ctx!);
      port.postMessage({ type: "done", id, said }, moved);
    } catch (error) {
      port.postMessage({ type: "failed", id, error: hostError(error) });
    }
  };

  port.onmessage = ({ data }) => {
    queue = queue.then(() => data.type === "open" ? open(data) : run(data.id, data.items));
  };
}

/**
 * Makes a worker that ends itself (Deno.exit, self.close) in a stage's
 * code say so first: a worker that just stops sends no error event, and
 * the pool would wait for its batch for ever.
 */
function sayExits(port: Port): void {
  const scope = globalThis as { close?: () => void };
  const exit = Deno.exit, close = scope.close;
  Deno.exit = ((code?: number) => {
    port.postMessage({ type: "exited", how: `Deno.exit(${code ?? ""})` });
    return exit(code);
  }) as typeof Deno.exit;
  if (close) {
    scope.close = () => {
      port.postMessage({ type: "exited", how: "self.close()" });
      close.call(globalThis);
    };
  }
}

/**
 * `item` as the changes from `from` (the batch's item `of`), or undefined
 * when a field of `from` is gone from it (a patch only adds and replaces).
 * A vector it adds travels as a Float64Array whose buffer is moved (pushed
 * on `moved`), not copied: cloning an array of 256 numbers cost the two
 * threads about 24 µs per demo item, more than the embedder that made it.
 */
function patchOf(from: Item, item: Item, of: number, moved: ArrayBuffer[]): Patch | undefined {
  const envelope = changes(
    from as unknown as Record<string, unknown>,
    item as unknown as Record<string, unknown>,
    "payload",
  );
  if (!envelope) return undefined;
  let payload: Record<string, unknown> | undefined;
  if (item.payload !== from.payload) {
    payload = isRecord(from.payload) && isRecord(item.payload)
      ? changes(from.payload, item.payload)
      : undefined;
    if (!payload) return undefined;
  }
  const packed = packVector(envelope.vector);
  if (packed) {
    envelope.vector = packed;
    moved.push(packed.buffer);
  }
  return payload ? [of, envelope, payload] : [of, envelope];
}

/** An array of numbers as a Float64Array (which holds every number exactly); undefined for anything else. */
function packVector(vector: unknown): Float64Array<ArrayBuffer> | undefined {
  if (!Array.isArray(vector)) return undefined;
  const packed = new Float64Array(vector.length);
  for (let i = 0; i < vector.length; i++) {
    if (typeof vector[i] !== "number") return undefined;
    packed[i] = vector[i];
  }
  return packed;
}

/**
 * A vector packed by packVector, as the array of numbers it was. An
 * Envelope's vector is a number[], so a Float64Array here is one packVector
 * made (only built-in stages run on workers, and theirs are arrays).
 */
export function unpackVector(vector: unknown): unknown {
  if (!(vector instanceof Float64Array)) return vector;
  const numbers = new Array<number>(vector.length);
  for (let i = 0; i < vector.length; i++) numbers[i] = vector[i];
  return numbers;
}

/** The fields of `to` that differ from `from`'s (by identity), or undefined if `to` lacks one of `from`'s. */
function changes(
  from: Record<string, unknown>,
  to: Record<string, unknown>,
  skip?: string,
): Record<string, unknown> | undefined {
  for (const k in from) if (!(k in to)) return undefined;
  const changed: Record<string, unknown> = {};
  for (const k in to) if (k !== skip && to[k] !== from[k]) changed[k] = to[k];
  return changed;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function hostError(error: unknown): HostError {
  return {
    message: errorMessage(error) + thrownAt(error),
    name: error instanceof Error ? error.name : "Error",
    ...((error as { retryable?: unknown })?.retryable === false ? { retryable: false } : {}),
    ...(endingError(error) ? { ending: true } : {}),
    // A stage on workers that calls a service is waited out, and given up on, as on the main thread.
    ...(isOutage(error) ? { outage: true } : {}),
    ...(isAway(error) ? { away: true } : {}),
    ...(isServiceFailure(error) ? { service: true } : {}),
  };
}
