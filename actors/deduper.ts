import { z } from "zod";
import { duration } from "../config/units.ts";
import type { Actor, Outcome, StageContext } from "../engine/actor.ts";
import { urlKey } from "../engine/canonical_url.ts";
import { maskUrl } from "../engine/mask_url.ts";
import { hash128 } from "../engine/hash.ts";
import {
  type Envelope,
  type MergedFields,
  type RawItem,
  urlId,
  type ValidItem,
} from "../engine/item.ts";
import type { BuildEnv, StageSpec } from "../engine/registry.ts";
import {
  type Claim,
  type ClaimRequest,
  type DedupeStore,
  MemoryDedupeStore,
  type MergeRequest,
  type NearIndex,
  type NearRequest,
  type Story,
} from "./_dedupe_store.ts";
import { MemoryNearIndex } from "./_memory_near_index.ts";
import { minhashOfText, minhashOfTitled } from "./_minhash.ts";
import { RedisDedupeStore } from "./_redis_dedupe_store.ts";
import { RedisNearIndex } from "./_redis_near_index.ts";
import { plainText } from "./_text.ts";

export {
  type Claim,
  type ClaimRequest,
  type DedupeStore,
  MemoryDedupeStore,
  type MergeRequest,
  type NearIndex,
  type NearRequest,
  type Story,
} from "./_dedupe_store.ts";
export { MemoryNearIndex } from "./_memory_near_index.ts";
export { RedisDedupeStore } from "./_redis_dedupe_store.ts";
export { RedisNearIndex } from "./_redis_near_index.ts";

const DAY_MS = 86_400_000;

/** Engagement fields merged by maximum unless the flow names others. */
export const ENGAGEMENT_FIELDS = ["score", "comments", "likes", "shares", "views"];

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
  // Optional: in process it defaults to the dedupe's maxItems (a text that
  // outlived its story would make a near duplicate of it a pending story that
  // sends nothing); in Redis to 1000000, as before.
  maxItems: z.int().positive().optional()
    .describe(
      "Texts remembered at most (about 270 bytes each in process); past it the oldest are forgotten before their ttl; default: the dedupe's maxItems in process, 1000000 in Redis.",
    ),
}).describe("Near-duplicate detection: MinHash over word shingles with LSH banding.");

/** Keys (and stories, and texts) a Deduper holds at most in process unless `maxItems` says. */
const DEFAULT_MAX_ITEMS = 100_000;

export const dedupeConfigSchema = z.strictObject({
  key: z.array(z.string().min(1)).min(1).default(["url"])
    .describe(
      "Payload fields whose values together make an item's exact key; url, link and canonicalUrl are compared as canonical URLs, other strings trimmed and lower-cased; default [url].",
    ),
  ttl: duration({ positive: true, long: true }).default(DAY_MS).describe(
    "How long a key is remembered from its first sighting (in a durable flow by Redis's clock); default 24h.",
  ),
  // The in-process store had a bloom filter in front of a Map; its keys are
  // now a typed table that answers as fast without one. Any value loads, so
  // flows that set them still run; building the stage warns.
  expected: z.unknown().optional().describe(
    "Ignored, with a warning: sized the in-process bloom filter, which is gone. Kept so flows that set it load.",
  ),
  errorRate: z.unknown().optional().describe(
    "Ignored, with a warning: the in-process bloom filter's false-positive rate; it is gone. Kept so flows that set it load.",
  ),
  // Why 100,000: an item held costs about 0.6 KB of heap with merge and near
  // (its key 64 bytes, tests/actors/key_claims_test.ts; its text's signature
  // about 180, by a throwaway probe; its story as JSON about 350, by
  // tests/actors/dedupe_store_memory_test.ts), and V8 sizes its heap to several times
  // what it holds, so 100,000 items (60 MB) stay within a few hundred MB of
  // RSS where the ttl alone let the demo reach 3 GB at a million items. Copies
  // of a story come within hours; at a million items a day that is 2.4 hours.
  // No default in the schema: the in-process store applies it
  // (DEFAULT_MAX_ITEMS), so a durable flow that sets it can be told it does nothing.
  maxItems: z.int().positive().optional()
    .describe(
      "Keys, and with merge stories, held at most in process (unused in a durable flow); past it the oldest are forgotten before their ttl, and a copy of a forgotten item passes as new; default 100000 (about 60 MB of heap with merge and near).",
    ),
  near: nearSchema.optional().describe("Also catch near duplicates by text; default off."),
  merge: z.boolean().default(true).describe(
    "Fold a duplicate into its first copy (sources, engagement, lastSeenAt) and send the sinks an update of that story; false drops it unseen; default true.",
  ),
  engagement: z.array(z.string().min(1)).default(ENGAGEMENT_FIELDS).describe(
    `Fields of an item's \`engagement\` whose maximum a merged story keeps; default [${
      ENGAGEMENT_FIELDS.join(", ")
    }].`,
  ),
}).describe(
  "Catches items already seen within the ttl (same key, or with `near` nearly the same text) and merges them into their first copy.",
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
  /**
   * The near index when it was built here beside a Redis store: one script
   * then makes a batch's claims, lookups and folds (claimAndMatchMany).
   */
  redisNear?: RedisNearIndex;
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
 * retried after failing between its claims and its near check (an index
 * of the flow's own that does them apart) gets the answers it would have had.
 *
 * In a durable flow (BuildEnv.durable) claims and near-duplicate buckets
 * live in Redis under `keys.dedupe(<stage id>)`, shared by every process,
 * with no bloom filter in front: a batch's claims and text lookups are one
 * script, so one round trip (signatures are made for every item, a
 * duplicate's too, as which items are duplicates is known only in Redis).
 * Redis runs each batch's script whole, so batches in flight at once
 * (`concurrency` above 1) answer as one batch at a time would, in the order
 * their scripts reached Redis: the order `handle` was called in, unless a
 * batch was tried again (Redis was away) or its script loaded again.
 * Otherwise everything lives in process and `handle` returns without
 * awaiting anything.
 *
 * An item whose key fields are all empty is keyed by its envelope id (which
 * is derived from its url, guid, or title and text), never by "", which
 * would make all such items copies of the first.
 *
 * Ids: an item leaves under its key as id (the story id), so copies that
 * share a key share one id whichever comes first, in every process. With
 * the default key [url] that is the envelope id already (engine/item.ts
 * hashes the canonical url the same way); other keys re-id the items.
 *
 * Merge (`merge: true`, the default): after the claims and the near check,
 * every item is folded into its story in the store (_story.ts): a first
 * copy into its own, a duplicate into its first copy's (a near duplicate
 * into the story it matched). A first copy leaves with the story's merged
 * fields (`sources`, `engagement`, `lastSeenAt`, `revision`); a duplicate
 * is dropped as before and an update envelope of its story leaves in its
 * place (Envelope.update, carrying only those fields), which later stages
 * pass by and sinks apply to the story's id. Folding is idempotent and the
 * store folds atomically (a Lua script in Redis), so a redelivery counts
 * nothing twice and processes merging at once lose nothing; an update
 * carries the revision it made, and sinks keep the highest. In Redis a
 * batch without `near` claims and folds in one script (one round trip, as
 * without merge); with `near`, in the one script of claims and lookups.
 *
 * Per item in process this costs a canonical URL (about 2 µs), a hash and a
 * store claim (a few µs); near-duplicate detection adds about 0.1 µs per
 * word of text.
 *
 * Memory in process is bounded by count as well as by ttl: at most
 * `maxItems` keys, `maxItems` stories and (unless `near.maxItems` says
 * otherwise) `maxItems` texts, the oldest leaving first. A ttl alone let a
 * fast source fill the heap (a million generated items in a day's ttl:
 * over 3 GB of RSS). A copy that arrives after its item left passes as new.
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
  /** The key is the url alone: keys are then item ids (engine/item.ts urlId). */
  readonly #urlOnly: boolean;
  /** Whether the run was told, once, that an item had none of the key fields, or no near field. */
  #saidKey = false;
  #saidNear = false;
  /** Built on first use: in a durable flow the keys depend on the stage id. */
  #state?: State;

  constructor(config: DedupeConfig, options: DeduperOptions = {}) {
    this.#config = config;
    this.#now = options.now ?? Date.now;
    this.#options = options;
    this.#urlOnly = config.key.length === 1 && config.key[0] === "url";
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
      const passDeletes = () => deletes.forEach((item) => out.emit(this.#storyIdOf(item)));
      const done = rest.length > 0 ? this.handle(rest, out, ctx) : undefined;
      return done instanceof Promise ? done.then(passDeletes) : passDeletes();
    }
    const state = this.#stateFor(ctx);
    const now = this.#now();
    const claims: ClaimRequest[] = new Array(batch.length);
    // The canonical url: the key with key [url], a sighting's url with merge; else not needed.
    const needUrls = this.#urlOnly || this.#config.merge;
    const urls: string[] = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i];
      const url = item.payload.url;
      urls[i] = needUrls && typeof url === "string" && url.trim() !== "" ? urlKey(url) : "";
      const key = this.#urlOnly
        ? (urls[i] === "" ? undefined : urlId(urls[i]))
        : this.keyOf(item.payload);
      if (key === undefined && !this.#urlOnly && ctx && !this.#saidKey) {
        // Most likely a misspelt field, which would key every item by its id.
        this.#saidKey = true;
        const fields = JSON.stringify(this.#config.key);
        ctx.log.warn(
          `${ctx.flow}: ${ctx.stage}: item ${item.id} has none of the key fields ${fields}: ` +
            `keyed by its id instead (said once; check the field names)`,
        );
      }
      claims[i] = { key: key ?? item.id, event: item.event };
    }
    const near = this.#config.near;
    if (near && state.redisNear) {
      const signatures = batch.map((item) => this.#nearSignature(item, ctx));
      const copies = this.#config.merge
        ? batch.map((item, i) => this.#copy(item, claims[i].key, urls[i], "first"))
        : undefined;
      return state.redisNear.claimAndMatchMany(claims, signatures, now, this.#config.ttl, copies)
        .then(({ answers, matches, stories }) =>
          report(batch, claims, answers, matches, stories, out)
        );
    }
    if (this.#config.merge && !near && state.store.claimAndMergeMany) {
      const copies = batch.map((item, i) => this.#copy(item, claims[i].key, urls[i], "first"));
      return state.store.claimAndMergeMany(claims, copies, now, this.#config.ttl)
        .then(({ answers, stories }) => report(batch, claims, answers, [], stories, out));
    }
    const answers = state.store.claimMany(claims, now, this.#config.ttl);
    if (answers instanceof Promise) {
      return answers.then((a) => this.#afterClaims(state, batch, claims, urls, a, now, out, ctx));
    }
    return this.#afterClaims(state, batch, claims, urls, answers, now, out, ctx);
  }

  /** The near check's signature of a payload; says once when its field is missing and the title stands in. */
  #nearSignature(item: Envelope<RawItem>, ctx?: StageContext): Uint32Array | undefined {
    const { field, shingle } = this.#config.near!;
    const payload = item.payload;
    if (
      ctx && !this.#saidNear && typeof payload[field] !== "string" &&
      typeof payload.title === "string"
    ) {
      this.#saidNear = true;
      // Most often a source whose items have none (a feed with empty descriptions), else a misspelling.
      const url = typeof payload.url === "string" ? ` (${maskUrl(payload.url)})` : "";
      ctx.log.warn(
        `${ctx.flow}: ${ctx.stage}: an item of source ${item.source}${url} has no ` +
          `${JSON.stringify(field)} for the near check: its title stands in (said once; ` +
          `if that source's items all lack it, that is expected, else check near.field)`,
      );
    }
    return nearSignature(payload, field, shingle);
  }

  /**
   * A deletion under the id its story left under: with a key other than
   * [url] the Deduper re-ids items by their key, and a deletion keeping its
   * url's id would miss their rows. One that lacks the key's fields keeps
   * its id (nothing says which story it was).
   */
  #storyIdOf(item: Envelope<ValidItem>): Envelope<ValidItem> {
    if (this.#urlOnly) return item;
    const key = this.keyOf(item.payload);
    return key === undefined || key === item.id ? item : { ...item, id: key };
  }

  /**
   * The exact key of a payload: 32 hex chars, the same in every process; or
   * undefined when every key field is empty. It is also the id of the story
   * the payload belongs to: with the key [url] it equals the item id
   * (engine/item.ts itemId), with other keys the Deduper re-ids the items.
   */
  keyOf(payload: RawItem): string | undefined {
    const fields = this.#config.key;
    if (this.#urlOnly) {
      const url = payload.url;
      return typeof url === "string" && url.trim() !== "" ? urlId(urlKey(url)) : undefined;
    }
    let joined = "";
    let empty = true;
    for (const field of fields) {
      const part = keyPart(field, payload[field]);
      if (part !== "") empty = false;
      joined += part + "\u0000";
    }
    return empty ? undefined : hash128(joined);
  }

  /** Runs the near check on the items that were not duplicates, then merges or reports. */
  #afterClaims(
    state: State,
    batch: readonly Envelope<ValidItem>[],
    claims: readonly ClaimRequest[],
    urls: readonly string[],
    answers: readonly Claim[],
    now: number,
    out: Outcome<ValidItem>,
    ctx?: StageContext,
  ): void | Promise<void> {
    const near = this.#config.near;
    const storyOf: (string | undefined)[] = new Array(batch.length);
    if (!near || !state.near) {
      return this.#afterNear(state, batch, claims, urls, answers, storyOf, now, out);
    }
    const requests: NearRequest[] = [];
    const at: number[] = [];
    for (let i = 0; i < batch.length; i++) {
      if (answers[i] === "duplicate") continue;
      const signature = this.#nearSignature(batch[i], ctx);
      if (signature === undefined) continue;
      requests.push({ ...claims[i], id: claims[i].key, signature });
      at.push(i);
    }
    if (requests.length === 0) {
      return this.#afterNear(state, batch, claims, urls, answers, storyOf, now, out);
    }
    const matches = state.near.matchMany(requests, now, this.#config.ttl);
    const then = (m: readonly (string | undefined)[]) => {
      for (let j = 0; j < at.length; j++) storyOf[at[j]] = m[j];
      return this.#afterNear(state, batch, claims, urls, answers, storyOf, now, out);
    };
    return matches instanceof Promise ? matches.then(then) : then(matches);
  }

  /**
   * With `merge`, folds every item into its story (its own for a first
   * copy, its first copy's for a duplicate) and reports once the stories
   * are in; else reports at once. `nearOf[i]` is the story item i is a near
   * duplicate of.
   */
  #afterNear(
    state: State,
    batch: readonly Envelope<ValidItem>[],
    claims: readonly ClaimRequest[],
    urls: readonly string[],
    answers: readonly Claim[],
    nearOf: readonly (string | undefined)[],
    now: number,
    out: Outcome<ValidItem>,
  ): void | Promise<void> {
    if (!this.#config.merge) return report(batch, claims, answers, nearOf, undefined, out);
    const copies: MergeRequest[] = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const mode = answers[i] === "duplicate"
        ? "duplicate"
        : nearOf[i] !== undefined
        ? "near"
        : "first";
      copies[i] = this.#copy(batch[i], claims[i].key, urls[i], mode, nearOf[i]);
    }
    const stories = state.store.mergeMany(copies, now, this.#config.ttl);
    if (stories instanceof Promise) {
      return stories.then((s) => report(batch, claims, answers, nearOf, s, out));
    }
    return report(batch, claims, answers, nearOf, stories, out);
  }

  /** An item's contribution to its story (see _story.ts). */
  #copy(
    item: Envelope<ValidItem>,
    key: string,
    url: string,
    mode: MergeRequest["mode"],
    story = key,
  ): MergeRequest {
    return {
      story,
      own: key,
      mode,
      source: item.source,
      url: url || String(item.payload.url ?? ""),
      seenAt: item.seenAt,
      engagement: engagementOf(item.payload, this.#config.engagement),
    };
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
      const redisNear = config.near && !nearIndex
        ? new RedisNearIndex(durable.redis, base, config.near.threshold, config.near)
        : undefined;
      return this.#state = {
        store: new RedisDedupeStore(durable.redis, base),
        near: config.near && (nearIndex ?? redisNear),
        redisNear,
      };
    }
    const maxItems = config.maxItems ?? DEFAULT_MAX_ITEMS;
    const s = store ?? new MemoryDedupeStore({ maxItems });
    return this.#state = {
      store: s,
      near: config.near &&
        (nearIndex ??
          new MemoryNearIndex(s, config.near.threshold, {
            maxItems: config.near.maxItems ?? maxItems,
          })),
    };
  }
}

/**
 * Reports every item of the batch, in order, once all answers are in. A
 * first copy is emitted under its story id; with `stories` (merge on) it
 * carries its story's merged fields, and a duplicate is dropped and its
 * story sent on as an update (see Envelope.update).
 */
function report(
  batch: readonly Envelope<ValidItem>[],
  claims: readonly ClaimRequest[],
  answers: readonly Claim[],
  nearOf: readonly (string | undefined)[],
  stories: readonly (Story | undefined)[] | undefined,
  out: Outcome<ValidItem>,
): void {
  for (let i = 0; i < batch.length; i++) {
    const item = batch[i];
    const story = nearOf[i] ?? claims[i].key;
    const duplicate = answers[i] === "duplicate";
    if (duplicate || nearOf[i] !== undefined) {
      if (duplicate) out.drop(item, "duplicate");
      else out.drop(item, "near-duplicate", `near-duplicate of ${story}`);
      // A pending story sends nothing: its first copy will carry this sighting. Nor does one
      // still at revision 1, the state its first copy carried: every sink holds it already.
      const merged = stories?.[i];
      if (merged && merged.r > 1) {
        const payload = mergedFields(merged, undefined) as unknown as ValidItem;
        out.emit({ ...item, id: merged.id ?? story, update: true, payload });
      }
      continue;
    }
    if (!stories) out.emit(item.id === story ? item : { ...item, id: story });
    else {
      const payload = { ...item.payload, ...mergedFields(stories[i]!, item.payload.engagement) };
      out.emit({ ...item, id: stories[i]!.id ?? story, payload });
    }
  }
}

/** A story as the fields sinks receive; `engagement` keeps the first copy's other fields. */
function mergedFields(story: Story, engagement: RawItem["engagement"]): MergedFields {
  return {
    sources: story.s.map(([source, url, at]) => ({
      source,
      url,
      seenAt: new Date(at).toISOString(),
    })),
    engagement: engagement ? { ...(engagement as Record<string, number>), ...story.g } : story.g,
    lastSeenAt: new Date(story.l).toISOString(),
    revision: story.r,
  };
}

/** The numeric engagement fields of a payload that the flow merges. */
function engagementOf(payload: RawItem, fields: readonly string[]): Record<string, number> {
  const found: Record<string, number> = {};
  const engagement = payload.engagement as Record<string, unknown> | undefined;
  if (engagement === null || typeof engagement !== "object") return found;
  for (const field of fields) {
    const value = engagement[field];
    if (typeof value === "number" && Number.isFinite(value)) found[field] = value;
  }
  return found;
}

function keyPart(field: string, value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") {
    const trimmed = value.trim();
    return URL_FIELDS.has(field) ? urlKey(trimmed) : trimmed.toLowerCase();
  }
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/**
 * The MinHash of the near field's lower-cased words; of the title's and the
 * field's together, weighing the same (minhashOfTitled), when the field has
 * fewer than two shingles' worth of words, or of the title's alone when it
 * has none. A text that short says little of which story it is: a feed's
 * boilerplate (Hacker News's RSS gives every item the description
 * "Comments") signed alone would make every item of the feed a near
 * duplicate of its first; and a title many items share (a reddit thread's,
 * on each of its comments) must not make their short texts one.
 */
function nearSignature(payload: RawItem, field: string, shingle: number): Uint32Array | undefined {
  const value = payload[field];
  const text = typeof value === "string" ? plainText(value) : "";
  const own = minhashOfText(text, shingle, 2 * shingle);
  if (own || typeof payload.title !== "string") return own ?? minhashOfText(text, shingle);
  return minhashOfTitled(plainText(payload.title), text, shingle);
}

/**
 * ```yaml
 * - dedupe:
 *     key: [url, title]
 *     ttl: 24h
 *     maxItems: 200000
 *     near: { field: text, threshold: 0.8, shingle: 3, maxItems: 200000 }
 *     merge: true
 *     engagement: [score, comments, likes]
 * ```
 */
export const dedupeStage: StageSpec<DedupeConfig> = {
  kind: "dedupe",
  leavesInputs: true,
  // Stories are remembered, and copies given their story's id, by these fields.
  keyedBy: (c) => `key [${c.key.join(", ")}]`,
  summary:
    "Drops items seen before within a ttl, by exact key and optionally by near-identical text.",
  schema: dedupeConfigSchema,
  needs: () => ["valid"],
  adds: ["unique"],
  create: (config, env) => {
    if (env.durable && config.maxItems !== undefined) {
      env.log.warn(
        `${env.flow}: dedupe: maxItems bounds what a flow keeps in process; a durable flow keeps ` +
          `its keys in Redis for the ttl alone, so it does nothing here (near.maxItems does)`,
      );
    }
    if (config.expected !== undefined || config.errorRate !== undefined) {
      env.log.warn(
        `${env.flow}: dedupe: expected and errorRate are ignored (they sized a bloom filter the ` +
          `in-process dedupe no longer uses); remove them`,
      );
    }
    return new Deduper(config, { durable: env.durable });
  },
};
