import { v5 as uuidv5 } from "uuid";
import { type QdrantHttpError, QdrantRest } from "./_qdrant_rest.ts";
import { z } from "zod";
import { duration } from "../../config/units.ts";
import { checkContext } from "../../config/check_context.ts";
import {
  AWAY_STATUSES,
  endsRunAt,
  errorMessage,
  PermanentError,
  type RetryHint,
} from "../../engine/errors.ts";
import { type Envelope, MERGED_FIELDS, type RawItem } from "../../engine/item.ts";
import type { Logger } from "../../engine/log.ts";
import type { SinkSpec, VectorShape } from "../../engine/registry.ts";
import type { Sink } from "../../engine/sink.ts";
import { maskUrl, withoutKey } from "../../engine/mask_url.ts";
import { retry, retryAfterMs } from "../../engine/retry.ts";

/**
 * The UUIDv5 namespace of every point id millrace writes: point id =
 * uuidv5(item id, this). Fixed forever: changing it would give every item a
 * new point in every existing collection, so a re-run would duplicate all.
 */
export const POINT_ID_NAMESPACE = "1b0f2b6e-5c0a-4c3e-9d7a-6f3e8a2d4c51";

/** Qdrant ids are unsigned integers or UUIDs; an item id (32 hex chars) becomes a stable UUID. */
export function pointId(itemId: string): string {
  return uuidv5(itemId, POINT_ID_NAMESPACE);
}

export const DISTANCES = ["Cosine", "Dot", "Euclid"] as const;
export type Distance = typeof DISTANCES[number];

export const INDEX_TYPES = ["keyword", "integer", "float", "bool", "text", "datetime"] as const;
export type IndexType = typeof INDEX_TYPES[number];

/** Payload fields this sink adds to every point, beside the item's own. */
export const ID_FIELD = "millrace_id";
export const SOURCE_FIELD = "millrace_source";
export const SEEN_AT_FIELD = "millrace_seen_at";

/** The index type a bare field name gets: known item fields by their type, anything else keyword. */
const KNOWN_TYPES: Record<string, IndexType> = {
  publishedAt: "datetime",
  wordCount: "integer",
  "engagement.score": "integer",
  "engagement.comments": "integer",
  [SEEN_AT_FIELD]: "integer",
};

export interface PayloadIndex {
  field: string;
  type: IndexType;
}

const payloadIndexSchema = z.union([
  z.string().min(1).transform((field): PayloadIndex => ({
    field,
    type: KNOWN_TYPES[field] ?? "keyword",
  })),
  z.strictObject({
    field: z.string().min(1).describe("Payload field (dotted path for nested ones). Required."),
    type: z.enum(INDEX_TYPES).describe(`One of ${INDEX_TYPES.join(", ")}. Required.`),
  }),
]);

export const qdrantSinkSchema = z.strictObject({
  url: z.string().regex(/^https?:\/\/[^/]/, "expected an http:// or https:// URL")
    .describe(
      "Qdrant's REST URL, e.g. ${QDRANT_URL}; without a port, 6333. Required.",
    ),
  apiKey: z.string().min(1).optional()
    .describe("Sent as the api-key header, never logged; default none."),
  collection: z.string().min(1).max(255).regex(/^[^/]+$/, "a collection name has no /")
    .describe("Collection to upsert into; created when missing. Required."),
  distance: z.enum(DISTANCES).default("Cosine")
    .describe("Distance of a collection this sink creates, and expected of one that exists."),
  dimensions: z.int().positive().max(65_536).optional()
    .check((ctx) => {
      const embedded = checkContext()?.vectorLength;
      if (embedded !== undefined && ctx.value !== undefined && ctx.value !== embedded) {
        ctx.issues.push({
          code: "custom",
          message: dimensionsDisagree(ctx.value, embedded),
          input: ctx.value,
        });
      }
    })
    .describe(
      "Vector length the flow embeds; must agree with the embed stage's. Default: the embed " +
        "stage's, else learnt from the first vectors written.",
    ),
  payloadIndexes: z.array(payloadIndexSchema).default([])
    .describe(
      "Payload fields to index: a name (keyword, or the known type of publishedAt, wordCount, " +
        "...) or { field, type }; default none.",
    ),
  timeout: duration({ positive: true }).default(30_000).describe(
    "Longest wait for one request; default 30s.",
  ),
  wait: z.boolean().default(true)
    .describe("Whether a write returns only once Qdrant applied it; default true."),
}).describe("Upserts each item as a point (vector and payload) into a Qdrant collection.");

/** A checked `qdrant:` sink config (see qdrantSinkSchema for what each field means). */
export interface QdrantSinkConfig {
  /** Qdrant's REST URL. */
  url: string;
  /** Sent as the api-key header, never logged. */
  apiKey?: string;
  /** The collection to upsert into; created when missing. */
  collection: string;
  /** Distance of a collection this sink creates, and expected of one that exists. */
  distance: typeof DISTANCES[number];
  /** Vector length; default the embed stage's, else learnt from the first vectors written. */
  dimensions?: number;
  /** Payload fields to index. */
  payloadIndexes: PayloadIndex[];
  /** Longest wait for one request, ms. */
  timeout: number;
  /** Whether a write returns only once Qdrant applied it. */
  wait: boolean;
}

// The interface above is written out for the library's documentation and
// types; this fails to compile when it and the schema's output part ways.
const _sameConfig: [QdrantSinkConfig, z.output<typeof qdrantSinkSchema>] extends
  [z.output<typeof qdrantSinkSchema>, QdrantSinkConfig] ? true : never = true;

export interface QdrantSinkOptions extends QdrantSinkConfig {
  /** Where "collection created" and the plain-http warning go. */
  log?: Logger;
  /** The embed stage's vector length when it opened first: used when `dimensions` is unset. */
  vectors?: VectorShape;
  /** Tries of a call that meets a 429, a 5xx or no connection, the first among them; default 4. */
  tries?: number;
}

/** What a collection holds, as this sink cares about it. */
interface VectorParams {
  size: number;
  distance: string;
}

/**
 * Writes items as Qdrant points over its REST API: one upsert
 * request per batch, plus one delete request when the batch holds deleted
 * items and one batch request of set-payload operations when it holds merge
 * updates (Envelope.update: only the payload changes, never the vector). Point ids are UUIDv5 of item ids, so a replay or a redelivery
 * overwrites the same points. The payload is the item's payload plus
 * `millrace_id`, `millrace_source` and `millrace_seen_at` (prefixed so they
 * never overwrite an item field of the same name).
 *
 * The collection is fetched at open. When it is missing it is created with
 * `distance` and the vector length: at open when the length is known (the
 * flow's embed stage, which opens first, or `dimensions`), else on the first
 * write, from its vectors. When it exists with another length or distance,
 * or with named vectors, the sink refuses it with the reason, at open
 * whenever the length is known then.
 *
 * Each request carries the stage's signal as well as `timeout`, so a flow
 * that stops does not wait on a slow Qdrant, and its reply is capped
 * (_qdrant_rest.ts). The key is sent as a header, never logged nor put in
 * an error.
 */
export class QdrantSink implements Sink {
  /** Merge updates are applied to the story they name (see the class comment). */
  readonly updates = true;
  readonly #options: QdrantSinkOptions;
  readonly #api: QdrantRest;
  readonly #where: string;
  /** The collection's vector length once it is known to exist. */
  #size?: number;
  #opened?: Promise<void>;
  #creating?: Promise<number>;

  /** Sends nothing yet: `open` checks or creates the collection. */
  constructor(options: QdrantSinkOptions) {
    this.#options = options;
    const url = new URL(options.url);
    const prefix = url.pathname.replace(/\/+$/, "");
    this.#where = `${options.collection} at ${maskUrl(url.origin + prefix)}`;
    const headers: Record<string, string> = {};
    if (options.apiKey) {
      // Passed as a header rather than `apiKey`, which would switch a plain
      // http URL to https and print its own warning on the console.
      headers["api-key"] = options.apiKey;
      if (url.protocol === "http:") {
        options.log?.warn(`qdrant sink: the api key of ${this.#where} is sent over plain http`);
      }
    }
    this.#api = new QdrantRest(qdrantBase(url), headers);
  }

  /** Fetches the collection: checks it, or creates it when `dimensions` is known. */
  open(): Promise<void> {
    return this.#opened ??= this.#open().catch((error) => {
      this.#opened = undefined;
      throw error;
    });
  }

  /** Upserts the batch's items and deletes its deleted ones; the last copy of an id wins. */
  async write(batch: readonly Envelope<RawItem>[], signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    await this.open();
    const last = new Map<string, Envelope<RawItem>>();
    const updates: Envelope<RawItem>[] = [];
    for (const item of batch) {
      if (item.update === true) updates.push(item);
      else last.set(item.id, item);
    }
    const upserts: Envelope<RawItem>[] = [];
    const deleted: Envelope<RawItem>[] = [];
    for (const item of last.values()) {
      if (item.payload.deleted === true) deleted.push(item);
      else upserts.push(item);
    }
    if (upserts.length > 0) await this.#upsert(upserts, signal);
    if (updates.length > 0) await this.#update(updates, signal);
    if (deleted.length > 0) await this.#recordDeletes(deleted, signal);
    const deletes = deleted.map((item) => pointId(item.id));
    if (deletes.length > 0 && await this.#exists(signal)) {
      await this.#call(
        "delete",
        `${deletes.length} points from`,
        signal,
        (init) =>
          this.#api.deletePoints(this.#options.collection, this.#options.wait, {
            points: deletes,
          }, init),
      );
    }
  }

  /**
   * Deletes the points first seen before `before` (epoch ms), by a filter on
   * `millrace_seen_at`, for the publish stage's retention, and says how many
   * there were. Qdrant's delete does not say, so they are counted first by
   * the same filter (none: no delete is sent; a point written between the two
   * calls may go uncounted). Without a payload index on `millrace_seen_at`
   * (payloadIndexes: [{ field: millrace_seen_at, type: integer }]) Qdrant
   * scans the collection for each.
   */
  async expire(before: number, signal: AbortSignal): Promise<number> {
    signal.throwIfAborted();
    await this.open();
    if (!await this.#exists(signal)) return 0;
    const filter = { must: [{ key: SEEN_AT_FIELD, range: { lt: before } }] };
    const counted = await this.#call(
      "count",
      "points expiring in",
      signal,
      (init) => this.#api.countPoints(this.#options.collection, { filter, exact: true }, init),
    );
    const expiring = Number(counted.data?.result?.count ?? 0);
    if (expiring > 0) {
      await this.#call(
        "expire",
        "points from",
        signal,
        (init) =>
          this.#api.deletePoints(this.#options.collection, this.#options.wait, { filter }, init),
      );
    }
    // Records of deletes and early updates older than the cutoff go too: no copy that old is
    // taken now.
    for (const [records, what] of [[this.#deletes, "deletes"], [this.#early, "early updates"]]) {
      await this.#call(
        "expire",
        `${what} of`,
        signal,
        (init) =>
          this.#api.deletePoints(records, this.#options.wait, {
            filter: { must: [{ key: "seen_at", range: { lt: before } }] },
          }, init),
      ).catch((error) => {
        if ((error as QdrantError).status !== 404) throw error;
      });
    }
    return expiring;
  }

  /**
   * The items whose id was not deleted at or after their `seenAt`: a delete
   * can reach the sink before its item (two processes, batches in flight at
   * once, a durable edge that cut an entry), and the item's upsert must not
   * bring the point back. Deletes are kept in a collection of their own
   * (`<collection>_millrace_deleted`, one 1-d point per deleted id with the
   * delete's `seen_at`), asked once per batch; none before the first delete.
   */
  async #notDeleted(
    items: Envelope<RawItem>[],
    signal: AbortSignal,
  ): Promise<Envelope<RawItem>[]> {
    const deletedAt = await this.#deletedAt(items, signal);
    if (deletedAt.size === 0) return items;
    return items.filter((item) => !((deletedAt.get(pointId(item.id)) ?? -Infinity) >= item.seenAt));
  }

  /** The recorded delete's `seen_at` of each item's point that has one (see #notDeleted). */
  async #deletedAt(items: Envelope<RawItem>[], signal: AbortSignal): Promise<Map<string, number>> {
    const deletedAt = new Map<string, number>();
    for (
      const [id, payload] of await this.#records(
        this.#deletes,
        "the deletes recorded for",
        items,
        signal,
      )
    ) {
      if (typeof payload.seen_at === "number") deletedAt.set(id, payload.seen_at);
    }
    return deletedAt;
  }

  /**
   * The payloads a collection of records (deletes, early updates: 1-d
   * points, one per story) holds for the items' points; none when the
   * collection was never made.
   */
  async #records(
    collection: string,
    what: string,
    items: readonly Envelope<RawItem>[],
    signal: AbortSignal,
    payload = true,
  ): Promise<Map<string, Record<string, unknown>>> {
    const found = new Map<string, Record<string, unknown>>();
    let reply;
    try {
      // "the deletes recorded for 40 points of trends": it said "deletes of trends", which read
      // as a failed delete in a flow that has none.
      const n = items.length;
      reply = await this.#call(
        "read",
        `${what} ${n} point${n === 1 ? "" : "s"} of`,
        signal,
        (init) =>
          this.#api.retrievePoints(collection, {
            ids: items.map((item) => pointId(item.id)),
            with_payload: payload,
            with_vector: false,
          }, init),
      );
    } catch (error) {
      if ((error as QdrantError).status === 404) return found; // nothing was ever recorded
      throw error;
    }
    const result = reply.data?.result;
    for (const point of Array.isArray(result) ? result : []) {
      const { id, payload } = point as { id: unknown; payload?: Record<string, unknown> };
      found.set(String(id), payload ?? {});
    }
    return found;
  }

  /** Writes records (see #records), creating their collection the first time. */
  async #record(
    collection: string,
    what: string,
    points: { id: string; payload: Record<string, unknown> }[],
    signal: AbortSignal,
  ): Promise<void> {
    const body = { points: points.map((p) => ({ ...p, vector: [1] })) };
    const upsert = () =>
      this.#call(
        "record",
        `${points.length} ${what}`,
        signal,
        (init) => this.#api.upsertPoints(collection, true, body, init),
      );
    try {
      await upsert();
    } catch (error) {
      if ((error as QdrantError).status !== 404) throw error;
      await this.#call(
        "create",
        `collection of ${what}`,
        signal,
        (init) =>
          this.#api.createCollection(collection, { vectors: { size: 1, distance: "Dot" } }, init),
      ).catch((e) => {
        if ((e as QdrantError).status !== 409) throw e; // another process made it
      });
      await upsert();
    }
  }

  /**
   * Records each delete with its `seen_at` (see #notDeleted), creating the
   * collection of deletes; a record only moves forward, the latest delete
   * per id, as Postgres keeps it: a late, older delete took the record back,
   * and a copy seen between the two brought the point back.
   */
  async #recordDeletes(items: Envelope<RawItem>[], signal: AbortSignal): Promise<void> {
    const latest = new Map<string, number>();
    for (const item of items) {
      const id = pointId(item.id);
      latest.set(id, Math.max(latest.get(id) ?? -Infinity, item.seenAt));
    }
    const recorded = await this.#deletedAt(items, signal);
    const points = [...latest]
      .filter(([id, at]) => !((recorded.get(id) ?? -Infinity) >= at))
      .map(([id, at]) => ({ id, payload: { seen_at: at } }));
    if (points.length > 0) await this.#record(this.#deletes, "deletes in", points, signal);
  }

  /** The collection that keeps this collection's deletes (see #notDeleted). */
  get #deletes(): string {
    return `${this.#options.collection}_millrace_deleted`;
  }

  /** The collection that keeps merge updates that came before their story's point (see #update). */
  get #early(): string {
    return `${this.#options.collection}_millrace_updates`;
  }

  async #open(): Promise<void> {
    const { dimensions: configured, vectors } = this.#options;
    const embedded = vectors?.dimensions;
    if (configured !== undefined && embedded !== undefined && configured !== embedded) {
      throw new Error(`qdrant sink: ${dimensionsDisagree(configured, embedded)}`);
    }
    const dimensions = configured ?? embedded;
    const found = await this.#fetch();
    if (found) {
      this.#check(found, dimensions);
      this.#size = found.size;
      await this.#createIndexes();
    } else if (dimensions !== undefined) {
      await this.#ensure(dimensions, AbortSignal.timeout(this.#options.timeout));
    }
  }

  async #upsert(items: Envelope<RawItem>[], signal: AbortSignal): Promise<void> {
    const size = this.#size ?? await this.#ensure(vectorOf(items[0]).length, signal);
    let points: QdrantPoint[] = items.map((item) => {
      const vector = vectorOf(item);
      if (vector.length !== size) {
        const { collection, distance } = this.#options;
        const why = mismatch(collection, { size, distance }, { size: vector.length, distance });
        throw new PermanentError(`qdrant sink: ${why} (item ${item.id})`);
      }
      return {
        id: pointId(item.id),
        vector,
        payload: {
          ...item.payload,
          [ID_FIELD]: item.id,
          [SOURCE_FIELD]: item.source,
          [SEEN_AT_FIELD]: item.seenAt,
        },
      };
    });
    const standing = new Set(await this.#notDeleted(items, signal));
    if (standing.size < items.length) {
      points = points.filter((_, i) => standing.has(items[i]));
      if (points.length === 0) return;
    }
    points = await this.#keepingStored(points, signal);
    if (points.length === 0) return;
    await this.#call(
      "upsert",
      `${points.length} points into`,
      signal,
      (init) =>
        this.#api.upsertPoints(this.#options.collection, this.#options.wait, { points }, init),
    );
    const written = items.filter((item) => standing.has(item));
    await this.#undoDeleted(written, signal);
    await this.#mergeEarly(written, signal);
  }

  /**
   * Applies merge updates, and records those whose story has no point yet
   * (#early), for its first copy to take when it comes (#mergeEarly). A
   * story's update overtakes its first copy when another process publishes
   * the copy, or when `dlq replay` sends both back: dropped, it left the
   * point at the first copy's revision for good, where Postgres and JSONL
   * held the whole story (a review: 61 of 2,028 stories with two processes).
   * An update is recorded before it is applied again, and a first copy reads
   * the records after its upsert, so one of the two always sees the other.
   */
  async #update(updates: Envelope<RawItem>[], signal: AbortSignal): Promise<void> {
    // Which points stand is read before any is merged: "there now" after a merge does not say
    // the merge found it (a review's race: 5 to 49 stories of 2,028 left at revision 1).
    const present = await this.#exists(signal)
      ? await this.#records(this.#options.collection, "the stored", updates, signal, false)
      : new Map();
    const standing = updates.filter((u) => present.has(pointId(u.id)));
    if (standing.length > 0) await this.#merge(standing, signal);
    const early = new Map<string, Envelope<RawItem>>();
    for (const update of updates) {
      const id = pointId(update.id);
      if (present.has(id)) continue;
      const held = early.get(id);
      if (!held || revisionOf(held.payload.revision) < revisionOf(update.payload.revision)) {
        early.set(id, update);
      }
    }
    if (early.size === 0) return;
    // A story deleted is gone for its updates, whenever they were seen, as a Postgres table
    // skips them: recorded, one was laid over the story's first copy if it came back.
    for (const id of (await this.#deletedAt([...early.values()], signal)).keys()) early.delete(id);
    if (early.size === 0) return;
    const recorded = await this.#records(
      this.#early,
      "the early updates recorded for",
      [...early.values()],
      signal,
    );
    const points = [...early]
      .filter(([id, u]) => revisionOf(recorded.get(id)?.revision) < revisionOf(u.payload.revision))
      .map(([id, u]) => ({
        id,
        payload: { revision: revisionOf(u.payload.revision), seen_at: u.seenAt, fields: u.payload },
      }));
    if (points.length > 0) await this.#record(this.#early, "early updates in", points, signal);
    // Its first copy may have been written since the read above, having read no record.
    if (await this.#exists(signal)) await this.#merge([...early.values()], signal);
  }

  /** Lays the recorded early updates (see #update) over the points of a first copy just written. */
  async #mergeEarly(items: Envelope<RawItem>[], signal: AbortSignal): Promise<void> {
    if (items.length === 0) return;
    const recorded = await this.#records(
      this.#early,
      "the early updates recorded for",
      items,
      signal,
    );
    if (recorded.size === 0) return;
    const deletedAt = await this.#deletedAt(items, signal);
    const updates: Envelope<RawItem>[] = [];
    for (const item of items) {
      const record = recorded.get(pointId(item.id));
      // Recorded before the story's delete: gone with it, as a Postgres row of it is.
      const at = deletedAt.get(pointId(item.id));
      if (at !== undefined && !(typeof record?.seen_at === "number" && record.seen_at > at)) {
        continue;
      }
      const fields = record?.fields;
      if (typeof fields !== "object" || fields === null) continue;
      if (revisionOf((fields as RawItem).revision) <= revisionOf(item.payload.revision)) continue;
      updates.push({ ...item, vector: undefined, update: true, payload: fields as RawItem });
    }
    if (updates.length > 0) await this.#merge(updates, signal);
  }

  /**
   * Removes again the points just upserted whose delete was recorded
   * meanwhile: a delete written by another process (or batch) between this
   * batch's read of the deletes and its upsert removed the point before the
   * upsert landed, and the point was back for good. A delete records itself
   * before it removes the point, so one read after the upsert sees it.
   */
  async #undoDeleted(items: Envelope<RawItem>[], signal: AbortSignal): Promise<void> {
    const deletedAt = await this.#deletedAt(items, signal);
    if (deletedAt.size === 0) return;
    const gone = items
      .filter((item) => (deletedAt.get(pointId(item.id)) ?? -Infinity) >= item.seenAt)
      .map((item) => pointId(item.id));
    if (gone.length === 0) return;
    await this.#call(
      "delete",
      `${gone.length} points deleted meanwhile from`,
      signal,
      (init) =>
        this.#api.deletePoints(
          this.#options.collection,
          this.#options.wait,
          { points: gone },
          init,
        ),
    );
  }

  /**
   * An upsert replaces a point's whole payload, so what the point already
   * holds is read first (its merged fields and first sighting, one request
   * per batch): a point at a higher revision than the copy (a run after a
   * restart, whose Deduper remembers nothing, sending a story's first copy
   * again) keeps its merged fields (sources, engagement, lastSeenAt,
   * revision) and takes the copy's content and vector, as a Postgres row
   * does (it was left as it was: a corrected re-scrape reached Postgres and
   * not Qdrant, whose search ran on the old text's vector); and a point
   * written again keeps its `millrace_seen_at`, the first sighting
   * retention counts from, as the Postgres sink's rows do.
   */
  async #keepingStored(points: QdrantPoint[], signal: AbortSignal): Promise<QdrantPoint[]> {
    const reply = await this.#call(
      "read",
      `${points.length} points of`,
      signal,
      (init) =>
        this.#api.retrievePoints(this.#options.collection, {
          ids: points.map((p) => p.id),
          with_payload: [...MERGED_FIELDS, SEEN_AT_FIELD],
          with_vector: false,
        }, init),
    );
    const result = reply.data?.result;
    const stored = new Map<string, Record<string, unknown>>();
    for (const point of Array.isArray(result) ? result : []) {
      const { id, payload } = point as { id: unknown; payload?: Record<string, unknown> };
      if (payload) stored.set(String(id), payload);
    }
    if (stored.size === 0) return points;
    const kept: QdrantPoint[] = [];
    for (const point of points) {
      const held = stored.get(String(point.id));
      if (held === undefined) {
        kept.push(point);
        continue;
      }
      // A merged story's point keeps its merged fields against a copy of the same revision
      // too, as a Postgres row does (_pg_upsert.ts upsertSql says why).
      const mine = revisionOf(held.revision), theirs = revisionOf(point.payload.revision);
      const story = Array.isArray(held.sources);
      const tie = mine === theirs && mine > 0 && Array.isArray(point.payload.sources);
      if (story && (mine > theirs || tie)) {
        const engagement = mostOf(point.payload.engagement, held.engagement);
        for (const field of MERGED_FIELDS) {
          if (held[field] !== undefined) point.payload[field] = held[field];
        }
        if (Object.keys(engagement).length > 0) point.payload.engagement = engagement;
      }
      const first = held[SEEN_AT_FIELD];
      if (typeof first === "number" && first < (point.payload[SEEN_AT_FIELD] as number)) {
        point.payload[SEEN_AT_FIELD] = first;
      }
      kept.push(point);
    }
    return kept;
  }

  /**
   * Sets the merged fields of each update's point, in one batch request, on
   * a point whose `revision` is lower (or missing): an older update applied
   * late changes nothing. Engagement is set field by field (under the
   * `engagement` key) so the first copy's other engagement fields stay. The
   * vector is not touched. A point not written yet takes nothing here:
   * #update records such updates for the story's first copy (#mergeEarly).
   */
  async #merge(items: Envelope<RawItem>[], signal: AbortSignal): Promise<void> {
    const operations = items.flatMap((item) => {
      const { engagement, ...rest } = item.payload as RawItem & { revision?: number };
      const filter = {
        must: [{ has_id: [pointId(item.id)] }],
        must_not: [{ key: "revision", range: { gte: rest.revision ?? 0 } }],
      };
      return [
        ...(engagement && Object.keys(engagement).length > 0
          ? [{ set_payload: { payload: engagement, key: "engagement", filter } }]
          : []),
        { set_payload: { payload: rest, filter } },
      ];
    });
    await this.#call(
      "update",
      `${items.length} points of`,
      signal,
      (init) =>
        this.#api.batchUpdate(this.#options.collection, this.#options.wait, { operations }, init),
    );
  }

  /** Whether the collection exists: known once seen, else asked (another process may have made it). */
  async #exists(signal: AbortSignal): Promise<boolean> {
    if (this.#size !== undefined) return true;
    const found = await this.#fetch(signal);
    if (found) this.#check(found, undefined);
    return found !== undefined;
  }

  /** The collection's vector params, or undefined when it does not exist. */
  async #fetch(signal?: AbortSignal): Promise<VectorParams | undefined> {
    try {
      const response = await this.#call(
        "fetch",
        "collection",
        signal,
        (init) => this.#api.getCollection(this.#options.collection, init),
      );
      const result = response.data?.result;
      if (typeof result !== "object" || result === null) {
        throw new Error(
          `qdrant sink: the answer about collection ${this.#options.collection} holds no ` +
            `result (not Qdrant's JSON: is the url Qdrant's REST port, 6333?)`,
        );
      }
      return vectorParams(this.#options.collection, result.config?.params?.vectors);
    } catch (error) {
      if ((error as QdrantError).status === 404) return undefined;
      throw error;
    }
  }

  /** Refuses a collection whose vectors this flow cannot write. */
  #check(found: VectorParams, dimensions: number | undefined): void {
    const { collection, distance } = this.#options;
    if (found.distance !== distance || (dimensions !== undefined && found.size !== dimensions)) {
      throw new Error(
        `qdrant sink: ${mismatch(collection, found, { size: dimensions ?? found.size, distance })}`,
      );
    }
  }

  /**
   * Creates the collection (once, however many writes ask at a time) and
   * returns its vector length. When another process created it first, its
   * params are checked instead.
   */
  #ensure(size: number, signal: AbortSignal): Promise<number> {
    this.#creating ??= (async () => {
      const { collection, distance } = this.#options;
      try {
        await this.#call(
          "create",
          "collection",
          signal,
          (init) => this.#api.createCollection(collection, { vectors: { size, distance } }, init),
        );
        this.#options.log?.info(
          `qdrant sink: created collection ${this.#where} (${size}-dim ${distance})`,
        );
      } catch (error) {
        const found = (error as QdrantError).status === 409 ? await this.#fetch(signal) : undefined;
        if (!found) throw error;
        this.#check(found, size);
      }
      await this.#createIndexes(signal);
      this.#size = size;
      return size;
    })().catch((error) => {
      this.#creating = undefined;
      throw error;
    });
    return this.#creating;
  }

  /** Creates the configured payload indexes; Qdrant keeps one that already exists. */
  async #createIndexes(signal?: AbortSignal): Promise<void> {
    for (const { field, type } of this.#options.payloadIndexes) {
      await this.#call(
        "index",
        `payload field ${JSON.stringify(field)} of`,
        signal,
        (init) =>
          this.#api.createFieldIndex(this.#options.collection, {
            field_name: field,
            field_schema: type,
          }, init),
      );
    }
  }

  /**
   * A reply's words without the API key: Qdrant does not quote it, but a
   * proxy in front of it may ("invalid api-key <key>"), and the message
   * goes to logs and dead letters.
   */
  #redact(text: string): string {
    const key = this.#options.apiKey;
    // Its start too: a body not Qdrant's is quoted by its first 60 characters.
    return key ? withoutKey(text, key) : text;
  }

  /**
   * Runs one request under the caller's signal and `timeout`, and words its
   * failure: what was asked of which collection, and what Qdrant answered.
   */
  async #call<T>(
    verb: string,
    what: string,
    signal: AbortSignal | undefined,
    request: (init: RequestInit) => Promise<T>,
  ): Promise<T> {
    let timeout!: AbortSignal;
    try {
      // Each try has the whole timeout. A 429 or a 5xx passes in a moment more often than not
      // (Qdrant busy, restarting, a proxy between): tried again here, after what a Retry-After
      // asks, it no longer fails the batch at once, which the runner retried and then split,
      // dead-lettering hundreds of items in a few seconds of 429s.
      return await retry(() => {
        timeout = AbortSignal.timeout(this.#options.timeout);
        return request({ signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      }, {
        signal,
        maxAttempts: this.#options.tries ?? TRIES,
        baseMs: 250,
        isRetryable: (error) => {
          const status = (error as QdrantError).status;
          return status !== undefined
            ? TRANSIENT.has(status)
            : (error as { network?: boolean }).network === true;
        },
        retryAfterMs: (error) => {
          const headers = (error as QdrantHttpError).headers;
          return headers ? retryAfterMs(headers, MAX_RETRY_AFTER_MS) : undefined;
        },
      });
    } catch (error) {
      signal?.throwIfAborted();
      const why = timeout.aborted
        ? `no answer within ${this.#options.timeout}ms`
        : this.#redact(describeError(error));
      // No `cause`: the raw error keeps the reply as it came, key and all.
      const wrapped: QdrantError = new Error(
        `qdrant sink: cannot ${verb} ${what} ${this.#where}: ${why}`,
      );
      const status = (error as QdrantError).status;
      wrapped.status = status;
      // Qdrant refused the request itself: sending it again changes nothing.
      if (status !== undefined && status >= 400 && status < 500 && !RETRY.includes(status)) {
        wrapped.retryable = false;
      }
      // Qdrant, or the way to it, is away (a network error of fetch's, a 502
      // or 503), or still asks us to slow down (429) after the tries above:
      // the stage runner waits it out for a while (RetryHint.away).
      if ((error as { unsent?: boolean }).unsent === true) wrapped.away = true;
      else if (status !== undefined && (AWAY_STATUSES.has(status) || status === 429)) {
        wrapped.away = true;
      }
      // Something other than Qdrant answered 2xx (a proxy's page while Qdrant restarts): away too.
      if ((error as QdrantHttpError).notQdrant === true) wrapped.away = true;
      // A key refused (401, 403) or a collection gone (404) fails every call alike: the run
      // stops rather than dead-letter every item to come (RetryHint.endsRun).
      if (endsRunAt(status)) wrapped.endsRun = true;
      // A url that redirects (adapters/http/capped_fetch.ts) would redirect every call.
      if ((error as RetryHint).endsRun === true) {
        wrapped.endsRun = true;
        wrapped.retryable = false;
      }
      // A request that cannot be written (an item JSON cannot hold) would fail again.
      if (error instanceof PermanentError) wrapped.retryable = false;
      // No answer in time is the service's failure, as a 429 or 5xx (its status) is (RetryHint.service).
      if (timeout.aborted) wrapped.service = true;
      throw wrapped;
    }
  }
}

/**
 * What the runner and callers read of a failure: the HTTP status, Qdrant's
 * words, and `retryable: false` when the same request would fail again (so
 * the runner isolates the bad item at once instead of retrying).
 */
interface QdrantError extends Error, RetryHint {
  status?: number;
  data?: { status?: { error?: string } };
}

/**
 * Where the REST API lives: the URL's scheme, host, path prefix and port,
 * 6333 (Qdrant's) when the URL gives none, as @qdrant/js-client-rest did.
 */
export function qdrantBase(url: URL): string {
  return `${url.protocol}//${url.hostname}:${url.port || 6333}${url.pathname.replace(/\/+$/, "")}`;
}

/** 4xx answers that may pass on a later try. */
const RETRY = [408, 409, 425, 429];

/** Answers a call is sent again for, at once, by the sink itself. */
const TRANSIENT: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/** Tries of one call, the first among them (QdrantSinkOptions.tries). */
const TRIES = 4;

/** Longest Retry-After a call waits as asked; a longer one waits this long. */
const MAX_RETRY_AFTER_MS = 30_000;

/** An HTTP status with Qdrant's own words, or the network error. */
function describeError(error: unknown): string {
  const e = error as QdrantError;
  if (typeof e?.status === "number") {
    const said = e.data?.status?.error;
    return `${e.status} ${said ?? e.message}`;
  }
  return errorMessage(error);
}

/** A point as the sink upserts it. */
interface QdrantPoint {
  id: string;
  vector: number[];
  payload: Record<string, unknown>;
}

/**
 * Two engagements count by count, each at its maximum (as the Deduper merges
 * them); a count that is no number is `held`'s where both have it.
 */
function mostOf(copy: unknown, held: unknown): Record<string, unknown> {
  const counts = (v: unknown) => (typeof v === "object" && v !== null ? v : {});
  const out: Record<string, unknown> = { ...counts(copy), ...counts(held) };
  for (const [key, value] of Object.entries(counts(copy))) {
    const kept = out[key];
    if (typeof value === "number" && typeof kept === "number" && value > kept) out[key] = value;
  }
  return out;
}

/** A story's revision as a number (a story never merged has none: 0). */
function revisionOf(value: unknown): number {
  return typeof value === "number" ? value : 0;
}

function vectorOf(item: Envelope<RawItem>): number[] {
  if (!Array.isArray(item.vector) || item.vector.length === 0) {
    throw new PermanentError(
      `qdrant sink: item ${item.id} has no vector; put an embed stage before the publish stage`,
    );
  }
  return item.vector;
}

/** The single unnamed vector a collection holds; named vectors are refused. */
function vectorParams(collection: string, vectors: unknown): VectorParams {
  const v = vectors as Partial<VectorParams> | Record<string, unknown> | undefined;
  if (v && typeof v.size === "number" && typeof v.distance === "string") {
    return { size: v.size, distance: v.distance };
  }
  const names = v && typeof v === "object" ? Object.keys(v) : [];
  throw new Error(
    `qdrant sink: collection ${collection} has ${
      names.length ? `named vectors (${names.join(", ")})` : "no vectors"
    }; the sink writes one unnamed vector per point: publish to another collection`,
  );
}

/**
 * Why a collection does not fit the flow, and what to do:
 * "collection trends has 1536-dim Cosine vectors, the flow embeds 256-dim: ...".
 */
function mismatch(collection: string, found: VectorParams, flow: VectorParams): string {
  const has = `collection ${collection} has ${found.size}-dim ${found.distance} vectors`;
  const differ: string[] = [];
  const fix: string[] = [];
  if (found.size !== flow.size) {
    differ.push(`the flow embeds ${flow.size}-dim`);
    fix.push(`set the embedder's (and the sink's) dimensions to ${found.size}`);
  }
  if (found.distance !== flow.distance) {
    differ.push(`the sink's distance is ${flow.distance}`);
    fix.push(`set the sink's distance to ${found.distance}`);
  }
  return `${has}, ${differ.join(" and ")}: ${fix.join(" and ")}, or publish to another collection`;
}

/**
 * ```yaml
 * - publish:
 *     - qdrant:
 *         url: ${QDRANT_URL}
 *         apiKey: ${QDRANT_API_KEY}
 *         collection: trends
 *         distance: Cosine
 *         dimensions: 256
 *         payloadIndexes: [domain, language, publishedAt, { field: keywords, type: keyword }]
 *         timeout: 30s
 *         wait: true
 * ```
 */
export const qdrantSink: SinkSpec<QdrantSinkConfig> = {
  kind: "qdrant",
  summary: "Upserts items as points (vector and payload) into a Qdrant collection.",
  schema: qdrantSinkSchema,
  needs: ["embedded"],
  create: (config, env) => new QdrantSink({ ...config, log: env.log, vectors: env.vectors }),
};

function dimensionsDisagree(configured: number, embedded: number): string {
  return `dimensions is ${configured} but the embed stage makes vectors of ${embedded}: ` +
    "make them agree, or drop the sink's dimensions";
}
