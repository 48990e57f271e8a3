import { PermanentError } from "./errors.ts";
import type { Envelope } from "./item.ts";

/**
 * Fails with a PermanentError unless a stage emitted an envelope (an
 * object with a string `id` and an object `payload`). A stage's mistake
 * then fails its try, which the split narrows down to the item whose
 * handling made it, with no retries (the same code fails the same way),
 * rather than crashing a later stage, or the run, on what it emitted.
 * Checked where a stage emits: the stage runner's outcome, and a worker's.
 */
export function checkEmitted(item: unknown): asserts item is Envelope<unknown> {
  const e = item as Envelope<unknown> | null;
  if (
    typeof e !== "object" || e === null || typeof e.id !== "string" ||
    typeof e.payload !== "object" || e.payload === null
  ) throw new PermanentError(`emitted ${shown(item)}, not an item's envelope ({id, payload, …})`);
}

/** What a stage emitted instead of an envelope, briefly. */
function shown(value: unknown): string {
  if (value === null || typeof value !== "object") return String(value);
  if (Array.isArray(value)) return "an array";
  const { id, payload } = value as Envelope<unknown>;
  if (typeof id !== "string") return "an object with no string id";
  if (payload === undefined) return "an object with no payload";
  return `an object whose payload is ${
    payload === null ? "null" : Array.isArray(payload) ? "an array" : `a ${typeof payload}`
  } (a payload is an object)`;
}
