import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { isNoPermission, RedisRefusedError } from "./no_permission.ts";

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
  /** The script's SHA-1, the name EVALSHA calls it by. */
  readonly sha: string;
  readonly #queued: boolean;

  /** `lua` is the script; `offlineQueue: false` for a stage's writes (see the class comment). */
  constructor(readonly lua: string, opts: { offlineQueue?: boolean } = {}) {
    this.sha = createHash("sha1").update(lua).digest("hex");
    this.#queued = opts.offlineQueue ?? true;
  }

  /**
   * Runs the script on `redis` with `keys` and `args`; its reply as ioredis
   * gives it. A refusal another try can mend (TRANSIENT: memory full, a
   * busy or loading server, a failover) says it is an outage, so a stage
   * waits it out as it does a lost connection, rather than retrying,
   * splitting and dead-lettering the batch's items within a second.
   */
  async run(
    redis: Redis,
    keys: readonly string[],
    args: readonly (string | Uint8Array)[],
  ): Promise<unknown> {
    try {
      try {
        await this.#connected(redis, "EVALSHA");
        return await redis.evalsha(this.sha, keys.length, ...keys, ...(args as string[]));
      } catch (error) {
        if (!String((error as Error).message).startsWith("NOSCRIPT")) throw error;
        await this.#connected(redis, "EVAL");
        return await redis.eval(this.lua, keys.length, ...keys, ...(args as string[]));
      }
    } catch (error) {
      // A right the user lacks ends the run: every batch would be refused alike.
      if (isNoPermission(error)) throw new RedisRefusedError("a script", error);
      if (isRefusedForNow(error)) {
        // A hint on the reply itself: its message, name and stack stay what Redis said.
        Object.defineProperty(error, "outage", { value: true });
      }
      throw error;
    }
  }

  /**
   * Unless queuing is allowed: returns at once while the connection is up
   * (ready, and its socket takes writes) or still making its first
   * connection (nothing was read before it, so nothing can have been lost
   * under it); after a drop, fails once Redis is back. A client still says
   * "ready" for a moment after Redis closed its socket (a restart, a CLIENT
   * KILL), and ioredis would put the call in its offline queue then.
   */
  async #connected(redis: Redis, command: string): Promise<void> {
    if (this.#queued) return;
    const status = redis.status;
    if (status === "end" || (status === "ready" && writable(redis))) return;
    const away = status === "ready" || status === "reconnecting" || status === "close" ||
      droppedSinceReady(redis)();
    if (!away) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        redis.off("ready", done);
        redis.off("end", done);
        resolve();
      };
      redis.on("ready", done);
      redis.on("end", done);
    });
    throw new RedisAwayError(command);
  }
}

/** Whether a command sent now goes out on the socket (ioredis queues it offline otherwise). */
function writable(redis: Redis): boolean {
  const stream = (redis as unknown as { stream?: { writable?: boolean } }).stream;
  return stream?.writable === true;
}

const drops = new WeakMap<Redis, () => boolean>();

/** Whether `redis` closed since it was last ready (watched from its first call here on). */
function droppedSinceReady(redis: Redis): () => boolean {
  let known = drops.get(redis);
  if (!known) {
    let dropped = false;
    redis.on("close", () => dropped = true);
    redis.on("ready", () => dropped = false);
    drops.set(redis, known = () => dropped);
  }
  return known;
}

/** A call was to be sent while Redis was away; it was not sent, and may be tried again. */
export class RedisAwayError extends Error {
  /** Not the batch's fault: retried without spending its retries (errors.ts RetryHint). */
  readonly outage = true;

  /** `command` is what was not sent, for the message. */
  constructor(command: string) {
    super(`Redis was away when ${command} was to be sent: it was not sent`);
    this.name = "RedisAwayError";
  }
}

/**
 * Error codes a script may fail with that another try can mend, refused
 * before its first write: memory, a disk that cannot persist, a busy or
 * loading server, a failover.
 */
const TRANSIENT =
  /^(OOM|MISCONF|BUSY|LOADING|READONLY|MASTERDOWN|NOREPLICAS|TRYAGAIN|CLUSTERDOWN|NOSCRIPT)\b/;

/**
 * Whether Redis refused a call for now (TRANSIENT), another try being able
 * to succeed: its own reply, or the reply to a command of a MULTI that
 * EXECABORT then discarded (ioredis keeps those as `previousErrors`).
 */
export function isRefusedForNow(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (TRANSIENT.test(error.message)) return true;
  const earlier = (error as { previousErrors?: unknown }).previousErrors;
  return Array.isArray(earlier) && earlier.some((e) => TRANSIENT.test(String(e?.message)));
}

/**
 * Whether a script failed while it ran for a reason of its own (a Lua
 * error, a limit such as unpack's, a key of the wrong type): another try
 * fails the same way, after the same writes, since Redis rolls nothing
 * back. Redis 7 names the script in such an error (`on @user_script:1`).
 */
export function isScriptFault(error: unknown): boolean {
  const message = String((error as Error | undefined)?.message ?? "");
  return message.includes("@user_script:") && !TRANSIENT.test(message);
}
