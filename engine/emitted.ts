import { PermanentError } from "./errors.ts";
import type { Envelope } from "./item.ts";

/**
 * Fails with a PermanentError unless a stage emitted an envelope (an
 * object with a string `id` and `event` and an object `payload`: what a
 * durable edge needs to read it back, so both kinds of edge refuse the
 * same outputs; without `event`, a durable flow lost such items as an
 * unreadable entry, and in memory the Deduper's claims broke). A stage's
 * mistake then fails its try, which the split narrows down to the item
 * whose handling made it, with no retries (the same code fails the same
 * way), rather than crashing a later stage, or the run, on what it emitted.
 * Checked where a stage emits: the stage runner's outcome, and a worker's.
 */
export function checkEmitted(item: unknown): asserts item is Envelope<unknown> {
  const e = item as Envelope<unknown> | null;
  if (
    typeof e !== "object" || e === null || typeof e.id !== "string" ||
    typeof e.event !== "string" || typeof e.payload !== "object" || e.payload === null ||
    Array.isArray(e.payload) || mangled(e.payload) !== undefined
  ) {
    throw new PermanentError(
      `emitted ${shown(item)}, not an item's envelope ({id, event, payload, …}): emit ` +
        "{ ...item, payload } for an input's item, or envelope(payload, source) for a new one",
    );
  }
}

/** What a stage emitted instead of an envelope, briefly. */
function shown(value: unknown): string {
  if (value === null || typeof value !== "object") return String(value);
  if (Array.isArray(value)) return "an array";
  const { id, event, payload } = value as Envelope<unknown>;
  if (typeof id !== "string") return "an object with no string id";
  if (payload === undefined) return "an object with no payload";
  // The durable edge reads no item back without it, and the Deduper claims by it.
  if (typeof event !== "string") return "an object with no string event";
  return `an object whose payload is ${
    payload === null
      ? "null"
      : Array.isArray(payload)
      ? "an array"
      : typeof payload === "object"
      ? `a ${mangled(payload)}, which JSON writes as {} or text`
      : `a ${typeof payload}`
  } (a payload is an object)`;
}

/**
 * The built-in whose instance `payload` is, when JSON would not keep its
 * contents (a Map written as {}, a Date as text): published, a sink held
 * nothing of it, without a word. Instances of a class of one's own keep
 * their fields, and pass.
 */
function mangled(payload: object): string | undefined {
  // A plain object (nearly every payload) is told by its constructor alone, an inline-cached
  // read: this runs for each item each stage emits (getPrototypeOf cost 20 ns more an item).
  if ((payload as { constructor?: unknown }).constructor === Object) return undefined;
  const proto = Object.getPrototypeOf(payload);
  if (proto === Object.prototype || proto === null) return undefined;
  for (const [type, name] of MANGLED) if (payload instanceof type) return name;
  return ArrayBuffer.isView(payload) ? "typed array" : undefined;
}

// deno-lint-ignore no-explicit-any
const MANGLED: [new (...args: any[]) => object, string][] = [
  [Map, "Map"],
  [Set, "Set"],
  [Date, "Date"],
  [RegExp, "RegExp"],
  [Promise, "Promise"],
  [ArrayBuffer, "ArrayBuffer"],
];
