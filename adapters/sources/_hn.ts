import type { RawItem } from "../../engine/item.ts";
import { htmlToText } from "./_html_text.ts";
import { isoFromUnixSeconds } from "./_parse_date.ts";

/**
 * What a Hacker News API document holds. The API answers items, lists of
 * item ids (topstories, beststories, updates), a bare number (maxitem) and
 * user profiles; only items become RawItems, ids can be fetched as items.
 */
export type HnDocument =
  | { kind: "items"; items: RawItem[] }
  | { kind: "ids"; ids: number[] }
  | { kind: "other"; what: string };

const ITEM_PAGE = "https://news.ycombinator.com/item?id=";

/** Sorts an HN API answer into items, ids, or something that is neither. */
export function readHnDocument(doc: unknown): HnDocument {
  // The API answers null for an item id that does not exist.
  if (doc === null) return { kind: "items", items: [] };
  if (isHnItem(doc)) return { kind: "items", items: [hnItem(doc)] };
  if (Array.isArray(doc)) {
    if (doc.every(isHnItem)) return { kind: "items", items: doc.map(hnItem) };
    if (doc.every(isId)) return { kind: "ids", ids: doc };
    return { kind: "other", what: "an array that holds neither items nor item ids" };
  }
  if (typeof doc === "number") return { kind: "other", what: "a bare number (the maxitem answer)" };
  if (typeof doc === "object") {
    const o = doc as Record<string, unknown>;
    if (Array.isArray(o.items) && o.items.every(isId)) {
      return { kind: "ids", ids: o.items as number[] };
    }
    if (typeof o.id === "string" && Array.isArray(o.submitted)) {
      return { kind: "other", what: `the user profile of "${o.id}"` };
    }
  }
  return { kind: "other", what: "not a Hacker News item" };
}

function isHnItem(v: unknown): v is Record<string, unknown> {
  if (!v || typeof v !== "object" || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return typeof o.id === "number" && typeof o.type === "string";
}

function isId(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v > 0;
}

/**
 * One HN item (story, comment, job, poll, pollopt) as a RawItem. Items with
 * no url of their own (Ask HN, comments, polls) point at their HN page, so
 * every item has a link; only stories, jobs and polls have a title.
 */
export function hnItem(raw: Record<string, unknown>): RawItem {
  const id = raw.id as number;
  const item: RawItem = { guid: `hn:${id}` };
  if (typeof raw.title === "string" && raw.title) item.title = raw.title;
  item.url = typeof raw.url === "string" && raw.url ? raw.url : ITEM_PAGE + id;
  if (typeof raw.text === "string") {
    const text = htmlToText(raw.text);
    if (text) item.text = text;
  }
  if (typeof raw.by === "string") item.author = raw.by;
  const at = isoFromUnixSeconds(raw.time);
  if (at) item.publishedAt = at;
  const engagement: { score?: number; comments?: number } = {};
  if (typeof raw.score === "number") engagement.score = raw.score;
  if (typeof raw.descendants === "number") engagement.comments = raw.descendants;
  if (Object.keys(engagement).length) item.engagement = engagement;
  if (raw.deleted === true) item.deleted = true;
  if (raw.dead === true) item.dead = true;
  return item;
}

/** Where the API serves item `id`, next to the list it came from (…/v0/topstories.json). */
export function hnItemUrl(listUrl: string, id: number): string {
  return new URL(`item/${id}.json`, listUrl).href;
}
