import type { Logger } from "../../engine/log.ts";
import { errorMessage } from "../../engine/errors.ts";
import type { EmbeddingClient } from "./embedding_client.ts";
import { textKey, type VectorCache } from "./vector_cache.ts";

/**
 * An EmbeddingClient that asks its cache first and its inner client only
 * for texts the cache does not hold, each distinct text once per batch: a
 * duplicate, a replayed batch or a re-run pays nothing. Costs one cache
 * round trip per batch to look up and one to store what was new.
 *
 * Every vector it returns has been through float32, fresh or cached, so an
 * item gets the same vector whether or not it was a hit.
 *
 * @example
 * ```ts
 * import { CachedEmbeddings } from "./cached_embeddings.ts";
 * import { HashingEmbedder } from "./hashing_embedder.ts";
 *
 * const store = new Map<string, Float32Array>();
 * const cache = {
 *   getMany: (keys: readonly string[]) => Promise.resolve(keys.map((k) => store.get(k))),
 *   setMany: (entries: readonly (readonly [string, Float32Array])[]) =>
 *     Promise.resolve(void entries.forEach(([k, v]) => store.set(k, v))),
 * };
 * const client = new CachedEmbeddings(new HashingEmbedder({ dimensions: 8 }), cache);
 * await client.embed(["a b", "a b", "c"], AbortSignal.timeout(1000));
 * if (client.misses !== 2 || client.hits !== 1) throw new Error("duplicates are free");
 * ```
 */
export class CachedEmbeddings implements EmbeddingClient {
  /** Inputs answered without a call: from the cache, or by an equal input of the same batch. */
  hits = 0;
  /** Distinct inputs sent to the inner client. */
  misses = 0;

  constructor(
    readonly inner: EmbeddingClient,
    readonly cache: VectorCache,
    readonly log?: Logger,
  ) {}

  get model(): string {
    return this.inner.model;
  }

  get dimensions(): number {
    return this.inner.dimensions;
  }

  async embed(inputs: string[], signal: AbortSignal): Promise<number[][]> {
    const keys = inputs.map(textKey);
    const textOf = new Map<string, string>();
    keys.forEach((key, i) => textOf.has(key) || textOf.set(key, inputs[i]));
    const distinct = [...textOf.keys()];
    const found = await this.cache.getMany(distinct);
    const byKey = new Map<string, Float32Array>();
    const missing: string[] = [];
    distinct.forEach((key, i) => found[i] ? byKey.set(key, found[i]) : missing.push(key));

    if (missing.length > 0) {
      const fresh = await this.inner.embed(missing.map((key) => textOf.get(key)!), signal);
      this.#check(fresh, missing.length);
      const entries = missing.map((key, i) => [key, Float32Array.from(fresh[i])] as const);
      for (const [key, vector] of entries) byKey.set(key, vector);
      try {
        await this.cache.setMany(entries);
      } catch (error) {
        // The vectors are paid for and correct: pass them on, uncached.
        this.log?.warn(`vector cache: storing ${entries.length} vectors failed`, {
          error: errorMessage(error),
        });
      }
    }
    this.misses += missing.length;
    this.hits += inputs.length - missing.length;
    return keys.map((key) => Array.from(byKey.get(key)!));
  }

  /** A malformed reply is never cached: it would be served again forever. */
  #check(vectors: number[][], expected: number): void {
    if (!Array.isArray(vectors) || vectors.length !== expected) {
      throw new Error(
        `${this.model} returned ${
          Array.isArray(vectors) ? vectors.length : "no"
        } vectors for ${expected} inputs`,
      );
    }
    const bad = vectors.findIndex((v) => v?.length !== this.dimensions);
    if (bad >= 0) {
      throw new Error(
        `${this.model} returned a vector of length ${
          vectors[bad]?.length
        } for input ${bad}, expected ${this.dimensions}`,
      );
    }
  }
}
