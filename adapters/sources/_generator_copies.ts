/**
 * How the generator derives its duplicates, near duplicates and invalid
 * items from unique ones. Each kind is made to be caught by one rule of the
 * demo flow and by nothing else (see generator_source.ts).
 */

import type { RawItem } from "../../engine/item.ts";
import { FIRST_YEAR, isoOf, yearIndex, YEARS } from "./_generator_pools.ts";
import {
  NEAR_APPENDS,
  NEAR_SWAPS,
  pick,
  type Rand,
  SHORT_TITLES,
  SITES,
  spamTitle,
} from "./_generator_words.ts";

const TRACKING = "?utm_source=newsletter&utm_medium=email";

/** A unique item as made, with what a copy of it needs. */
export interface Original {
  item: RawItem;
  /** Its position in the stream. */
  index: number;
  site: number;
  ms: number;
  /** Slug of its title, with the trailing dash. */
  slug: string;
}

/** https://<site>/<yyyy>/<slug>-<n>: n is the item's position, so urls never collide. */
export function articleUrl(site: number, ms: number, slugDash: string, i: number): string {
  const y = yearIndex(ms);
  const prefix = y < 0
    ? `https://${SITES[site].domain}/${new Date(ms).getUTCFullYear()}/`
    : URL_PREFIX[site * YEARS + y];
  return prefix + slugDash + (i + 1);
}

/** "https://<site>/<yyyy>/" for every site and year of the tables. */
const URL_PREFIX = SITES.flatMap((s) =>
  Array.from({ length: YEARS }, (_, y) => `https://${s.domain}/${FIRST_YEAR + y}/`)
);

/** The same article again; every other one with tracking parameters on its url. */
export function duplicate(from: Original, nth: number): RawItem {
  const src = from.item;
  return {
    ...src,
    url: nth % 2 === 1 ? src.url + TRACKING : src.url,
    tags: [...(src.tags ?? [])],
    engagement: { ...src.engagement },
  };
}

/** The same story syndicated elsewhere: new url and site, a retouched title and text. */
export function nearDuplicate(from: Original, i: number, nth: number, r: Rand): RawItem {
  const src = from.item;
  const site = (from.site + 1 + ((r() * (SITES.length - 1)) | 0)) % SITES.length;
  const ms = from.ms + (5 + ((r() * 600) | 0)) * 60_000;
  const score = Math.floor(Math.exp(r() * 5));
  return {
    ...src,
    title: retitle(src.title as string, SITES[site].name, nth),
    url: articleUrl(site, ms, from.slug, i),
    text: retouch(src.text as string, nth, r),
    publishedAt: isoOf(ms),
    site: SITES[site].name,
    tags: [...(src.tags ?? [])],
    engagement: { score, comments: Math.floor(score * r() * 0.5) },
  };
}

/** In turn: a " | Site" suffix, lower case, different punctuation. */
function retitle(title: string, siteName: string, nth: number): string {
  switch (nth % 3) {
    case 0:
      return `${title} | ${siteName}`;
    case 1:
      return title.toLowerCase() !== title ? title.toLowerCase() : title.toUpperCase();
    default:
      if (title.includes(":")) return title.replace(":", " -");
      return /[?!.]$/.test(title) ? title.slice(0, -1) : title + "!";
  }
}

/** In turn: one or two words appended, or one word in the middle swapped for another. */
function retouch(text: string, nth: number, r: Rand): string {
  if (nth % 2 === 0) return text + " " + pick(r, NEAR_APPENDS);
  const start = text.indexOf(" ", (r() * (text.length - 1)) | 0) + 1 || text.indexOf(" ") + 1;
  const end = text.indexOf(" ", start);
  const word = text.slice(start, end < 0 ? undefined : end);
  const swap = pick(r, NEAR_SWAPS);
  const other = word === swap
    ? NEAR_SWAPS[(NEAR_SWAPS.indexOf(swap) + 1) % NEAR_SWAPS.length]
    : swap;
  return text.slice(0, start) + other + (end < 0 ? "" : text.slice(end));
}

const INVALID_KINDS = ["no title", "no url", "bad url", "short title", "spam"] as const;

/** Breaks exactly one validation rule, the kinds in turn. */
export function breakRule(item: RawItem, nth: number, r: Rand): RawItem {
  switch (INVALID_KINDS[nth % INVALID_KINDS.length]) {
    case "no title": {
      const { title: _, ...rest } = item;
      return rest;
    }
    case "no url": {
      const { url: _, ...rest } = item;
      return rest;
    }
    case "bad url":
      return { ...item, url: "notaurl" };
    case "short title":
      return { ...item, title: pick(r, SHORT_TITLES) };
    default:
      return { ...item, title: spamTitle(r) };
  }
}
