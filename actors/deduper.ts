import { z } from "zod";
import { duration } from "../config/units.ts";
import type { Actor, Outcome, StageContext } from "../engine/actor.ts";
import { canonicalUrl } from "../adapters/http/canonical_url.ts";
import { hash128 } from "../engine/hash.ts";
import type { Envelope, RawItem, ValidItem } from "../engine/item.ts";
import type { BuildEnv, StageSpec } from "../engine/registry.ts";
import {
  type Claim,
  type ClaimRequest,
  type DedupeStore,
  MemoryDedupeStore,
  type NearIndex,
  type NearRequest,
} from "./_dedupe_store.ts";
import { MemoryNearIndex } from "./_memory_near_index.ts";
import { minhash } from "./_minhash.ts";
import { RedisDedupeStore } from "./_redis_dedupe_store.ts";
import { RedisNearIndex } from "./_redis_near_index.ts";
import { plainText, words } from "./_text.ts";

export {
  type Claim,
  type ClaimRequest,
  type DedupeStore,
  MemoryDedupeStore,
  type NearIndex,
  type NearRequest,
} from "./_dedupe_store.ts";
export { MemoryNearIndex } from "./_memory_near_index.ts";
export { RedisDedupeStore } from "./_redis_dedupe_store.ts";
export { RedisNearIndex } from "./_redis_near_index.ts";

const DAY_MS = 86_400_000;

/** Fields whose values are compared as canonical URLs, not as text. */
const URL_FIELDS = new Set(["url", "link", "canonicalUrl"]);

const nearSchema = z.strictObject({
  field: z.string().min(1).default("text")
    .describe(
      "Payload field compared, HTML stripped; the title stands in when it is empty; default text.",
    ),
  threshold: z.number().gt(0).max(1).default(0.8)
    .describe(
      "Estimated Jaccard similarity of word shingles at or above which an item is a near duplicate; default 0.8.",
    ),
  shingle: z.int().min(1).max(10).default(3)
    .describe("Words per shingle; default 3."),
  maxItems: z.int().positive().default(1_000_000)
    .describe(
      "Texts remembered at most (about 170 bytes each in memory); past it the oldest are forgotten before their ttl; default 1000000.",
    ),
}).describe("Near-duplicate detection: MinHash over word shingles with LSH banding.");

export const dedupeConfigSchema = z.strictObject({
  key: z.array(z.string().min(1)).min(1).default(["url"])
    .describe(
      "Payload fields whose values together make an item's exact key; url, link and canonicalUrl are compared as canonical URLs, other strings trimmed and lower-cased; default [url].",
    ),
  ttl: duration().default(DAY_MS).describe(
    "How long a key is remembered from its first sighting (in a durable flow by Redis's clock); default 24h.",
  ),
  expected: z.int().positive().default(1_000_000)
    .describe(
      "Distinct keys the in-process bloom filter is sized for (unused in a durable flow); default 1000000.",
    ),
  errorRate: z.number().gt(0).lt(1).default(0.001)
    .describe(
      "In-process bloom filter false-positive rate at `expected` keys (unused in a durable flow); default 0.001.",
    ),
  near: nearSchema.optional().describe("Also drop near duplicates by text; default off."),
}).describe(
  "Drops items already seen within the ttl: same key, or (with `near`) nearly the same text.",
);

export type DedupeConfig = z.output<typeof dedupeConfigSchema>;

export interface DeduperOptions {
  /** The clock, in epoch ms; tests pass a fake one. Default Date.now. */
  now?: () => number;
  /** Where claims live; default: in Redis when `durable` is given, else a MemoryDedupeStore. */
  store?: DedupeStore;
  /** Where near-duplicate lookups live (with `near` in the config); default beside the store. */
  nearIndex?: NearIndex;
  /**
   * A durable flow's Redis and key layout (BuildEnv.durable): claims and
   * near-duplicate buckets then live under `keys.dedupe(<stage id>)`, shared
   * by every process of the flow.
   */
  durable?: BuildEnv["durable"];
}

interface State {
  store: DedupeStore;
  near?: NearIndex;
}

/**
 * The Deduper. Per batch: the exact key of every item is claimed in the
 * store; a key held by another ingestion event drops the item as
 * "duplicate", while the same event again (a redelivery after a crash or
 * retry) passes, so an item is never mistaken for its own copy. With `near`,
 * every item that was not a duplicate is then compared by text with the
 * items remembered before it (in earlier batches, or earlier in its own)
 * and dropped as `near-duplicate of <id>` (the id of the earliest match),
 * in which case its key claim is released: only items that pass both
 * checks are remembered. A redelivered item is compared too, and the index
 * knows the events it remembers, so it passes when its first delivery was
 * remembered and is dropped again when that was a near duplicate: a batch
 * retried after failing between its claims and its near check (two round
 * trips in Redis) gets the answers it would have had.
 *
 * In a durable flow (BuildEnv.durable) claims and near-duplicate buckets
 * live in Redis under `keys.dedupe(<stage id>)`, shared by every process,
 * with no bloom filter in front: a batch costs one round trip for its
 * claims and, with `near`, one more for its text lookups (skipped when the
 * whole batch was duplicates). Otherwise everything lives in process and
 * `handle` returns without awaiting anything.
 *
 * An item whose key fields are all empty is keyed by its envelope id (which
 * is derived from its url, guid, or title and text), never by "", which
 * would make all such items copies of the first.
 *
 * Per item in process this costs a canonical URL (about 2 µs), a hash and a
 * store claim (a few µs); near-duplicate detection adds about 0.1 µs per
 * word of text.
 *
 * @example
 * ```ts
 * import { dedupeConfigSchema, Deduper } from "./deduper.ts";
 *
 * const deduper = new Deduper(dedupeConfigSchema.parse({ key: ["url"], ttl: "1h" }));
 * if (deduper.keyOf({ title: "A", url: "https://example.com/a?utm_source=x" }) !==
 *   deduper.keyOf({ title: "B", url: "https://EXAMPLE.com/a/" })) throw new Error("same key");
 * ```
 */
export class Deduper implements Actor<ValidItem, ValidItem> {
  readonly #config: DedupeConfig;
  readonly #now: () => number;
  readonly #options: DeduperOptions;
  /** Built on first use: in a durable flow the keys depend on the stage id. */
  #state?: State;

  constructor(config: DedupeConfig, options: DeduperOptions = {}) {
    this.#config = config;
    this.#now = options.now ?? Date.now;
    this.#options = options;
  }

  open(ctx: StageContext): void {
    this.#stateFor(ctx);
  }

  handle(
    batch: readonly Envelope<ValidItem>[],
    out: Outcome<ValidItem>,
    ctx?: StageContext,
  ): void | Promise<void> {
    // A deletion is news about an item, not a copy of it: it passes on to the
    // sinks after the batch's other items, unclaimed and unchecked.
    if (batch.some((item) => item.payload.deleted === true)) {
      const deletes = batch.filter((item) => item.payload.deleted === true);
      const rest = batch.filter((item) => item.payload.deleted !== true);
      const passDeletes = () => deletes.forEach((item) => out.emit(item));
      const done = rest.length > 0 ? this.handle(rest, out, ctx) : undefined;
      return done instanceof Promise ? done.then(passDeletes) : passDeletes();
    }
    const state = this.#stateFor(ctx);
    const now = this.#now();
    const claims: ClaimRequest[] = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i];
      const key = this.keyOf(item.payload) ?? hash128("\u0001id\u0000" + item.id);
      claims[i] = { key, event: item.event };
    }
    const answers = state.store.claimMany(claims, now, this.#config.ttl);
    if (answers instanceof Promise) {
      return answers.then((a) => this.#afterClaims(state, batch, claims, a, now, out));
    }
    return this.#afterClaims(state, batch, claims, answers, now, out);
  }

  /**
   * The exact key of a payload: 32 hex chars, the same in every process; or
   * undefined when every key field is empty.
   */
  keyOf(payload: RawItem): string | undefined {
    let joined = "";
    let empty = true;
    for (const field of this.#config.key) {
      const part = keyPart(field, payload[field]);
      if (part !== "") empty = false;
      joined += part + "\u0000";
    }
    return empty ? undefined : hash128(joined);
  }

  /** Runs the near check on the items that were not duplicates, then reports every item. */
  #afterClaims(
    state: State,
    batch: readonly Envelope<ValidItem>[],
    claims: readonly ClaimRequest[],
    answers: readonly Claim[],
    now: number,
    out: Outcome<ValidItem>,
  ): void | Promise<void> {
    const near = this.#config.near;
    if (!near || !state.near) return report(batch, answers, [], [], out);
    const requests: NearRequest[] = [];
    const at: number[] = [];
    for (let i = 0; i < batch.length; i++) {
      if (answers[i] === "duplicate") continue;
      const signature = minhash(nearWords(batch[i].payload, near.field), near.shingle);
      if (signature === undefined) continue;
      requests.push({ ...claims[i], id: batch[i].id, signature });
      at.push(i);
    }
    if (requests.length === 0) return report(batch, answers, [], [], out);
    const matches = state.near.matchMany(requests, now, this.#config.ttl);
    if (matches instanceof Promise) return matches.then((m) => report(batch, answers, at, m, out));
    return report(batch, answers, at, matches, out);
  }

  #stateFor(ctx: StageContext | undefined): State {
    if (this.#state) return this.#state;
    const { store, nearIndex, durable } = this.#options;
    const config = this.#config;
    if (durable && !store) {
      if (!ctx) {
        throw new Error("dedupe: a durable Deduper needs the stage context to name its keys");
      }
      const base = durable.keys.dedupe(ctx.stage);
      return this.#state = {
        store: new RedisDedupeStore(durable.redis, base),
        near: config.near &&
          (nearIndex ??
            new RedisNearIndex(durable.redis, base, config.near.threshold, config.near)),
      };
    }
    const s = store ??
      new MemoryDedupeStore({ expected: config.expected, errorRate: config.errorRate });
    return this.#state = {
      store: s,
      near: config.near &&
        (nearIndex ?? new MemoryNearIndex(s, config.near.threshold, config.near)),
    };
  }
}

/** Emits or drops every item of the batch, in order, once all answers are in. */
function report(
  batch: readonly Envelope<ValidItem>[],
  answers: readonly Claim[],
  nearAt: readonly number[],
  matches: readonly (string | undefined)[],
  out: Outcome<ValidItem>,
): void {
  const copyOf: (string | undefined)[] = new Array(batch.length);
  for (let j = 0; j < nearAt.length; j++) copyOf[nearAt[j]] = matches[j];
  for (let i = 0; i < batch.length; i++) {
    const item = batch[i];
    if (answers[i] === "duplicate") out.drop(item, "duplicate");
    else if (copyOf[i] !== undefined) {
      out.drop(item, "near-duplicate", `near-duplicate of ${copyOf[i]}`);
    } else out.emit(item);
  }
}

function keyPart(field: string, value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") {
    const trimmed = value.trim();
    return (URL_FIELDS.has(field) ? canonicalUrl(trimmed) : undefined) ?? trimmed.toLowerCase();
  }
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** The lower-cased words of the near field, or of the title when that field is empty. */
function nearWords(payload: RawItem, field: string): string[] {
  const value = payload[field];
  let found = typeof value === "string" ? words(plainText(value)) : [];
  if (found.length === 0 && typeof payload.title === "string") {
    found = words(plainText(payload.title));
  }
  return found.map((w) => w.toLowerCase());
}

/**
 * ```yaml
 * - dedupe:
 *     key: [url, title]
 *     ttl: 24h
 *     expected: 1000000
 *     errorRate: 0.001
 *     near: { field: text, threshold: 0.8, shingle: 3, maxItems: 200000 }
 * ```
 */
export const dedupeStage: StageSpec<DedupeConfig> = {
  kind: "dedupe",
  summary:
    "Drops items seen before within a ttl, by exact key and optionally by near-identical text.",
  schema: dedupeConfigSchema,
  needs: () => ["valid"],
  adds: ["unique"],
  create: (config, env) => new Deduper(config, { durable: env.durable }),
};
