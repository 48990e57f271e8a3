/**
 * The seam between the Embedder and whatever turns text into vectors.
 *
 * The Embedder depends on this interface, never on a vendor SDK, so the local
 * {@link HashingEmbedder} (no service at all), an OpenAI-compatible HTTP client
 * and a test double are interchangeable: batching, retries and dead letters
 * stay in the engine, and a client only has to answer one call per batch.
 *
 * @example
 * ```ts
 * import type { EmbeddingClient } from "../../mod.ts";
 *
 * const constant: EmbeddingClient = {
 *   model: "constant",
 *   dimensions: 2,
 *   embed: (inputs) => Promise.resolve(inputs.map(() => [1, 0])),
 * };
 * const vectors = await constant.embed(["a", "b"], AbortSignal.timeout(1000));
 * if (vectors.length !== 2) throw new Error("one vector per input");
 * ```
 */
export interface EmbeddingClient {
  /** Names the vector space: vectors from two models must never be mixed in one index. */
  readonly model: string;
  /** Length of every vector `embed` returns. */
  readonly dimensions: number;
  /**
   * One vector per input, in input order. Takes the whole batch so a remote
   * client pays one round trip for it; rejects when `signal` aborts.
   */
  embed(inputs: string[], signal: AbortSignal): Promise<number[][]>;
}
