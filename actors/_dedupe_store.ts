import { KeyClaims } from "./_key_claims.ts";
import { OldestFirst } from "./_oldest_first.ts";
import { mergeCopy, type MergeRequest, type Story } from "./_story.ts";

export type { MergeRequest, Story } from "./_story.ts";

/**
 * What a claim found: the key was free (never seen, or its claim expired)
 * and is now this event's; this same event already holds it (a redelivery,
 * which passes again); or another event holds it (a duplicate).
 */
export type Claim = "new" | "same-event" | "duplicate";

/** One item's claim: its exact key, for the ingestion event that carries it. */
export interface ClaimRequest {
  readonly key: string;
  readonly event: string;
}

/**
 * The Deduper's memory of which ingestion event claimed which key, and
 * until when. Batch-oriented so a store over Redis costs one round trip per
 * batch; a store may answer synchronously (the in-process one does, so the
 * hot path awaits nothing) or with a promise.
 */
export interface DedupeStore {
  /**
   * Claims each key for its event from `now` for `ttl` ms, in order, unless
   * a live claim of another event holds it; a repeat of a key within the
   * batch sees the claim made before it. A live claim is never extended: a
   * key is remembered for `ttl` from its first sighting. Returns one answer
   * per claim, in order.
   */
  claimMany(claims: readonly ClaimRequest[], now: number, ttl: number): Claim[] | Promise<Claim[]>;
  /** Undoes each claim still held by its event (its item turned out a near duplicate). */
  release(claims: readonly ClaimRequest[]): void | Promise<void>;
  /**
   * Folds each copy into its story as _story.ts mergeCopy says, in order
   * and atomically, creating a story not yet held (it is then remembered
   * for `ttl` from `now`); returns each story as it stood right after its
   * copy was folded in, or undefined while it is pending. Folding is
   * idempotent, so a redelivered copy returns its story unchanged and
   * counts nothing twice.
   */
  mergeMany(
    copies: readonly MergeRequest[],
    now: number,
    ttl: number,
  ): (Story | undefined)[] | Promise<(Story | undefined)[]>;
  /**
   * Optional: claimMany then mergeMany in one step, for a Deduper with no
   * near check between them (one round trip in Redis). Copy i belongs to
   * claim i; its mode comes from the claim's answer (a duplicate joins the
   * story of the key, else the copy is its story's first).
   */
  claimAndMergeMany?(
    claims: readonly ClaimRequest[],
    copies: readonly MergeRequest[],
    now: number,
    ttl: number,
  ): Promise<{ answers: Claim[]; stories: (Story | undefined)[] }>;
}

/** An item to compare by text: its claim, its envelope id and its MinHash signature. */
export interface NearRequest extends ClaimRequest {
  readonly id: string;
  readonly signature: Uint32Array;
}

/**
 * Remembered texts, for near-duplicate lookups. Per event it is idempotent:
 * an event already recorded matches nothing and is not recorded again, so a
 * batch retried after a partial failure gets the answers of its first try.
 */
export interface NearIndex {
  /**
   * For each request in order: the id of the earliest live item of another
   * event whose estimated similarity is at or above the threshold, in which
   * case the request's key claim is released in the same step; else
   * undefined, and the request is remembered until `now + ttl` (later
   * requests of the same batch see it).
   */
  matchMany(
    requests: readonly NearRequest[],
    now: number,
    ttl: number,
  ): (string | undefined)[] | Promise<(string | undefined)[]>;
}

export interface MemoryDedupeStoreOptions {
  /**
   * Keys held at most, and stories held at most; past it the oldest leave
   * before their ttl; default 100,000 (see the Deduper's `maxItems`).
   */
  maxItems?: number;
}

/**
 * The in-process store: key claims in flat typed arrays (_key_claims.ts,
 * about 64 bytes a key) and stories as JSON. Answers synchronously.
 *
 * Expiry: claims are kept in claim order, and all share one ttl, so
 * expired keys sit at the front and each claim evicts them from there
 * (amortised O(1)). Past `maxItems` keys the oldest leaves too, live or
 * not, so memory is bounded by the count whatever the ttl: a copy of a key
 * that left is then taken as new. Stories leave the same way, by ttl or
 * past `maxItems` stories (aliases apart, capped alike); a duplicate whose key is held
 * but whose story left starts a pending story, which sends nothing.
 */
export class MemoryDedupeStore implements DedupeStore {
  readonly #maxItems: number;
  readonly #claims = new KeyClaims();
  /**
   * Stories by id, in creation order (one ttl for all, so the expired ones
   * are at the front), each as its JSON: a story held costs 349 bytes of
   * heap this way, against 493 as its objects, arrays and numbers
   * (tests/actors/dedupe_store_memory_test.ts), and a story is read again
   * only when a copy of it comes.
   */
  readonly #byAge = new OldestFirst<string, { json: string; expires: number }>();
  readonly #stories = this.#byAge.map;
  /**
   * Aliases (Story.a), apart and capped alike: counted with the stories, one
   * per near duplicate, they pushed live stories out before their keys and
   * texts, and a later copy of such a story was dropped without an update.
   */
  readonly #aliasesByAge = new OldestFirst<string, { json: string; expires: number }>();
  readonly #aliases = this.#aliasesByAge.map;

  constructor(options: MemoryDedupeStoreOptions = {}) {
    this.#maxItems = options.maxItems ?? 100_000;
    if (!(this.#maxItems >= 1)) {
      throw new Error(`maxItems must be 1 or more, got ${this.#maxItems}`);
    }
  }

  /** Live and not yet evicted keys. */
  get size(): number {
    return this.#claims.size;
  }

  /** Stories held (aliases included). */
  get stories(): number {
    return this.#stories.size + this.#aliases.size;
  }

  claimMany(claims: readonly ClaimRequest[], now: number, ttl: number): Claim[] {
    const answers: Claim[] = new Array(claims.length);
    for (let i = 0; i < claims.length; i++) {
      answers[i] = this.claim(claims[i].key, claims[i].event, now, ttl);
    }
    return answers;
  }

  /** One claim (see {@link DedupeStore.claimMany}). */
  claim(key: string, event: string, now: number, ttl: number): Claim {
    const claims = this.#claims;
    claims.evict(now);
    // None held, or expired: the key is claimed anew, at the back of the order.
    const answer = claims.claim(key, event, now, now + ttl);
    if (answer === "new" && claims.size > this.#maxItems) claims.dropOldest();
    return answer;
  }

  release(claims: readonly ClaimRequest[]): void {
    for (const { key, event } of claims) this.#claims.release(key, event);
  }

  mergeMany(copies: readonly MergeRequest[], now: number, ttl: number): (Story | undefined)[] {
    const max = this.#maxItems;
    const stories = this.#stories, aliases = this.#aliases;
    for (const byAge of [this.#byAge, this.#aliasesByAge]) {
      for (let old = byAge.oldest(); old && old[1].expires <= now; old = byAge.oldest()) {
        byAge.dropOldest();
      }
    }
    const storiesByAge = this.#byAge, aliasesByAge = this.#aliasesByAge;
    const heldAt = (id: string) => stories.get(id) ?? aliases.get(id);
    // The stories this batch reads, as objects until it is folded; those it
    // changes (mergeCopy sets each one it changes) are then stored as JSON,
    // once each.
    const open = new Map<string, Story>();
    const changed = new Set<string>();
    const map = {
      get(id: string): Story | undefined {
        const held = heldAt(id);
        // Never held, or evicted by this batch; or left without its JSON by
        // a batch that failed as it stored it, and so taken as gone.
        if (held === undefined || (held.json === "" && !open.has(id))) return undefined;
        let story = open.get(id);
        if (story === undefined) open.set(id, story = JSON.parse(held.json) as Story);
        return story;
      },
      set(id: string, story: Story, fresh = false) {
        open.set(id, story);
        changed.add(id);
        const alias = story.a !== undefined;
        const [map, byAge, other] = alias
          ? [aliases, aliasesByAge, stories]
          : [stories, storiesByAge, aliases];
        if (map.has(id)) {
          if (!fresh) return;
          map.delete(id); // to the back of the order, with a whole ttl
        }
        other.delete(id);
        map.set(id, { json: "", expires: now + ttl });
        if (map.size > max) byAge.dropOldest();
      },
    };
    try {
      return copies.map((copy): Story | undefined => {
        const merged = mergeCopy(map, copy);
        if (merged === undefined) return undefined;
        // A snapshot: a later copy of the batch must not change what this one reports.
        const { r, s, g, l } = merged.story;
        return { r, s: s.map((x) => [x[0], x[1], x[2]]), g: { ...g }, l, id: merged.id };
      });
    } finally {
      // Even if a fold threw: a story added by this batch gets its JSON.
      for (const id of changed) {
        const held = heldAt(id);
        if (held !== undefined) held.json = JSON.stringify(open.get(id));
      }
    }
  }
}
