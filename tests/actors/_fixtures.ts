import { type Envelope, envelope, type RawItem, type ValidItem } from "../../engine/item.ts";

import { FIXTURES } from "../_fixtures_dir.ts";

/** A Reddit post as a source would map it; `name` (t3_...) is the guid. */
export interface RedditPost extends ValidItem {
  author: string;
  guid: string;
}

/**
 * The 100 posts of the r/all/new listing recorded on 2016-12-22, read from
 * the shared fixtures at test time, each in a fresh envelope.
 */
export async function redditAllNew(): Promise<Envelope<RedditPost>[]> {
  const listing = JSON.parse(
    await Deno.readTextFile(`${FIXTURES}/api/reddit/praw__r-all-new_page1.json`),
  );
  return listing.data.children.map((child: { data: Record<string, string> }) => {
    const d = child.data;
    const post: RedditPost = {
      title: d.title,
      url: d.url,
      text: d.selftext,
      author: d.author,
      guid: d.name,
    };
    return envelope(post, "reddit", 1_482_373_051_000);
  });
}

/**
 * The 15 entries of heise developer's German Atom feed (2016): title, link
 * and the HTML content, pulled out with a regex since only these three
 * fields are needed.
 */
export async function heiseEntries(): Promise<Envelope<RawItem>[]> {
  const atom = await Deno.readTextFile(`${FIXTURES}/feeds/rss-parser__heise.atom`);
  return [...atom.matchAll(/<entry>([\s\S]*?)<\/entry>/g)].map(([, entry]) => {
    const title = /<title[^>]*>([\s\S]*?)<\/title>/.exec(entry)?.[1] ?? "";
    const url = /<link rel="alternate"[^>]*href="([^"]+)"/.exec(entry)?.[1] ?? "";
    const text = /<content[^>]*><!\[CDATA\[([\s\S]*?)\]\]><\/content>/.exec(entry)?.[1] ?? "";
    return envelope({ title, url, text }, "heise", 1_454_345_690_000);
  });
}
