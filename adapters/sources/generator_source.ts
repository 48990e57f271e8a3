import { z } from "zod";
import type { RawItem } from "../../engine/item.ts";
import type { SourceSpec } from "../../engine/registry.ts";
import type { Source } from "../../engine/source.ts";
import {
  articleUrl,
  breakRule,
  duplicate,
  nearDuplicate,
  type Original,
} from "./_generator_copies.ts";
import { bodyOf, buildPools, isoOf, type Pools, titleOf } from "./_generator_pools.ts";
import { pick, type Rand, SITES, TAGS, TECHS } from "./_generator_words.ts";
import { mulberry32 } from "./_mulberry32.ts";

/**
 * The `generator` source block: tech-news-like demo data with a known share
 * of exact duplicates, near duplicates and invalid items, the same for the
 * same seed. Counts are exact: round(count * fraction) of each.
 *
 * Made to meet the demo flow's rules exactly:
 * `validate: {require: [title, url], title: {min: 5}, spam: [casino]}` rejects
 * every invalid item and nothing else (each breaks one rule: no title, no
 * url, url "notaurl", a title under 5 characters, or "casino" in the title);
 * `dedupe: {key: [url], near: {threshold: 0.8}}` drops every exact duplicate
 * (same url, half of them with utm_source/utm_medium added, which canonical
 * URL handling removes) and every near duplicate (its own url on another
 * site, the title re-cased, re-punctuated or suffixed " | Site", the text
 * the same but for one swapped word or one or two appended words: word
 * 3-shingle Jaccard >= 0.9), and keeps every unique item (texts of distinct
 * items have Jaccard < 0.3). So a flow passes stats.unique items.
 *
 * @example
 * ```yaml
 * sources:
 *   demo: { kind: generator, count: 5000, seed: 42 }
 * ```
 */
export const generatorConfig = z
  .strictObject({
    count: z.int().min(0).default(5000).describe(
      "Items per read, all kinds together. Default 5000.",
    ),
    seed: z.int().default(42).describe(
      "Seed of the PRNG: the same seed gives the same items. Default 42.",
    ),
    duplicates: z
      .number()
      .min(0)
      .max(1)
      .default(0.08)
      .describe("Share of exact duplicates of an earlier item. Default 0.08."),
    nearDuplicates: z
      .number()
      .min(0)
      .max(1)
      .default(0.04)
      .describe("Share of near duplicates of an earlier item. Default 0.04."),
    invalid: z
      .number()
      .min(0)
      .max(1)
      .default(0.04)
      .describe("Share of items the demo validate stage rejects. Default 0.04."),
    batch: z.int().positive().default(500).describe("Items per yielded batch. Default 500."),
  })
  .superRefine((c, ctx) => {
    // A count or share refused above is the problem to say: this one would lead the error.
    const share = (x: number) => typeof x === "number" && x >= 0 && x <= 1;
    if (!Number.isInteger(c.count) || c.count < 0) return;
    if (![c.duplicates, c.nearDuplicates, c.invalid].every(share)) return;
    const n = planCounts(c);
    if (n.unique < 0 || (n.unique === 0 && n.duplicates + n.nearDuplicates > 0)) {
      ctx.addIssue({
        code: "custom",
        message: `duplicates + nearDuplicates + invalid leave no unique item of ${c.count} to copy`,
      });
    }
  });

export type GeneratorConfig = z.output<typeof generatorConfig>;

/** What each generated item is, for checking a pipeline against the truth. */
export type GeneratedLabel = "unique" | "duplicate" | "near" | "invalid";

export interface GeneratedStats {
  total: number;
  duplicates: number;
  nearDuplicates: number;
  invalid: number;
  /** Items a correct validate + dedupe keeps: total - duplicates - nearDuplicates - invalid. */
  unique: number;
}

export interface GeneratedItems {
  items: RawItem[];
  stats: GeneratedStats;
  /** The label of each item, by index. */
  labels: GeneratedLabel[];
  /** For a duplicate or near duplicate, the index of the unique item it copies; else -1. */
  origin: Int32Array;
}

/** Registers as `kind: generator`. */
export const generatorSource: SourceSpec<GeneratorConfig> = {
  kind: "generator",
  summary: "Generates deterministic tech-news demo items with known duplicates and invalid items",
  schema: generatorConfig,
  create: (config) => new GeneratorSource(config),
};

/** Where a generator stands: items of the current pass already emitted. */
export interface GeneratorPosition {
  emitted: number;
}

/**
 * Every read() yields the same `count` items (same seed) in batches of
 * `batch`, generated as they are yielded so a million items do not wait for
 * each other. A polled generator therefore repeats itself: the Deduper's job.
 *
 * Its checkpoint is how many items of the current pass it emitted. Resumed
 * from one, the next read skips that many (made and discarded: the
 * sequence is one PRNG stream, and 20,000 items take about 0.3 s) and
 * yields the rest, nothing at all when the pass was complete, so a
 * restarted one-shot generator does not emit anything twice; reads after
 * that one start over, as polls do.
 */
class GeneratorSource implements Source {
  #emitted = 0;
  /** Where the next read starts, once, after resume(). */
  #resumeAt = 0;

  constructor(private readonly config: GeneratorConfig) {}

  checkpoint(): GeneratorPosition {
    return { emitted: this.#emitted };
  }

  resume(position: unknown): void {
    if (position === undefined || position === null) position = { emitted: 0 };
    const emitted = (position as Partial<GeneratorPosition>).emitted;
    if (typeof emitted !== "number" || !Number.isInteger(emitted) || emitted < 0) {
      throw new Error(
        `generator: cannot resume from ${
          JSON.stringify(position)
        }: expected { "emitted": <count> }`,
      );
    }
    this.#resumeAt = this.#emitted = Math.min(emitted, this.config.count);
  }

  async *read(signal: AbortSignal): AsyncIterable<RawItem[]> {
    const skip = this.#resumeAt;
    this.#resumeAt = 0;
    this.#emitted = skip;
    if (skip >= this.config.count) return;
    let batch: RawItem[] = [];
    let seen = 0;
    for (const item of generate(this.config)) {
      if (seen++ < skip) continue;
      batch.push(item);
      if (batch.length === this.config.batch) {
        signal.throwIfAborted();
        this.#emitted += batch.length;
        yield batch;
        batch = [];
      }
    }
    signal.throwIfAborted();
    if (batch.length) {
      this.#emitted += batch.length;
      yield batch;
    }
  }
}

/**
 * All items of a generator config at once, with the counts a pipeline
 * should arrive at and the label of each item.
 *
 * @example
 * ```ts
 * import { generateItems } from "./generator_source.ts";
 * const { items, stats } = generateItems({ count: 1000 });
 * if (items.length !== 1000 || stats.unique !== 1000 - 80 - 40 - 40) throw new Error();
 * ```
 */
export function generateItems(config: Partial<GeneratorConfig> = {}): GeneratedItems {
  const c = generatorConfig.parse(config);
  const labels: GeneratedLabel[] = new Array(c.count);
  const origin = new Int32Array(c.count).fill(-1);
  const items = Array.from(generate(c, { labels, origin }));
  return { items, stats: planCounts(c), labels, origin };
}

function planCounts(
  c: Pick<GeneratorConfig, "count" | "duplicates" | "nearDuplicates" | "invalid">,
) {
  const duplicates = Math.round(c.count * c.duplicates);
  const nearDuplicates = Math.round(c.count * c.nearDuplicates);
  const invalid = Math.round(c.count * c.invalid);
  const unique = c.count - duplicates - nearDuplicates - invalid;
  return { total: c.count, duplicates, nearDuplicates, invalid, unique };
}

const UNIQUE = 0, DUPLICATE = 1, NEAR = 2, INVALID = 3;
const LABELS: readonly GeneratedLabel[] = ["unique", "duplicate", "near", "invalid"];
const START_MS = Date.UTC(2023, 0, 1);
const SPAN_S = 3 * 365 * 86_400;
function* generate(
  c: GeneratorConfig,
  truth?: { labels: GeneratedLabel[]; origin: Int32Array },
): Generator<RawItem> {
  const r = mulberry32(c.seed);
  const roles = planRoles(c, r);
  const pools = buildPools(r, c.seed ^ 0x5bd1e995);
  // Unique items are not kept: each can be made again from the PRNG state it
  // was made from, so a stream of any length holds no items in memory.
  const states = new Int32Array(c.count);
  const positions = new Int32Array(c.count);
  let uniques = 0, duplicates = 0, nears = 0, invalids = 0;
  for (let i = 0; i < c.count; i++) {
    const role = roles[i];
    let item: RawItem;
    if (role === UNIQUE) {
      states[uniques] = r.state();
      positions[uniques++] = i;
      item = original(r, i, pools).item;
    } else if (role === INVALID) {
      item = breakRule(original(r, i, pools).item, invalids++, r);
    } else {
      const k = (r() * uniques) | 0;
      const from = original(mulberry32(states[k]), positions[k], pools);
      item = role === DUPLICATE
        ? duplicate(from, duplicates++)
        : nearDuplicate(from, i, nears++, r);
      if (truth) truth.origin[i] = from.index;
    }
    if (truth) truth.labels[i] = LABELS[role];
    yield item;
  }
}

/** Which item is what: exact counts, shuffled, and a unique item first so copies have a source. */
function planRoles(c: GeneratorConfig, r: Rand): Uint8Array {
  const n = planCounts(c);
  const roles = new Uint8Array(c.count); // UNIQUE = 0
  let at = 0;
  for (
    const [role, k] of [[DUPLICATE, n.duplicates], [NEAR, n.nearDuplicates], [INVALID, n.invalid]]
  ) {
    roles.fill(role, at, at + k);
    at += k;
  }
  for (let i = roles.length - 1; i > 0; i--) {
    const j = (r() * (i + 1)) | 0;
    const t = roles[i];
    roles[i] = roles[j];
    roles[j] = t;
  }
  const first = roles.indexOf(UNIQUE);
  if (first > 0) [roles[0], roles[first]] = [roles[first], roles[0]];
  return roles;
}

function original(r: Rand, i: number, p: Pools): Original {
  const site = (r() * SITES.length) | 0;
  const t = titleOf(p, i);
  const ms = START_MS + ((r() * SPAN_S) | 0) * 1000;
  const score = Math.floor(Math.exp(r() * 7));
  const item: RawItem = {
    title: p.titles[t],
    url: articleUrl(site, ms, p.slugs[t], i),
    text: bodyOf(p, r),
    author: p.authors[(r() * p.authors.length) | 0],
    publishedAt: isoOf(ms),
    site: SITES[site].name,
    tags: [pick(r, TECHS)[1], pick(r, TAGS)],
    engagement: { score, comments: Math.floor(score * r() * 0.5) },
  };
  return { item, index: i, site, ms, slug: p.slugs[t] };
}
