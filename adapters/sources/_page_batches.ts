import type { RawItem } from "../../engine/item.ts";
import { SeenPages } from "./_seen_pages.ts";

/** Items per batch a crawl yields: downstream starts while the poll goes on. */
export const ITEMS_PER_BATCH = 20;

/**
 * Or fewer, once the oldest has waited this long: at a polite 1 request a
 * second, 20 articles take 22 s, and a slow crawl's items should flow (and
 * a stop should find them downstream) long before that.
 */
export const BATCH_WAIT_MS = 2_000;

/** What one page of a crawl gave: its items, and the URLs to remember as seen once they went out. */
export interface PageResult {
  items: RawItem[];
  /** The page's link, where it was sent, its article's URL; a gone page's link. */
  marks: string[];
  /** Where the page was read from, after redirects. */
  address?: string;
}

/**
 * One poll's pages gathered into batches. A page's URLs become seen only
 * when the batch holding its items is taken (to be yielded): a durable
 * flow stores the source's checkpoint with each batch it yields, and a page
 * marked seen before its items went out was skipped for good after a crash
 * (pages are fetched several at once, and finish before they are yielded).
 * A page that a link of this poll already gave (a link that redirects to
 * another link of the same list, both fetched at once) is given once.
 */
export class PageBatches {
  /** The items gathered and not taken yet. */
  batch: RawItem[] = [];
  /** When the batch's first item came. */
  #since = 0;
  /** URLs of the pages whose items are in `batch` (or that gave none), to remember at `take`. */
  #marks: string[] = [];
  /** Every URL this poll's pages gave: an article met twice in one poll is given once. */
  readonly #given = new SeenPages(Number.POSITIVE_INFINITY);

  constructor(private readonly seen: SeenPages) {}

  /** Whether a page of this poll gave `url` already (its article, or where it was sent). */
  gave(url: string): boolean {
    return this.#given.has(url);
  }

  /**
   * Adds a page's result; false, and its items left out, when a page of
   * this poll gave its address already (two links sent to one page). Two
   * pages that name one canonical URL both go on, as two items of one id.
   */
  add(result: PageResult): boolean {
    const { address } = result;
    const again = result.items.length > 0 && address !== undefined && this.#given.has(address);
    for (const url of result.marks) this.#given.add(url);
    this.#marks.push(...result.marks);
    if (again) return false;
    if (result.items.length > 0 && this.batch.length === 0) this.#since = Date.now();
    this.batch.push(...result.items);
    return true;
  }

  /** When the batch is due by time (its first item waited BATCH_WAIT_MS); undefined while empty. */
  dueAt(): number | undefined {
    return this.batch.length > 0 ? this.#since + BATCH_WAIT_MS : undefined;
  }

  /** Whether the batch goes now: full, or its first item has waited long enough. */
  due(): boolean {
    return this.batch.length >= ITEMS_PER_BATCH || Date.now() >= (this.dueAt() ?? Infinity);
  }

  /** The batch, emptied, its pages remembered as seen first (the checkpoint after it names them). */
  take(): RawItem[] {
    for (const url of this.#marks) this.seen.add(url);
    this.#marks = [];
    const batch = this.batch;
    this.batch = [];
    return batch;
  }
}
