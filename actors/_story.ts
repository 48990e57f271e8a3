/**
 * A story's merged state as the Deduper keeps it: every copy seen of it
 * folds in by union and maximum, so folding the same copy twice (a
 * redelivery) changes nothing, and the order copies arrive in does not
 * matter. The Redis store runs the same fold in Lua (_redis_dedupe_store.ts).
 */

/** One copy's contribution to its story: `story` is the story's id. */
export interface MergeRequest {
  readonly story: string;
  readonly source: string;
  readonly url: string;
  /** Epoch ms the source first emitted this copy. */
  readonly seenAt: number;
  readonly engagement: Readonly<Record<string, number>>;
}

/** Field names short because Redis stores one per remembered story. */
export interface Story {
  /** Revision: how many times the state changed; the first copy makes it 1. */
  r: number;
  /** Sightings: [source, url, first seen at (epoch ms)], one per source and url. */
  s: [string, string, number][];
  /** Engagement: the maximum seen per field. */
  g: Record<string, number>;
  /** Last seen at: the latest sighting (epoch ms). */
  l: number;
}

/** A new story with nothing in it; folding its first copy makes it revision 1. */
export function emptyStory(): Story {
  return { r: 0, s: [], g: {}, l: 0 };
}

/** Folds one copy into `story` in place; returns whether anything changed (then `r` grew by one). */
export function foldCopy(story: Story, copy: MergeRequest): boolean {
  let changed = false;
  let found = false;
  for (const sighting of story.s) {
    if (sighting[0] !== copy.source || sighting[1] !== copy.url) continue;
    found = true;
    if (copy.seenAt < sighting[2]) {
      sighting[2] = copy.seenAt;
      changed = true;
    }
  }
  if (!found) {
    story.s.push([copy.source, copy.url, copy.seenAt]);
    changed = true;
  }
  for (const field in copy.engagement) {
    const value = copy.engagement[field];
    const held = story.g[field];
    if (held === undefined || value > held) {
      story.g[field] = value;
      changed = true;
    }
  }
  if (copy.seenAt > story.l) {
    story.l = copy.seenAt;
    changed = true;
  }
  if (changed) story.r++;
  return changed;
}
