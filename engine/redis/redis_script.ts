import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/**
 * A Lua script run by EVALSHA, falling back to EVAL (which also loads it)
 * when the server does not know it yet: after the first call, a script
 * costs its arguments on the wire and one round trip.
 */
export class RedisScript {
  readonly sha: string;

  constructor(readonly lua: string) {
    this.sha = createHash("sha1").update(lua).digest("hex");
  }

  async run(
    redis: Redis,
    keys: readonly string[],
    args: readonly (string | Uint8Array)[],
  ): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...(args as string[]));
    } catch (error) {
      if (!String((error as Error).message).startsWith("NOSCRIPT")) throw error;
      return await redis.eval(this.lua, keys.length, ...keys, ...(args as string[]));
    }
  }
}
