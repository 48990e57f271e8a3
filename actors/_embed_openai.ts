import { withPrefix } from "../engine/log.ts";
import { CachedEmbeddings } from "../adapters/embeddings/cached_embeddings.ts";
import type { EmbeddingClient } from "../adapters/embeddings/embedding_client.ts";
import { RateLimiter, realClock } from "../adapters/http/rate_limiter.ts";
import { openVectorCache, type VectorCache } from "../adapters/embeddings/vector_cache.ts";
import type { BuildEnv } from "../engine/registry.ts";
import type { EmbedInputs } from "./_embed_inputs.ts";

/** The fields of an embed stage's config that the OpenAI connection reads. */
export interface OpenAIEmbedConfig {
  model?: string;
  baseUrl?: string;
  apiKey?: string;
  dimensions?: number;
  timeout?: number;
  maxRetries?: number;
  rpm?: number;
  tpm?: number;
  cache?: boolean;
  /** The window's size: no request holds more inputs, and a reply's size cap follows it. */
  batch?: { size: number };
}

/** A client as a stage holds it from open to close. */
export interface EmbedConnection {
  client: EmbeddingClient;
  /** The client tallies the tokens the API billed; otherwise the stage tallies its estimate. */
  tallies?: boolean;
  /** Releases what the client holds; `where` names the stage for the closing log line. */
  close?(where: string): Promise<void>;
}

/** The text of the start-up call that checks the dimension (cached like any input). */
export const PROBE_TEXT = "millrace dimension check";

/**
 * Builds the openai provider's client and checks it against the flow before
 * any item moves: one small call returns a vector of the configured length,
 * or fails the start with the server's answer (a wrong key, model or
 * dimension). With `dimensions` given, the call goes through the cache, so a
 * re-run pays nothing; without, it is what tells the dimension, which the
 * cache is then keyed by.
 *
 * npm:openai is imported here, on first use, so a flow that never embeds
 * remotely never loads it.
 */
export async function connectOpenAI(
  config: OpenAIEmbedConfig,
  env: BuildEnv,
  inputs: EmbedInputs,
  signal: AbortSignal,
  /** The stage's usage counters: requests and tokens spent appear in the run's report. */
  tally?: (name: string, n: number) => void,
  /** `flow/stage`, before the client's own log lines. */
  where = env.flow,
): Promise<EmbedConnection> {
  const { OpenAIEmbeddings } = await import("../adapters/embeddings/openai_embeddings.ts");
  const clock = env.clock ?? realClock;
  // One even without rpm or tpm: a 429's Retry-After holds back every request of the stage.
  const limiter = new RateLimiter({ rpm: config.rpm, tpm: config.tpm }, clock);
  const openai = new OpenAIEmbeddings({
    model: config.model!,
    baseUrl: config.baseUrl,
    apiKey: config.apiKey!,
    dimensions: config.dimensions,
    timeout: config.timeout,
    maxRetries: config.maxRetries,
    maxInputs: config.batch?.size,
    limiter,
    clock,
    countTokens: (text) => inputs.count(text),
    // The client's lines (a retry waited out at the start check) say whose they are.
    log: withPrefix(env.log, `${where}: `),
    tally,
  });
  if (config.dimensions === undefined) await openai.embed([PROBE_TEXT], signal);
  let cache: VectorCache | undefined;
  let client: EmbeddingClient = openai;
  if (config.cache !== false) {
    cache = await openVectorCache(env, openai.model, openai.dimensions);
    client = new CachedEmbeddings(openai, cache, env.log);
  }
  try {
    if (config.dimensions !== undefined) await client.embed([PROBE_TEXT], signal);
  } catch (error) {
    await cache?.close?.();
    throw error;
  }
  return {
    client,
    tallies: true,
    async close(where) {
      await cache?.close?.();
      const { requests, retries, tokens } = openai.stats;
      const cached = client instanceof CachedEmbeddings
        ? { cacheHits: client.hits, cacheMisses: client.misses }
        : {};
      env.log.info(`${where}: ${openai.model} at ${openai.endpoint}`, {
        requests,
        retries,
        tokens,
        tokenizer: inputs.encoding,
        ...cached,
      });
    },
  };
}
