import {
  FIRST_NAMES,
  LAST_NAMES,
  pick,
  type Rand,
  SENTENCE_TEMPLATES,
  TITLE_TEMPLATES,
} from "./_generator_words.ts";
import { mulberry32 } from "./_mulberry32.ts";

/**
 * Everything the generator draws from, built once per seed. A million items
 * must generate in a few seconds, so per item there are only picks from
 * these pools and a few string concatenations (V8 keeps those as ropes, no
 * copying); titles, slugs and author names are never built twice.
 */
export interface Pools {
  /** Distinct headlines, made on demand by `titleRand` as items need them. */
  titles: string[];
  /** URL slug of each title, with the dash that precedes the item number. */
  slugs: string[];
  seen: Set<string>;
  titleRand: Rand;
  /**
   * Body units: single sentences. Bodies of two distinct items may share a
   * unit by chance; with units this short, even two shared ones leave their
   * word 3-shingle Jaccard near 0.1.
   */
  units: string[];
  /** Each unit with a leading space, to append without building a separator. */
  spaced: string[];
  /** Words per unit. */
  words: Uint8Array;
  longest: number;
  authors: string[];
}

/** Distinct titles at most; items past this many reuse titles (with their own url and text). */
export const TITLE_POOL = 1 << 16;
const UNIT_POOL = 1 << 15;

export function buildPools(r: Rand, titleSeed: number): Pools {
  const units: string[] = new Array(UNIT_POOL);
  const spaced: string[] = new Array(UNIT_POOL);
  const words = new Uint8Array(UNIT_POOL);
  let longest = 0;
  for (let k = 0; k < UNIT_POOL; k++) {
    units[k] = pick(r, SENTENCE_TEMPLATES)(r);
    spaced[k] = " " + units[k];
    words[k] = wordCount(units[k]);
    longest = Math.max(longest, words[k]);
  }
  const authors = FIRST_NAMES.flatMap((f) => LAST_NAMES.map((l) => `${f} ${l}`));
  const titleRand = mulberry32(titleSeed);
  return {
    titles: [],
    slugs: [],
    seen: new Set(),
    titleRand,
    units,
    spaced,
    words,
    longest,
    authors,
  };
}

/**
 * The title of item i, as an index into `titles`: item i gets the i-th
 * distinct title while there are fewer than TITLE_POOL, then a scattered
 * earlier one.
 */
export function titleOf(p: Pools, i: number): number {
  const t = i < TITLE_POOL ? i : Math.imul(i, 0x9e3779b1) >>> 16;
  while (p.titles.length <= t) {
    const title = pick(p.titleRand, TITLE_TEMPLATES)(p.titleRand);
    if (p.seen.has(title)) continue;
    p.seen.add(title);
    p.titles.push(title);
    p.slugs.push(slugOf(title));
  }
  return t;
}

function slugOf(title: string): string {
  return title.toLowerCase().replace(/[^a-z0-9]+/g, "-").slice(0, 64).replace(/^-+|-+$/g, "") + "-";
}

function wordCount(sentence: string): number {
  let n = 1;
  for (let i = sentence.indexOf(" "); i >= 0; i = sentence.indexOf(" ", i + 1)) n++;
  return n;
}

/**
 * An article body of 80 to 200 words: units drawn at random. Stopping at
 * the first unit that does not fit leaves more than target - longest words,
 * hence the lower bound of the target.
 */
export function bodyOf(p: Pools, r: Rand): string {
  const lo = 80 + p.longest, hi = 200;
  const target = lo + ((r() * (hi - lo + 1)) | 0);
  let k = (r() * UNIT_POOL) | 0;
  let text = p.units[k];
  let count = p.words[k];
  for (;;) {
    k = (r() * UNIT_POOL) | 0;
    if (count + p.words[k] > target) return text;
    text += p.spaced[k];
    count += p.words[k];
  }
}

const DAY0 = Date.UTC(2023, 0, 1);
const DAY_S = 86_400;
/** Years the tables cover; later or earlier times fall back to Date. */
export const FIRST_YEAR = 2023, YEARS = 5;
const DAYS = Array.from(
  { length: Math.round((Date.UTC(FIRST_YEAR + YEARS, 0, 1) - DAY0) / 86_400_000) },
  (_, d) => new Date(DAY0 + d * 86_400_000).toISOString().slice(0, 11),
);
const DAY_YEAR = Uint8Array.from(DAYS, (d) => Number(d.slice(0, 4)) - FIRST_YEAR);
let times: string[] | undefined;

/** Years since 2023 of an epoch-ms time within the tables, else -1. */
export function yearIndex(ms: number): number {
  const day = Math.floor((ms - DAY0) / 86_400_000);
  return day >= 0 && day < DAYS.length ? DAY_YEAR[day] : -1;
}

/** ISO 8601 of an epoch-ms time at second precision, from tables for 2023 to 2027. */
export function isoOf(ms: number): string {
  const sec = Math.floor((ms - DAY0) / 1000);
  const day = Math.floor(sec / DAY_S);
  if (day < 0 || day >= DAYS.length) return new Date(ms).toISOString().slice(0, 19) + ".000Z";
  times ??= timesOfDay();
  return DAYS[day] + times[sec - day * DAY_S];
}

function timesOfDay(): string[] {
  const two = (n: number) => (n < 10 ? "0" : "") + n;
  const out: string[] = new Array(DAY_S);
  for (let s = 0; s < DAY_S; s++) {
    out[s] = `${two((s / 3600) | 0)}:${two(((s % 3600) / 60) | 0)}:${two(s % 60)}.000Z`;
  }
  return out;
}
