import type { Envelope } from "../item.ts";

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

/**
 * Packs envelopes into entry bodies of at most `maxItems` items and about
 * `maxBytes` of JSON each: Redis and parsing costs are then paid per entry,
 * while an item larger than `maxBytes` still travels, alone.
 */
export function encodeEntries(
  items: readonly Envelope<unknown>[],
  maxItems: number,
  maxBytes: number,
): { body: string; n: number }[] {
  const entries: { body: string; n: number }[] = [];
  let parts: string[] = [];
  let bytes = 2;
  const flush = () => {
    if (parts.length === 0) return;
    entries.push({ body: "[" + parts.join(",") + "]", n: parts.length });
    parts = [];
    bytes = 2;
  };
  for (const item of items) {
    const json = JSON.stringify(item);
    if (parts.length > 0 && (parts.length >= maxItems || bytes + json.length + 1 > maxBytes)) {
      flush();
    }
    parts.push(json);
    bytes += json.length + 1;
  }
  flush();
  return entries;
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
