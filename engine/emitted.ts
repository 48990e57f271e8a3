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
    Array.isArray(e.payload)
  ) {
    throw notAnEnvelope(item);
  }
}

/**
 * checkEmitted, and fails too for a payload JSON would not write as an
 * object of its fields (a Map, a URL: see mangled). Asked of a stage of the
 * user's own (engine/accounted.ts), not of the built-ins, which make no
 * such payload: it costs a few ns for each item each stage emits.
 */
export function checkOwnEmitted(item: unknown): asserts item is Envelope<unknown> {
  checkEmitted(item);
  if (mangled(item.payload as object) !== undefined) throw notAnEnvelope(item);
}

function notAnEnvelope(item: unknown): PermanentError {
  return new PermanentError(
    `emitted ${shown(item)}, not an item's envelope ({id, event, payload, …}): emit ` +
      "{ ...item, payload } for an input's item, or envelope(payload, source) for a new one",
  );
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
      ? `${mangled(payload)}, which JSON does not write as an object of its fields`
      : `a ${typeof payload}`
  } (a payload is an object)`;
}

/**
 * What `payload` is, when JSON would not write it as an object of its
 * fields (a Map as {}, a Date or a URL as text, an object whose toJSON
 * gives an array): published so, a sink held nothing of it, without a word.
 * Instances of a class of one's own keep their fields, and pass.
 */
function mangled(payload: object): string | undefined {
  // A plain object (nearly every payload) is told by two inline-cached reads: this runs for each
  // item a stage of the user's own emits.
  const p = payload as { constructor?: unknown; toJSON?: unknown };
  if (p.constructor === Object && p.toJSON === undefined) return undefined;
  const proto = Object.getPrototypeOf(payload);
  if (proto !== Object.prototype && proto !== null) {
    for (const [type, name] of MANGLED) if (payload instanceof type) return `a ${name}`;
    if (ArrayBuffer.isView(payload)) return "a typed array";
  }
  const toJSON = p.toJSON;
  if (typeof toJSON !== "function") return undefined;
  let json: unknown;
  try {
    json = toJSON.call(payload);
  } catch {
    return "an object whose toJSON throws";
  }
  if (json !== null && typeof json === "object" && !Array.isArray(json)) return undefined;
  return `an object whose toJSON gives ${
    json === null ? "null" : Array.isArray(json) ? "an array" : `a ${typeof json}`
  }`;
}

/** Built-ins JSON writes as {} or as text, whatever they hold. */
// deno-lint-ignore no-explicit-any
const MANGLED: [new (...args: any[]) => object, string][] = [
  [Map, "Map"],
  [Set, "Set"],
  [WeakMap, "WeakMap"],
  [WeakSet, "WeakSet"],
  [Date, "Date"],
  [RegExp, "RegExp"],
  [Promise, "Promise"],
  [Error, "Error"],
  [ArrayBuffer, "ArrayBuffer"],
  [String, "String"],
  [Number, "Number"],
  [Boolean, "Boolean"],
  [URL, "URL"],
  [URLSearchParams, "URLSearchParams"],
  [Headers, "Headers"],
];
