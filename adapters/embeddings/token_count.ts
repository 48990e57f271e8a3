/**
 * Counts, cuts and splits text in a model's tokens, so the Embedder can fill
 * a window up to the API's token limit, keep each input under the model's
 * context, and pace a tokens-per-minute budget.
 *
 * OpenAI's embedding models (text-embedding-3-*, ada-002) use cl100k_base,
 * counted exactly by npm:gpt-tokenizer (about 20 µs for a 500-character
 * input; the encoding loads on first use, about 90 ms, so a flow with no
 * remote embedder never pays it). Any other model (Ollama, TEI, vLLM serve
 * their own vocabularies) is estimated at 4 characters a token.
 *
 * @example
 * ```ts
 * import { loadTokenCounter } from "./token_count.ts";
 *
 * const counter = await loadTokenCounter("text-embedding-3-small");
 * if (counter.count("hello world") !== 2) throw new Error("two tokens");
 * ```
 */
export interface TokenCounter {
  /** "cl100k_base", or "chars/4" for the estimate. */
  readonly encoding: string;
  count(text: string): number;
  /** The tokens of `text`, or `undefined` when it has more than `max`: stops counting there. */
  within(text: string, max: number): number | undefined;
  /** The longest start of `text` that fits in `max` tokens. */
  truncate(text: string, max: number): string;
  /** `text` cut into consecutive pieces of at most `max` tokens each, with their counts. */
  split(text: string, max: number): { text: string; tokens: number }[];
}

/** The estimate for models whose vocabulary is not known here. */
export const charsPerToken: TokenCounter = {
  encoding: "chars/4",
  count: (text) => Math.ceil(text.length / 4),
  within: (text, max) => text.length <= max * 4 ? Math.ceil(text.length / 4) : undefined,
  truncate: (text, max) => text.slice(0, max * 4),
  split(text, max) {
    const step = max * 4;
    const pieces = [];
    for (let i = 0; i < text.length; i += step) {
      const piece = text.slice(i, i + step);
      pieces.push({ text: piece, tokens: Math.ceil(piece.length / 4) });
    }
    return pieces;
  },
};

/**
 * The encoding a model's inputs are counted in, or undefined for "estimate".
 * Matched by substring, so an Azure deployment named after its model
 * ("prod-text-embedding-3-large") is counted exactly too.
 */
export function encodingFor(model: string): "cl100k_base" | undefined {
  return /text-embedding-3|text-embedding-ada-002/.test(model) ? "cl100k_base" : undefined;
}

/** The counter for `model`: exact for OpenAI's embedding models, chars/4 otherwise. */
export async function loadTokenCounter(model: string): Promise<TokenCounter> {
  if (encodingFor(model) === undefined) return charsPerToken;
  // A literal specifier, so `deno check` and the lock file see it.
  const bpe = await import("gpt-tokenizer/encoding/cl100k_base");
  /**
   * The text of tokens [from, from + max), shortened a token at a time until
   * it counts `max` or fewer encoded on its own: a cut inside a character
   * (an emoji, CJK) decodes to a replacement character that encodes to more
   * tokens, and a chunk of 8,193 tokens was refused by the API.
   */
  const fit = (tokens: number[], from: number, max: number) => {
    for (let end = Math.min(from + max, tokens.length);; end--) {
      const text = bpe.decode(tokens.slice(from, end));
      const n = bpe.countTokens(text);
      if (n <= max || end - from <= 1) return { text, tokens: n, end };
    }
  };
  return {
    encoding: "cl100k_base",
    count: (text) => bpe.countTokens(text),
    within(text, max) {
      const n = bpe.isWithinTokenLimit(text, max);
      return n === false ? undefined : n;
    },
    truncate(text, max) {
      const tokens = bpe.encode(text);
      return tokens.length <= max ? text : fit(tokens, 0, max).text;
    },
    split(text, max) {
      const tokens = bpe.encode(text);
      if (tokens.length <= max) return [{ text, tokens: tokens.length }];
      const pieces = [];
      for (let i = 0; i < tokens.length;) {
        const piece = fit(tokens, i, max);
        pieces.push({ text: piece.text, tokens: piece.tokens });
        i = piece.end;
      }
      return pieces;
    },
  };
}
