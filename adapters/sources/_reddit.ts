import type { RawItem } from "../../engine/item.ts";
import { isoFromUnixSeconds } from "./_parse_date.ts";

const REDDIT = "https://www.reddit.com";

interface Thing {
  kind: string;
  data: Record<string, unknown>;
}
interface Listing {
  kind: "Listing";
  data: { children: Thing[]; after?: string | null; before?: string | null };
}

/**
 * The posts (t3) and comments (t1) of a reddit Listing, or of the array of
 * Listings a /comments/<id> page answers, replies nested in a comment's
 * `replies` included. Other things (more, t5) are skipped. A thread page's
 * comments carry no `link_title`: they take its post's title. Returns
 * undefined when the document is not a Listing at all.
 */
export function redditItems(doc: unknown): RawItem[] | undefined {
  const listings = Array.isArray(doc) ? doc : [doc];
  if (!listings.length || !listings.every(isListing)) return undefined;
  const post = listings[0].data.children.find((t) => t?.kind === "t3")?.data?.title;
  const threadTitle = Array.isArray(doc) && typeof post === "string" ? post : undefined;
  const items: RawItem[] = [];
  const walk = (listing: Listing, depth: number) => {
    for (const thing of listing.data.children) {
      const item = redditThing(thing, threadTitle);
      if (item) items.push(item);
      // A reply is a Listing in its comment's `replies` ("" when it has none).
      const replies = thing?.data?.replies;
      if (depth < MAX_DEPTH && isListing(replies)) walk(replies, depth + 1);
    }
  };
  for (const listing of listings) walk(listing, 0);
  return items;
}

/** How deep replies are read (reddit itself sends about ten levels). */
const MAX_DEPTH = 100;

/**
 * The fullname of the newest thing of a single Listing, by `created_utc`,
 * stickied posts left out: the cursor for `before=` on the next poll of a
 * /new or /comments listing. A sticky sits on top of a listing whatever its
 * age: taken for the newest, it asked for posts newer than a months-old one.
 */
export function newestFullname(doc: unknown): string | undefined {
  if (!isListing(doc)) return undefined;
  let newest: { name: string; at: number } | undefined;
  for (const thing of doc.data.children) {
    const d = thing?.data;
    if (!d || d.stickied === true || d.pinned === true || typeof d.name !== "string") continue;
    const at = typeof d.created_utc === "number" ? d.created_utc : -Infinity;
    if (!newest || at > newest.at) newest = { name: d.name, at };
  }
  return newest?.name;
}

function isListing(v: unknown): v is Listing {
  const l = v as Listing | null;
  return !!l && typeof l === "object" && l.kind === "Listing" && Array.isArray(l.data?.children);
}

function redditThing(thing: Thing, threadTitle?: string): RawItem | undefined {
  const d = thing?.data;
  if (!d || (thing.kind !== "t3" && thing.kind !== "t1")) return undefined;
  const post = thing.kind === "t3";
  const item: RawItem = {};
  const title = post ? d.title : d.link_title ?? threadTitle;
  if (typeof title === "string" && title) item.title = title;
  item.url = post ? postUrl(d) : commentUrl(d);
  const text = post ? d.selftext : d.body;
  if (typeof text === "string" && text) item.text = text;
  if (typeof d.author === "string") item.author = d.author;
  const at = isoFromUnixSeconds(d.created_utc);
  if (at) item.publishedAt = at;
  if (typeof d.name === "string") item.guid = d.name;
  if (typeof d.subreddit === "string") item.tags = [d.subreddit];
  const engagement: { score?: number; comments?: number } = {};
  if (typeof d.score === "number") engagement.score = d.score;
  if (typeof d.num_comments === "number") engagement.comments = d.num_comments;
  if (Object.keys(engagement).length) item.engagement = engagement;
  item.over18 = d.over_18 === true;
  return item;
}

/** A link post points where it links; a self post at its comments page. */
function postUrl(d: Record<string, unknown>): string | undefined {
  const permalink = typeof d.permalink === "string" ? REDDIT + d.permalink : undefined;
  if (d.is_self === true) return permalink ?? str(d.url);
  return str(d.url) ?? permalink;
}

/** Older listings give comments no permalink: build it from the thread id. */
function commentUrl(d: Record<string, unknown>): string | undefined {
  if (typeof d.permalink === "string") return REDDIT + d.permalink;
  const thread = str(d.link_id)?.replace(/^t3_/, "");
  const id = str(d.id);
  const sub = str(d.subreddit);
  if (!thread || !id || !sub) return undefined;
  return `${REDDIT}/r/${sub}/comments/${thread}/_/${id}/`;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v ? v : undefined;
}
