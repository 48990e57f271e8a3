/**
 * A story's merged state as the Deduper keeps it: every copy seen of it
 * folds in by union and maximum, so folding the same copy twice (a
 * redelivery) changes nothing, and the order copies arrive in does not
 * matter. The Redis store runs the same steps in Lua (_redis_dedupe_store.ts).
 *
 * Copies race their first copy. A duplicate can be answered while its
 * first copy's fate is open: the first copy may still turn out a near
 * duplicate of another story, or simply not have been folded yet (another
 * process). So a duplicate folded into a story its first copy has not
 * created is kept pending (revision 0) and sends nothing; the first copy
 * then takes the pending sightings in, or, being a near duplicate itself,
 * leaves an alias to the story it joined and hands them on to it. Every
 * sighting thus lands in exactly one story that reaches the sinks.
 */

/**
 * How a copy joins: `first` creates its own story (it holds its key),
 * `duplicate` joins the story of the key another event holds, `near` joins
 * the story it was found nearly equal to and leaves an alias at its own key.
 */
export type MergeMode = "first" | "duplicate" | "near";

/** One copy's contribution: `story` is the story's id, `own` the copy's own key. */
export interface MergeRequest {
  readonly story: string;
  readonly own: string;
  readonly mode: MergeMode;
  readonly source: string;
  readonly url: string;
  /** Epoch ms the source first emitted this copy. */
  readonly seenAt: number;
  readonly engagement: Readonly<Record<string, number>>;
}

/** Field names short because Redis stores one per remembered story. */
export interface Story {
  /** Revision: how many times its sightings or engagement changed since its first copy; 0 while pending. */
  r: number;
  /** Sightings: [source, url, first seen at (epoch ms)], one per source and url. */
  s: [string, string, number][];
  /** Engagement: the maximum seen per field. */
  g: Record<string, number>;
  /** Last seen at: the latest sighting (epoch ms). */
  l: number;
  /** Set on an alias: the story this key's copies join. */
  a?: string;
  /** Set on what a store's mergeMany returns: the story's id. */
  id?: string;
}

/** A pending story with nothing in it. */
export function emptyStory(): Story {
  return { r: 0, s: [], g: {}, l: 0 };
}

/** The story a first copy makes when none is held: what mergeCopy folds it into then. */
export function freshStory(copy: MergeRequest): Story {
  const story = emptyStory();
  foldSighting(story, copy.source, copy.url, copy.seenAt, copy.engagement);
  story.r = 1;
  return story;
}

/**
 * Folds one sighting into `story` in place; returns whether it changed what
 * a revision counts: its sightings or engagement. `l` (lastSeenAt) moves
 * forward either way, and rides along with the story's next revision.
 */
export function foldSighting(
  story: Story,
  source: string,
  url: string,
  seenAt: number,
  engagement: Readonly<Record<string, number>>,
): boolean {
  let changed = false;
  let found = false;
  for (const sighting of story.s) {
    if (sighting[0] !== source || sighting[1] !== url) continue;
    found = true;
    if (seenAt < sighting[2]) {
      sighting[2] = seenAt;
      changed = true;
    }
  }
  if (!found) {
    // A first sighting makes an array of exactly one: push onto an empty one
    // reserves 17 slots, 128 bytes more for each story the Deduper holds.
    if (story.s.length === 0) story.s = [[source, url, seenAt]];
    else story.s.push([source, url, seenAt]);
    changed = true;
  }
  for (const field in engagement) {
    const value = engagement[field];
    const held = story.g[field];
    if (held === undefined || value > held) {
      story.g[field] = value;
      changed = true;
    }
  }
  // A later sighting that adds nothing else is no change: a polled feed sending its items again
  // would otherwise make a revision of every story at every poll, for every sink to write.
  if (seenAt > story.l) story.l = seenAt;
  return changed;
}

/** Folds all of `from`'s sightings into `into`; returns whether anything changed. */
export function foldStory(into: Story, from: Story): boolean {
  let changed = false;
  for (const [source, url, at] of from.s) {
    if (foldSighting(into, source, url, at, from.g)) changed = true;
  }
  return changed;
}

/**
 * Where stories live while a batch is folded: get, and set a new or changed
 * one. `fresh` says the story is made anew where none, an alias or an
 * expired one stood: it is then kept for the whole ttl from now, not to the
 * end of what it replaces (an alias's expiry left the story it gave way to
 * gone while its key and text lived on, and every later copy was dropped
 * without an update).
 */
export interface StoryMap {
  get(id: string): Story | undefined;
  set(id: string, story: Story, fresh?: boolean): void;
}

/**
 * Folds one copy as its mode says (see the module comment); returns the
 * story to send on, or undefined while it is pending. The stories it
 * returns are the map's own objects: copy them before a later fold.
 */
export function mergeCopy(
  stories: StoryMap,
  copy: MergeRequest,
): { id: string; story: Story } | undefined {
  let id = copy.story;
  let story = stories.get(id);
  if (copy.mode === "duplicate" && story?.a !== undefined) {
    id = story.a;
    story = stories.get(id);
  }
  if (story === undefined || story.a !== undefined) {
    story = emptyStory();
    stories.set(id, story, true);
  }
  const lastSeen = story.l;
  let changed = foldSighting(story, copy.source, copy.url, copy.seenAt, copy.engagement);
  if (copy.mode === "near" && copy.own !== id) {
    const own = stories.get(copy.own);
    if (own === undefined || own.a !== undefined || own.r === 0) {
      if (own !== undefined && own.a === undefined && foldStory(story, own)) changed = true;
      stories.set(copy.own, { r: 0, s: [], g: {}, l: 0, a: id }, true);
    }
  }
  if (copy.mode === "first" && story.r === 0) story.r = 1;
  else if (changed && story.r > 0) story.r++;
  if (changed || story.l !== lastSeen || copy.mode === "first") stories.set(id, story);
  return story.r > 0 ? { id, story } : undefined;
}
