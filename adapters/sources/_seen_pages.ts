import { hash128 } from "../../engine/hash.ts";
import { canonicalUrl } from "../http/canonical_url.ts";

/** Pages remembered by default: a few weeks of a busy list page polled every few minutes. */
export const SEEN_PAGES_LIMIT = 10_000;

/**
 * The pages a polling source already fetched, so a later poll does not
 * fetch them again: the newest `limit`, by canonical URL (so `?utm_source=`
 * variants count as one), each kept as 16 hex chars of a 128-bit hash.
 * Hashes, not URLs, because the set travels in the source's checkpoint,
 * which a durable flow stores with every batch: 10,000 keys are about 190
 * KB of JSON. 64 bits make a false "seen" among 10,000 pages a chance of
 * about 3 in 10^12.
 */
export class SeenPages {
  /** Insertion order is age: the first key is the oldest. */
  #keys = new Set<string>();

  constructor(readonly limit = SEEN_PAGES_LIMIT) {}

  get size(): number {
    return this.#keys.size;
  }

  has(url: string): boolean {
    return this.#keys.has(keyOf(url));
  }

  /** Remembers `url` as the newest page, forgetting the oldest past the limit. */
  add(url: string): void {
    const key = keyOf(url);
    this.#keys.delete(key);
    this.#keys.add(key);
    if (this.#keys.size > this.limit) this.#keys.delete(this.#keys.values().next().value!);
  }

  /** The keys, oldest first: what `restore` takes back. */
  keys(): string[] {
    return [...this.#keys];
  }

  /** Takes keys from an earlier `keys()`; throws naming what is wrong with them. */
  restore(keys: unknown): void {
    if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string" && KEY.test(k))) {
      throw new Error(`expected an array of 16-hex-digit page keys`);
    }
    this.#keys = new Set(keys.slice(-this.limit));
  }
}

const KEY = /^[0-9a-f]{16}$/;

function keyOf(url: string): string {
  return hash128(canonicalUrl(url) ?? url, 0x70616765).slice(0, 16);
}
