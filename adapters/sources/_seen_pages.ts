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
 *
 * A poll (`beginPoll`) asks `seen` of every page its lists or sitemap still
 * show, which makes it the newest again, so the pages forgotten are those
 * no longer listed. When one poll shows more pages than the limit, the
 * pages past it are not remembered (`overLimit` counts them) rather than
 * making room by forgetting pages of the same poll: a walk in the same
 * order every poll would then meet each forgotten page as new, fetch it,
 * forget the next, and fetch the whole site at every poll.
 */
export class SeenPages {
  /** Key to the poll that last met it; insertion order is age: the first key is the oldest. */
  #keys = new Map<string, number>();
  #poll = 0;
  /** Pages of this poll that were not remembered: the set was full of this poll's pages. */
  overLimit = 0;

  constructor(readonly limit = SEEN_PAGES_LIMIT) {}

  get size(): number {
    return this.#keys.size;
  }

  /** Starts a poll: what it meets or adds is kept before anything older. */
  beginPoll(): void {
    this.#poll++;
    this.overLimit = 0;
  }

  has(url: string): boolean {
    return this.#keys.has(keyOf(url));
  }

  /** Whether `url` was seen; if so it becomes the newest page again, met by this poll. */
  seen(url: string): boolean {
    const key = keyOf(url);
    if (!this.#keys.delete(key)) return false;
    this.#keys.set(key, this.#poll);
    return true;
  }

  /** Remembers `url` as the newest page, forgetting the oldest past the limit (see the class). */
  add(url: string): void {
    const key = keyOf(url);
    this.#keys.delete(key);
    this.#keys.set(key, this.#poll);
    if (this.#keys.size <= this.limit) return;
    const [oldest, poll] = this.#keys.entries().next().value!;
    if (poll === this.#poll && this.#poll > 0) {
      this.#keys.delete(key);
      this.overLimit++;
    } else {
      this.#keys.delete(oldest);
    }
  }

  /** The keys, oldest first: what `restore` takes back. */
  keys(): string[] {
    return [...this.#keys.keys()];
  }

  /** Takes keys from an earlier `keys()`; throws naming what is wrong with them. */
  restore(keys: unknown): void {
    if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string" && KEY.test(k))) {
      throw new Error(`expected an array of 16-hex-digit page keys`);
    }
    // Restored keys count as met by no poll yet: older than what the next poll meets.
    this.#keys = new Map(keys.slice(-this.limit).map((k) => [k, -1]));
  }
}

const KEY = /^[0-9a-f]{16}$/;

function keyOf(url: string): string {
  return hash128(canonicalUrl(url) ?? url, 0x70616765).slice(0, 16);
}
