import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/**
 * A Lua script run by EVALSHA, falling back to EVAL (which also loads it)
 * when the server does not know it yet: after the first call, a script
 * costs its arguments on the wire and one round trip.
 *
 * With `offlineQueue: false`, a call is never left in the client's offline
 * queue to run whenever Redis is back: if the connection is not up when it
 * is to be sent, it waits for Redis and then fails unsent (RedisAwayError,
 * retried like any failure). For the scripts of a stage whose writes follow
 * from the items it holds (the Deduper's claims): the stage's batch is then
 * tried again, and the edge first checks that Redis still has its entries
 * (Edge.fence), which a call queued across a restart would skip.
 */
export class RedisScript {
  readonly sha: string;
  readonly #queued: boolean;

  constructor(readonly lua: string, opts: { offlineQueue?: boolean } = {}) {
    this.sha = createHash("sha1").update(lua).digest("hex");
    this.#queued = opts.offlineQueue ?? true;
  }

  async run(
    redis: Redis,
    keys: readonly string[],
    args: readonly (string | Uint8Array)[],
  ): Promise<unknown> {
    try {
      await this.#connected(redis, "EVALSHA");
      return await redis.evalsha(this.sha, keys.length, ...keys, ...(args as string[]));
    } catch (error) {
      if (!String((error as Error).message).startsWith("NOSCRIPT")) throw error;
      await this.#connected(redis, "EVAL");
      return await redis.eval(this.lua, keys.length, ...keys, ...(args as string[]));
    }
  }

  /** Unless queuing is allowed: returns at once while the connection is up, else fails once it is. */
  async #connected(redis: Redis, command: string): Promise<void> {
    if (this.#queued || redis.status === "ready") return;
    if (redis.status !== "end") await new Promise((resolve) => redis.once("ready", resolve));
    throw new RedisAwayError(command);
  }
}

/** A call was to be sent while Redis was away; it was not sent, and may be tried again. */
export class RedisAwayError extends Error {
  constructor(command: string) {
    super(`Redis was away when ${command} was to be sent; not sent, tried again`);
    this.name = "RedisAwayError";
  }
}
