import {
  charsPerToken,
  encodingFor,
  loadTokenCounter,
  type TokenCounter,
} from "../adapters/embeddings/token_count.ts";
import type { Envelope } from "../engine/item.ts";
import { compileTemplate, type Template } from "./_template.ts";

/** What happens to an input longer than the model takes. */
export type LongInputPolicy = "truncate" | "chunk-average" | "reject";

/** An item's text as sent: one input, or several chunks to average; or why it is refused. */
export type Prepared =
  | { texts: string[]; tokens: number[]; total: number; rejected?: undefined; deleted?: undefined }
  | { rejected: { label: string; detail: string }; total: 0; deleted?: undefined }
  | { deleted: true; total: 0; rejected?: undefined };

/** A tombstone passes on without a vector: sinks delete it by id, and embedding it costs money. */
const DELETED: Prepared = { deleted: true, total: 0 };

export interface EmbedInputsOptions {
  /** Template over payload fields. */
  input: string;
  /** Cut before tokenizing; Infinity for none. */
  maxInputChars: number;
  /** Model whose tokens are counted (exactly when token_count.ts knows it). */
  model: string;
  maxTokens: number;
  policy: LongInputPolicy;
  /** Refuse inputs with nothing but whitespace (remote APIs answer them with a 400). */
  rejectEmpty: boolean;
}

/**
 * Turns items into the texts the embedding client receives, with their token
 * counts. The window weighs each item by these counts and the Embedder sends
 * these texts, so both see the same thing; each item's result is kept on
 * the item's envelope (weakly) so the tokenizer runs once per item, not once
 * for the window and again for the call.
 */
export class EmbedInputs {
  readonly #options: EmbedInputsOptions;
  readonly #render: Template;
  readonly #memo = new WeakMap<object, Prepared>();
  /** Undefined until `load` brings the model's tokenizer; counts are then provisional (chars/4). */
  #counter?: TokenCounter;

  constructor(options: EmbedInputsOptions) {
    this.#options = options;
    this.#render = compileTemplate(options.input);
    if (encodingFor(options.model) === undefined) this.#counter = charsPerToken;
  }

  /** The input template, as the flow gives it. */
  get input(): string {
    return this.#options.input;
  }

  /** Loads the model's tokenizer; call before the first batch. */
  async load(): Promise<void> {
    this.#counter ??= await loadTokenCounter(this.#options.model);
  }

  /** "cl100k_base", or "chars/4" (also before `load`). */
  get encoding(): string {
    return (this.#counter ?? charsPerToken).encoding;
  }

  /** Tokens of any text, as the budget counts them. */
  count(text: string): number {
    return (this.#counter ?? charsPerToken).count(text);
  }

  /** The tokens an item adds to its batch. */
  weigh(item: Envelope<Record<string, unknown>>): number {
    return this.prepare(item).total;
  }

  prepare(item: Envelope<Record<string, unknown>>): Prepared {
    const known = this.#memo.get(item);
    if (known) return known;
    const prepared = item.payload.deleted === true ? DELETED : this.#prepare(item.payload);
    if (this.#counter) this.#memo.set(item, prepared);
    return prepared;
  }

  #prepare(payload: Record<string, unknown>): Prepared {
    const { maxInputChars, maxTokens, policy, rejectEmpty } = this.#options;
    const counter = this.#counter ?? charsPerToken;
    const text = this.#render(payload).slice(0, maxInputChars);
    if (rejectEmpty && text.trim() === "") {
      return {
        rejected: { label: "empty input", detail: "empty input: nothing to embed" },
        total: 0,
      };
    }
    const tokens = counter.within(text, maxTokens);
    if (tokens !== undefined) return { texts: [text], tokens: [tokens], total: tokens };
    if (policy === "truncate") {
      return { texts: [counter.truncate(text, maxTokens)], tokens: [maxTokens], total: maxTokens };
    }
    if (policy === "chunk-average") {
      const pieces = counter.split(text, maxTokens);
      const counts = pieces.map((p) => p.tokens);
      return {
        texts: pieces.map((p) => p.text),
        tokens: counts,
        total: counts.reduce((a, b) => a + b, 0),
      };
    }
    const detail = `input of ${counter.count(text)} tokens (${counter.encoding}) is over ` +
      `truncate.maxTokens ${maxTokens}`;
    return { rejected: { label: "too long", detail }, total: 0 };
  }
}

/**
 * One vector from an item's chunk vectors: their mean weighted by each
 * chunk's tokens, scaled back to unit length, as OpenAI's cookbook does for
 * texts longer than the context. A single chunk's vector is returned as is.
 */
export function combineChunks(vectors: number[][], tokens: number[]): number[] {
  if (vectors.length === 1) return vectors[0];
  const out = new Array<number>(vectors[0].length).fill(0);
  for (let c = 0; c < vectors.length; c++) {
    const v = vectors[c];
    for (let d = 0; d < out.length; d++) out[d] += v[d] * tokens[c];
  }
  let sum = 0;
  for (const x of out) sum += x * x;
  if (sum === 0) return out;
  const inv = 1 / Math.sqrt(sum);
  for (let d = 0; d < out.length; d++) out[d] *= inv;
  return out;
}
