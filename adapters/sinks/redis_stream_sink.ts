import { isNoPermission, RedisRefusedError } from "../../engine/redis/no_permission.ts";
import type { Redis } from "ioredis";
import { z } from "zod";
import { checkContext } from "../../config/check_context.ts";
import { duration } from "../../config/units.ts";
import { redisUrl } from "../../config/redis_url.ts";
import type { Envelope, RawItem } from "../../engine/item.ts";
import type { SinkSpec } from "../../engine/registry.ts";
import type { Sink } from "../../engine/sink.ts";
import { closeRedis, connectRedis } from "../../engine/redis/connection.ts";
import { isOutage } from "../../engine/errors.ts";
import { untilAborted } from "../../engine/until_aborted.ts";
import { isRefusedForNow } from "../../engine/redis/redis_script.ts";
import { writesUpdates } from "./jsonl_sink.ts";

export const redisStreamSinkSchema = z.strictObject({
  url: redisUrl().optional()
    .describe("Redis URL; default the flow's own Redis when the flow is durable, else required."),
  stream: z.string().min(1).describe("Key of the stream to append to. Required."),
  maxLen: z.int().positive().default(1_000_000)
    .describe("Entries the stream keeps, trimmed approximately (MAXLEN ~); default 1000000."),
  fields: z.array(z.string().min(1)).min(1).optional()
    .describe("Payload fields to keep in each entry; default all of them."),
  idTtl: duration({ positive: true, long: true }).default(7 * 86_400_000)
    .describe("How long an id is remembered, so its replay appends nothing; default 7d."),
}).superRefine((c, ctx) => {
  // Caught when the flow is checked, not when its run opens the sink.
  if (c.url === undefined && checkContext()?.durability === "memory") {
    ctx.addIssue({
      code: "custom",
      path: ["url"],
      message: "required in a memory flow (only a durable flow has a Redis of its own); " +
        "add url: ${REDIS_URL:-redis://127.0.0.1:6379}",
    });
  }
}).describe("Appends one entry per item to a Redis stream, once per item id.");

export type RedisStreamSinkConfig = z.output<typeof redisStreamSinkSchema>;

/**
 * Appends the entries whose keys are new, in one atomic step.
 *
 * KEYS[1] stream, KEYS[2] sorted set of the keys written (score: when),
 * KEYS[3] hash of where each id ever deleted stands (see afterDelete):
 * `d<seenAt>` after its tombstone (the latest delete's), `i<seenAt>` after
 * its item came back.
 * ARGV[1] now (ms), ARGV[2] id ttl (ms), ARGV[3] maxLen, then per entry:
 *   its key, its item's id, its kind (`i` item, `d` delete, `u` merge
 *   update), its seenAt, n, and n field/value strings. An id never deleted
 *   is appended once per key; one deleted takes an item seen after its
 *   delete (it comes back), a delete seen at or after the item that came
 *   back, and no merge update while deleted. A tombstone key without a
 *   standing (written before the standings were kept) keeps its item out.
 * Returns how many entries were appended.
 */
const APPEND_ONCE = `
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - ttl))
local added = 0
local i = 4
while i <= #ARGV do
  local key, id, kind = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local n = tonumber(ARGV[i + 4])
  local tombstone = redis.call('ZSCORE', KEYS[2], id .. ':deleted')
  local st = redis.call('HGET', KEYS[3], id)
  if st and not tombstone then
    -- its delete was forgotten with idTtl, as its keys were
    redis.call('HDEL', KEYS[3], id)
    st = false
  end
  local write = false
  if not st then
    write = (kind == 'd' or not tombstone) and redis.call('ZADD', KEYS[2], 'NX', now, key) == 1
    if write and kind == 'd' then redis.call('HSET', KEYS[3], id, 'd' .. ARGV[i + 3]) end
  elseif kind == 'u' then
    write = string.sub(st, 1, 1) == 'i' and redis.call('ZADD', KEYS[2], 'NX', now, key) == 1
  else
    local seen, at = tonumber(ARGV[i + 3]), tonumber(string.sub(st, 2))
    if string.sub(st, 1, 1) == 'd' then
      write = kind == 'i' and seen > at
      -- a later delete of an id deleted moves the delete's time on, kept here (unappended)
      if kind == 'd' and seen > at then redis.call('HSET', KEYS[3], id, 'd' .. ARGV[i + 3]) end
    else
      write = kind == 'd' and seen >= at
    end
    if write then
      redis.call('ZADD', KEYS[2], now, key)
      redis.call('HSET', KEYS[3], id, kind .. ARGV[i + 3])
    end
  end
  if write then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, i + 5, i + 4 + n))
    added = added + 1
  end
  i = i + 5 + n
end
redis.call('PEXPIRE', KEYS[2], ttl)
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ttl) end
return added
`;

/** Most entries one script call carries; a batch of more is several calls in one pipeline. */
const CHUNK = 500;

interface AppendOnce {
  millraceAppendOnce(...args: (string | number)[]): Promise<number>;
}

export interface RedisStreamSinkOptions {
  stream: string;
  maxLen: number;
  fields?: string[];
  idTtl: number;
  /** Clock for the id ttl (tests); default Date.now. */
  now?: () => number;
}

/** Where the sink's connection comes from: a URL it owns, or a connection it borrows. */
export type RedisSource = { url: string; name?: string } | { redis: Redis };

/**
 * Appends one entry per item to a Redis stream, with the fields `id`,
 * `source`, `seenAt` and `payload` (JSON, `fields` only when set); a deleted
 * item appends a tombstone instead: `id`, `source`, `seenAt`, `deleted` =
 * "true", and no payload; a merge update (Envelope.update) appends `id`,
 * `source`, `seenAt`, `update` = "true" and `payload` holding the story's
 * merged fields (those of `fields`, and no entry when it names none), keyed
 * `<id>:r<revision>`. Consumers read it with XREAD or their own group.
 *
 * Each id is appended once: a small Lua script adds the id to a sorted set
 * `<stream>:ids` (ZADD NX, scored by time) and appends only when it was
 * new, so a retried batch, a redelivery or a re-run appends nothing twice;
 * a tombstone is keyed `<id>:deleted`, apart from its item. An id deleted
 * takes an item again only when it was seen after the delete, and a
 * delete again only when seen after that item (afterDelete), as the
 * Postgres and Qdrant sinks do: `<stream>:deleted` holds where each stands. The whole batch
 * is one script call per 500 items, sent in one pipeline: one round trip.
 *
 * Expiry: an id is forgotten `idTtl` (default 7 days) after it was first
 * written: each call drops the older ones, and the set itself expires
 * `idTtl` after the last write. So the set holds the ids written in the last
 * `idTtl`, about 50 bytes each; a replay within it appends nothing, one
 * after it appends again. Within it, an id is appended once however its
 * payload changed (a stream is a log of first sightings and deletes, not a
 * table of latest versions).
 *
 * On Redis Cluster the stream key needs a hash tag (`{trends}:items`) so
 * `<stream>:ids` lands in its slot.
 */
export class RedisStreamSink implements Sink {
  /**
   * Merge updates are appended for the story they name (see the class
   * comment), unless `fields` keeps none of the merged fields (writesUpdates).
   */
  readonly updates: boolean;
  readonly #from: RedisSource;
  readonly #options: RedisStreamSinkOptions;
  readonly #idsKey: string;
  /** Where each id ever deleted stands (see APPEND_ONCE). */
  readonly #deletedKey: string;
  #connecting?: Promise<Redis>;

  /**
   * `from`: `{ url }` (the sink opens and closes its own connection) or `{ redis }`, a connection the caller owns.
   */
  constructor(from: RedisSource, options: RedisStreamSinkOptions) {
    this.#from = from;
    this.#options = options;
    this.updates = writesUpdates({ fields: options.fields, vectors: false });
    this.#idsKey = `${options.stream}:ids`;
    this.#deletedKey = `${options.stream}:deleted`;
  }

  /** Connects (when the sink owns its connection) and loads the script. */
  async open(): Promise<void> {
    await this.#connection();
  }

  /**
   * Appends each item of the batch whose id the stream has not had within `idTtl`, in one round
   * trip.
   */
  async write(batch: readonly Envelope<RawItem>[], signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (batch.length === 0) return;
    const redis = await this.#connection() as Redis & AppendOnce;
    const { stream, maxLen, idTtl } = this.#options;
    const now = (this.#options.now ?? Date.now)();
    const pipeline = redis.pipeline() as ReturnType<Redis["pipeline"]> & AppendOnce;
    for (let start = 0; start < batch.length; start += CHUNK) {
      const args: (string | number)[] = [
        stream,
        this.#idsKey,
        this.#deletedKey,
        now,
        idTtl,
        maxLen,
      ];
      for (const item of batch.slice(start, start + CHUNK)) {
        if (item.update !== true || this.updates) this.#entry(item, args);
      }
      pipeline.millraceAppendOnce(...args);
    }
    this.#up(redis, `append to ${stream}`);
    const results = await untilAborted(pipeline.exec(), signal);
    const failed = results?.find(([error]) => error);
    if (!results || failed) {
      throw this.#failure(`append to ${stream}`, failed?.[0] ?? undefined);
    }
  }

  /**
   * Fails at once, unsent, while the connection is down: ioredis would hold
   * the call in its offline queue until Redis is back, which may be never,
   * and the stage with it. The runner waits the failure out: as an outage
   * when the connection is the flow's own (the whole flow pauses for it), as
   * a service away (for up to 10 minutes) when it is the sink's.
   */
  #up(redis: Redis, what: string): void {
    const stream = (redis as unknown as { stream?: { writable?: boolean } }).stream;
    if (redis.status === "ready" && stream?.writable === true) return;
    throw this.#failure(what, new Error(`Redis is not connected (${redis.status}): not sent`));
  }

  /** A failed call, as the runner reads it: its cause kept, away or an outage when Redis is. */
  #failure(what: string, cause: Error | undefined): Error {
    // A right the user lacks ends the run: every batch would be refused alike.
    if (isNoPermission(cause)) {
      return new RedisRefusedError(`the redis-stream sink's ${what}`, cause);
    }
    const error = new Error(`redis-stream sink: cannot ${what}: ${cause?.message ?? "no reply"}`, {
      cause,
    });
    // Refused for now (a replica's READONLY in a failover, memory full, loading): as away too.
    const lost = cause !== undefined &&
      (/not connected/.test(cause.message) || isOutage(cause) || isRefusedForNow(cause));
    if (lost) Object.assign(error, "url" in this.#from ? { away: true } : { outage: true });
    return error;
  }

  /**
   * Removes the entries appended before `before` (epoch ms), for the publish
   * stage's retention: XTRIM MINID, since entry ids are their append times.
   * So this is by append time, not by when the item was first seen (the
   * same but for a replay that appended again); and, like MAXLEN, it trims
   * a whole stream, whoever appended. The ids written before the cutoff are
   * forgotten too (the set is scored by write time), so an expired item that
   * comes again is appended again. Returns how many entries were removed.
   */
  async expire(before: number, signal: AbortSignal): Promise<number> {
    signal.throwIfAborted();
    const redis = await this.#connection();
    const cutoff = Math.max(0, Math.floor(before));
    const what = `expire entries of ${this.#options.stream}`;
    this.#up(redis, what);
    const results = await untilAborted(
      redis.multi()
        .xtrim(this.#options.stream, "MINID", cutoff)
        .zremrangebyscore(this.#idsKey, "-inf", `(${cutoff}`)
        .exec(),
      signal,
    ).catch((error) => {
      // EXECABORT: a command was refused as the MULTI was queued (READONLY, MISCONF).
      throw signal.aborted ? error : this.#failure(what, error);
    });
    const failed = results?.find(([error]) => error);
    if (!results || failed) throw this.#failure(what, failed?.[0] ?? undefined);
    return Number(results[0][1]);
  }

  /** Closes the connection when the sink opened it; one the caller gave stays open. */
  async close(): Promise<void> {
    const redis = await this.#connecting?.catch(() => undefined);
    this.#connecting = undefined;
    if (redis && "url" in this.#from) await closeRedis(redis);
  }

  /** Pushes one entry's key, id, kind, seenAt, field count and fields onto `args`. */
  #entry(item: Envelope<RawItem>, args: (string | number)[]): void {
    const seen = String(item.seenAt);
    const head = ["id", item.id, "source", item.source, "seenAt", seen];
    if (item.payload.deleted === true) {
      args.push(
        `${item.id}:deleted`,
        item.id,
        "d",
        seen,
        head.length + 2,
        ...head,
        "deleted",
        "true",
      );
      return;
    }
    if (item.update === true) {
      // News of a deleted story brings back no part of it.
      args.push(
        `${item.id}:r${item.payload.revision}`,
        item.id,
        "u",
        seen,
        head.length + 4,
        ...head,
        "update",
        "true",
        "payload",
        JSON.stringify(this.#pick(item)),
      );
      return;
    }
    // A delete that came first stands (within idTtl), unless this copy was seen after it.
    args.push(
      item.id,
      item.id,
      "i",
      seen,
      head.length + 2,
      ...head,
      "payload",
      JSON.stringify(this.#pick(item)),
    );
  }

  #pick(item: Envelope<RawItem>): Record<string, unknown> {
    const { fields } = this.#options;
    if (!fields) return item.payload;
    const picked: Record<string, unknown> = {};
    for (const f of fields) if (f in item.payload) picked[f] = item.payload[f];
    return picked;
  }

  #connection(): Promise<Redis> {
    return this.#connecting ??= (async () => {
      const from = this.#from;
      const redis = "redis" in from ? from.redis : await connectRedis(from.url, {
        name: from.name,
      }).catch((error: Error) => {
        throw new Error(`redis-stream sink: ${error.message}`, { cause: error });
      });
      if (!("millraceAppendOnce" in redis)) {
        redis.defineCommand("millraceAppendOnce", { numberOfKeys: 3, lua: APPEND_ONCE });
      }
      return redis;
    })().catch((error) => {
      this.#connecting = undefined;
      throw error;
    });
  }
}

/**
 * ```yaml
 * - publish:
 *     - redis-stream:
 *         url: ${REDIS_URL}            # default: the flow's own Redis when durable
 *         stream: "{trends}:published"
 *         maxLen: 1000000
 *         fields: [title, url, domain]
 *         idTtl: 7d
 * ```
 */
export const redisStreamSink: SinkSpec<RedisStreamSinkConfig> = {
  kind: "redis-stream",
  summary: "Appends one entry per item to a Redis stream, once per item id.",
  schema: redisStreamSinkSchema,
  create(config, env) {
    let from: RedisSource;
    if (config.url) from = { url: config.url, name: `millrace:${env.flow}:redis-stream` };
    else if (env.durable) from = { redis: env.durable.redis };
    else {
      throw new Error(
        `redis-stream sink of ${config.stream}: set \`url\`; only a durable flow has a Redis of its own`,
      );
    }
    return new RedisStreamSink(from, config);
  },
};
