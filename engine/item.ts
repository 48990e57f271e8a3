import { urlKey } from "./canonical_url.ts";
import { hash128 } from "./hash.ts";

/**
 * What a source scrapes. Fields are optional because the web is untidy; the
 * Validator is the stage that turns "maybe" into "checked".
 */
export interface RawItem {
  /** The headline, as the source gives it. */
  title?: string;
  /** Where the item lives on the web. */
  url?: string;
  /** The body as plain text (sources strip markup). */
  text?: string;
  /** Who wrote it, as the source names them. */
  author?: string;
  /** ISO-8601 when the source gives a date. */
  publishedAt?: string;
  /** Stable id given by the source (feed guid, HN id, reddit fullname). */
  guid?: string;
  /** Categories or tags the source gives. */
  tags?: string[];
  /** Votes and comment counts, where the source has them (Hacker News, reddit). */
  engagement?: { score?: number; comments?: number };
  /** A source marks an item deleted upstream; sinks remove it. */
  deleted?: boolean;
  /** Any other field a source or a custom stage adds; sinks keep them. */
  [field: string]: unknown;
}

/** An item that passed the Validator: the fields every later stage relies on. */
export interface ValidItem extends RawItem {
  /** Present and within the configured length. */
  title: string;
  /** Present and an http(s) URL. */
  url: string;
}

/** Facts the Enricher adds. */
export interface EnrichedItem extends ValidItem {
  /** The url in its canonical spelling (adapters/http/canonical_url.ts), as given when not http(s). */
  canonicalUrl: string;
  /** The host of the URL, without `www.`. */
  domain: string;
  /** Words of `text` without markup, scripts and links; of the title when the text is empty. */
  wordCount: number;
  /** ISO 639-1 code of title and text; `und` when too short or unclear. */
  language: string;
  /** The most frequent words of title and text that are not stopwords of that language. */
  keywords: string[];
}

/**
 * The envelope every item travels in. The engine owns it; actors read and
 * replace `payload` and never touch `id`, so a redelivered or re-scraped item
 * is recognised everywhere by the same id.
 */
export interface Envelope<T = RawItem> {
  /** 32 hex chars: a hash of the item's content key (see itemId). */
  id: string;
  /**
   * The ingestion event that emitted this copy: unique per emission, kept
   * across redeliveries. Lets the Deduper tell "the same event again" (pass)
   * from "the same content scraped twice" (duplicate).
   */
  event: string;
  /** Name of the source in the flow file. */
  source: string;
  /** Epoch milliseconds when a source first emitted this item. */
  seenAt: number;
  /** How many times a stage has tried this item (retries and redeliveries). */
  attempts: number;
  /** Set by the Embedder. */
  vector?: number[];
  /**
   * The W3C traceparent of the source read that emitted this item, set only
   * while tracing (trace.ts): it rides along every edge, Redis included, so
   * the item's path is one trace. Absent in entries written without it.
   */
  trace?: string;
  /**
   * Set on a merge update: news that a copy of story `id` was seen again.
   * The payload then holds only the merged fields (see {@link MergedFields});
   * stages pass it on untouched unless they declare `updates` (engine/actor.ts),
   * and sinks apply it to what they hold of `id` without touching the rest.
   */
  update?: true;
  /** The item itself: what stages change and sinks store. */
  payload: T;
}

/** How many of `items` are merge updates (Envelope.update): news of a story, not items, so no count of items holds them. */
export function updatesIn(items: readonly Pick<Envelope<unknown>, "update">[]): number {
  let n = 0;
  for (let i = 0; i < items.length; i++) if (items[i].update === true) n++;
  return n;
}

/** Where a story was seen: which source carried it, under which url, first when (ISO-8601). */
export interface Sighting {
  source: string;
  url: string;
  seenAt: string;
}

/**
 * What a Deduper with `merge` adds to a story's first copy and sends in its
 * updates. Every later copy can only grow these: sources as a union,
 * engagement by maximum, lastSeenAt forward; `revision` counts the changes,
 * so of two snapshots of one story the higher revision holds all the lower
 * one does, and a sink keeps the higher.
 */
export interface MergedFields {
  sources: Sighting[];
  engagement: Record<string, number>;
  lastSeenAt: string;
  revision: number;
}

/** The payload fields a merge update carries (MergedFields). */
export const MERGED_FIELDS: readonly string[] = ["sources", "engagement", "lastSeenAt", "revision"];

/**
 * Facts a stage may require of its input. The flow loader walks the
 * pipeline and rejects a stage whose needs no earlier stage provides, so a
 * vector sink with no embed stage before it fails at load time, not at 3am.
 */
export type Fact = "valid" | "unique" | "enriched" | "embedded";

/**
 * A stable id from the item's content key: its url in canonical form (see
 * urlKey), else the source's guid, else its title and text, each hashed with
 * its own seed so a url can never collide with a guid that spells the same.
 * Canonical, so that every spelling of an address (tracking parameters, a
 * syndicated copy's variant) gets the same id whichever copy comes first, in
 * every process: a scan per item, and a URL parse for a url not already in
 * canonical form (see canonicalUrl), which the Deduper then saves by keying
 * on this id when its key is the url alone.
 */
export function itemId(item: RawItem): string {
  // A url of only spaces keys nothing: urlKey gives "" for it and only for it.
  const key = typeof item.url === "string" ? urlKey(item.url) : "";
  if (key !== "") return urlId(key);
  const guid = text(item.guid);
  if (guid) return hash128(guid, 0x67756964);
  return hash128(text(item.title) + "\n" + text(item.text), 0x74787431);
}

/**
 * A field's value as the text an id hashes: a string as it is, a number
 * (a JSON API's numeric id mapped to `guid`) or a boolean as written, and
 * anything else as nothing. Ids are made as a source emits, before any
 * stage can dead-letter the item, so a value of another type (an array, an
 * object with a broken toString, one nested thousands deep) must not throw
 * here, and must not key every such item alike; the Validator refuses it.
 */
function text(value: unknown): string {
  return typeof value === "string"
    ? value
    : typeof value === "number" || typeof value === "boolean"
    ? String(value)
    : "";
}

/** The id of an item whose url has the given urlKey (what itemId returns for it). */
export function urlId(key: string): string {
  return hash128(key, 0x75726c31);
}

const EVENT_PREFIX = crypto.randomUUID().slice(0, 8);
let eventSeq = 0;
// The sequence in base 36 is its head (all but the last two digits) and a
// two-digit tail from a table; the head changes once per 1,296 events, so
// minting one costs a lookup and a concatenation, not a number formatting.
const TAIL = Array.from({ length: 1296 }, (_, i) => i.toString(36));
const TAIL2 = TAIL.map((t) => t.padStart(2, "0"));
let headOf = -1;
let head = EVENT_PREFIX;

/** A process-unique event id: cheap enough to mint per item on the hot path. */
export function newEvent(): string {
  const seq = eventSeq++;
  if (seq < 1296) return EVENT_PREFIX + TAIL[seq];
  const high = Math.floor(seq / 1296);
  if (high !== headOf) {
    headOf = high;
    head = EVENT_PREFIX + high.toString(36);
  }
  return head + TAIL2[seq - high * 1296];
}

/** Wraps a scraped item in a fresh envelope. */
export function envelope<T extends RawItem>(
  payload: T,
  source: string,
  seenAt: number = Date.now(),
): Envelope<T> {
  return {
    id: itemId(payload),
    event: newEvent(),
    source,
    seenAt,
    attempts: 0,
    payload,
  };
}
