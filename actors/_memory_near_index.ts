import type { DedupeStore, NearIndex, NearRequest } from "./_dedupe_store.ts";
import { bandingFor, MinHashIndex, positionsNeeded } from "./_minhash_index.ts";

/**
 * The in-process near index: a {@link MinHashIndex} that also releases the
 * key claims of matched items in `store`. Idempotent per event: the index
 * recognises an event it holds (its own signature is among the candidates),
 * so a retried batch gets the answers of its first try without a separate
 * map of recorded events. Answers synchronously when the store's `release`
 * does.
 */
export class MemoryNearIndex implements NearIndex {
  readonly #index: MinHashIndex;
  readonly #need: number;

  constructor(
    readonly store: DedupeStore,
    readonly threshold: number,
    options: { maxItems?: number } = {},
  ) {
    this.#index = new MinHashIndex({ ...options, banding: bandingFor(threshold) });
    this.#need = positionsNeeded(threshold);
  }

  /** Items held, and the bytes their state takes (see MinHashIndex.storedBytes). */
  get size(): number {
    return this.#index.size;
  }
  get storedBytes(): number {
    return this.#index.storedBytes;
  }

  matchMany(
    requests: readonly NearRequest[],
    now: number,
    ttl: number,
  ): (string | undefined)[] | Promise<(string | undefined)[]> {
    this.#index.evict(now);
    const answers: (string | undefined)[] = new Array(requests.length);
    const matched: NearRequest[] = [];
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i];
      const match = this.#index.find(r.signature, this.#need, now, r.event);
      if (match === null) continue;
      if (match !== undefined) {
        answers[i] = match;
        matched.push(r);
        continue;
      }
      this.#index.add(r.id, r.event, r.signature, now + ttl);
    }
    if (matched.length === 0) return answers;
    const released = this.store.release(matched);
    return released ? released.then(() => answers) : answers;
  }
}
