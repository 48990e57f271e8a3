import { Buffer } from "node:buffer";
import type { Envelope } from "../item.ts";
import { jsonWithVector } from "../vector_json.ts";

/** One entry read from a stage stream: its id and what it carried. */
export interface StreamEntry {
  id: string;
  /** The envelopes, or undefined when the entry did not parse. */
  items?: Envelope<unknown>[];
  /** Why it did not parse. */
  error?: string;
  /** The raw `b` field, kept for dead letters when it did not parse. */
  raw?: string;
  /**
   * Half of an entry whose process died while running it alone (field
   * `s`): it may hold an item that crashes its process, so it runs alone.
   */
  suspect?: boolean;
}

/** One stream entry's body, encoded: its JSON as UTF-8 bytes, and how many items it holds. */
export interface EncodedEntry {
  body: Buffer;
  n: number;
}

const utf8 = new TextEncoder();
/** Reused between calls: items are encoded here, then each entry is copied out whole. */
let scratch = new Uint8Array(1 << 16);
/** Largest buffer kept between calls (three times the default `entryBytes`, in UTF-8's worst case). */
const SCRATCH_KEPT = 3 << 20;

/**
 * Packs envelopes into entry bodies of at most `maxItems` items and about
 * `maxBytes` of JSON each: Redis and parsing costs are then paid per entry,
 * while an item larger than `maxBytes` still travels, alone. An item JSON
 * cannot encode throws, or with `unencodable` is handed to it and left out.
 *
 * Bodies are bytes, not strings: each item's JSON is encoded once, straight
 * into a buffer, so neither joining a hundred strings nor the client's
 * length count and UTF-8 write of the joined one (a copy each, slow for the
 * two-byte strings that any non-Latin-1 text makes) is paid per entry.
 */
export function encodeEntries(
  items: readonly Envelope<unknown>[],
  maxItems: number,
  maxBytes: number,
  unencodable?: (item: Envelope<unknown>, error: unknown) => void,
): EncodedEntry[] {
  const entries: EncodedEntry[] = [];
  let n = 0;
  let at = 1; // after "["
  for (const item of items) {
    let json: string;
    try {
      json = jsonWithVector(item);
    } catch (error) {
      // A BigInt, a cycle, nesting past the stack: given `unencodable`, it is left out.
      if (!unencodable) throw error;
      unencodable(item, error);
      continue;
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit; room for "," and "]".
    const need = at + 3 * json.length + 2;
    if (need > scratch.length) {
      const grown = new Uint8Array(Math.max(need, scratch.length * 2));
      grown.set(scratch.subarray(0, at));
      scratch = grown;
    }
    const start = at + (n > 0 ? 1 : 0);
    const { written } = utf8.encodeInto(json, scratch.subarray(start));
    if (n > 0 && (n >= maxItems || start + written + 1 > maxBytes)) {
      entries.push(close(at, n));
      scratch.copyWithin(1, start, start + written);
      n = 0;
      at = 1 + written;
    } else {
      if (n > 0) scratch[at] = 0x2c; // ","
      at = start + written;
    }
    n++;
  }
  if (n > 0) entries.push(close(at, n));
  // A huge item grew the buffer: let it go rather than hold it for the run.
  if (scratch.length > SCRATCH_KEPT) scratch = new Uint8Array(1 << 16);
  return entries;
}

/** Copies the entry held in `scratch[0, at)` out, bracketed. */
function close(at: number, n: number): EncodedEntry {
  scratch[0] = 0x5b; // "["
  scratch[at] = 0x5d; // "]"
  return { body: Buffer.from(scratch.slice(0, at + 1).buffer), n };
}

/** Reads an entry's fields (as ioredis returns them: [k, v, k, v, ...]). */
export function decodeEntry(id: string, fields: string[]): StreamEntry {
  let body: string | undefined;
  let suspect = false;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === "b") body = fields[i + 1];
    else if (fields[i] === "s") suspect = fields[i + 1] === "1";
  }
  if (body === undefined) return { id, error: "entry has no `b` field", raw: fields.join(" ") };
  try {
    const parsed = JSON.parse(body);
    if (!Array.isArray(parsed) || !parsed.every(isEnvelope)) {
      return { id, error: "entry `b` is not a list of item envelopes", raw: body };
    }
    return suspect ? { id, items: parsed, suspect } : { id, items: parsed };
  } catch (error) {
    return { id, error: `entry does not parse: ${(error as Error).message}`, raw: body };
  }
}

function isEnvelope(v: unknown): v is Envelope<unknown> {
  const e = v as Envelope<unknown>;
  return typeof e === "object" && e !== null && typeof e.id === "string" &&
    typeof e.event === "string" && "payload" in e;
}
