import type { Redis, RedisOptions } from "ioredis";
import { sleep } from "../backoff.ts";
import { portOutOfRange } from "../url_port.ts";
import { retry } from "../retry.ts";
import { maskSecretsOf, maskUrl, PASSWORD_ENCODING } from "../mask_url.ts";

export { maskUrl };

/**
 * Redis connections for a pipeline that must not lose or reorder commands.
 *
 * - A command issued while Redis is away waits (offline queue, retries
 *   forever) and runs once Redis is back, in the order it was issued.
 * - A command already sent when the connection dropped is rejected with
 *   RedisConnectionLostError, never sent again behind the caller's back: it
 *   may or may not have run, and only the caller knows how to retry its
 *   whole step (the durable runner's steps are idempotent).
 * - Reconnects back off exponentially with jitter, up to 2s between tries.
 */

export type RedisEvent = "dropped" | "reconnecting" | "ready" | "error" | "unresponsive";

/** What `onEvent` is told with each event. */
export interface RedisEventDetail {
  /** The URL with its password masked. */
  url: string;
  /** For "reconnecting": ms until the next try. */
  delay?: number;
  /** For "error": what went wrong. */
  error?: string;
  /** For "unresponsive": ms the oldest unanswered command has waited so far. */
  waited?: number;
}

/** How `connectRedis` connects and watches the connection; every field has a default. */
export interface ConnectOptions {
  /** Connection name (CLIENT SETNAME), shown by CLIENT LIST. */
  name?: string;
  /** Ms to reach the server (connect, AUTH, PING) before giving up. Default 5000. */
  timeout?: number;
  /**
   * The connection will carry blocking reads (XREADGROUP BLOCK): a reply may
   * legitimately take as long as the BLOCK time, so replies are not watched
   * (no replyTimeout, no "unresponsive"); TCP keepalive still finds a dead peer.
   */
  blocking?: boolean;
  /**
   * Ms without any reply, while one is owed, after which the server is taken
   * for dead: the connection is dropped (failing what was in flight) and
   * replaced. Default 30000.
   */
  replyTimeout?: number;
  /** Ms without any reply, while one is owed, before "unresponsive" is told. Default 5000. */
  stallAfter?: number;
  /**
   * Told about the connection after it first came up: "dropped" when it
   * closes, before any command issued afterwards can run; "reconnecting" at each
   * try after it dropped (so a runner can log "Redis unavailable, pausing"),
   * "unresponsive" once when it has owed a reply for `stallAfter` (a server
   * that is frozen or swamped keeps the connection open), "ready" when it is
   * back (reconnected, or answering again), "error" for each error the
   * connection reports.
   */
  onEvent?(event: RedisEvent, detail: RedisEventDetail): void;
}

/**
 * Redis could not be reached within the connect timeout, refused our
 * credentials, or its URL could not be read: the message says which.
 */
export class RedisUnreachableError extends Error {
  /** The URL, password masked. */
  readonly url: string;
  /** Redis did not answer (not a bad URL or refused credentials): trying later may work. */
  readonly away: boolean;
  /** `url` must already be masked; `cause` says what failed; `what` leads the message. */
  constructor(url: string, cause: string, what = REACH) {
    super(`${what} ${url}: ${cause}`);
    this.name = "RedisUnreachableError";
    this.url = url;
    this.away = what === REACH;
  }
}

const REACH = "cannot reach Redis at";

/** A command was in flight when the connection dropped; it may or may not have run. */
export class RedisConnectionLostError extends Error {
  /** Not the batch's fault: retried without spending its retries (errors.ts RetryHint). */
  readonly outage = true;

  /** `command` is what was in flight, for the message. */
  constructor(command: string) {
    super(`connection to Redis lost while ${command} was in flight; it may or may not have run`);
    this.name = "RedisConnectionLostError";
  }
}

const DEFAULT_TIMEOUT = 5000;
const MAX_DELAY = 2000;
const REPLY_TIMEOUT = 30_000;
const STALL_AFTER = 5000;

/**
 * Connection options read from a URL: redis://[user[:password]@]host[:port][/db],
 * rediss:// for TLS, unix:///path/to/redis.sock. Throws on anything else.
 */
export function redisOptions(url: string, opts: ConnectOptions = {}): RedisOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    const port = portOutOfRange(url);
    throw new Error(
      port !== undefined
        ? `port ${port} is out of range: a port is 1 to 65535`
        : "not a URL; expected redis://host:port, rediss://host:port or unix:///path" +
          // Said where it may be the cause: an unencoded "/" in a password cuts the URL.
          (url.includes("@") ? ` (${PASSWORD_ENCODING})` : ""),
    );
  }
  const protocol = parsed.protocol;
  if (protocol !== "redis:" && protocol !== "rediss:" && protocol !== "unix:") {
    throw new Error(`unsupported scheme "${protocol}"; expected redis://, rediss:// or unix://`);
  }
  const options: RedisOptions = {
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    autoResendUnfulfilledCommands: false,
    connectTimeout: opts.timeout ?? DEFAULT_TIMEOUT,
    disconnectTimeout: 500,
    keepAlive: 10_000,
    ...(opts.name ? { connectionName: opts.name } : {}),
  };
  let password: string, username: string;
  try {
    password = decodeURIComponent(parsed.password);
    username = decodeURIComponent(parsed.username);
  } catch {
    throw new Error(
      `the user or password holds a % that starts no escape (${PASSWORD_ENCODING})`,
    );
  }
  if (password) {
    options.password = password;
    if (username) options.username = username;
  }
  if (protocol === "unix:") {
    options.path = decodeURIComponent(parsed.pathname);
    return options;
  }
  options.host = parsed.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  options.port = parsed.port ? Number(parsed.port) : 6379;
  const db = parsed.pathname.replace(/^\//, "");
  if (db) {
    if (!/^\d+$/.test(db)) throw new Error(`the path must be a database number, got "/${db}"`);
    options.db = Number(db);
  }
  if (protocol === "rediss:") options.tls = {};
  return options;
}

/** Capped exponential backoff with jitter: about 50ms, 100ms, ... up to 2s. */
export function reconnectDelay(attempt: number, random = Math.random): number {
  const ceiling = Math.min(MAX_DELAY, 50 * 2 ** Math.min(attempt, 10));
  return Math.round(ceiling / 2 + random() * ceiling / 2);
}

/** Errors a retry cannot fix: bad credentials, missing permissions, a db number out of range. */
function isFatal(error: Error): boolean {
  return /\b(WRONGPASS|NOAUTH|NOPERM)\b|invalid password|DB index/i.test(error.message);
}

/**
 * Connects and PINGs within `opts.timeout`, or throws RedisUnreachableError
 * (naming the URL with its password masked) after closing everything it
 * opened. Bad credentials fail at once rather than at the timeout.
 *
 * @example
 * ```ts ignore
 * import { connectRedis } from "../../mod.ts";
 *
 * const redis = await connectRedis("redis://127.0.0.1:6379/0", { name: "millrace:demo" });
 * await redis.set("greeting", "hello");
 * await redis.quit();
 * ```
 */
export async function connectRedis(url: string, opts: ConnectOptions = {}): Promise<Redis> {
  const masked = maskUrl(url);
  // A server's reply may repeat what it was sent (AUTH and its password), as a parser's error the URL.
  const hide = (text: string) => maskSecretsOf(text, url);
  const timeout = opts.timeout ?? DEFAULT_TIMEOUT;
  let options: RedisOptions;
  try {
    options = redisOptions(url, opts);
  } catch (error) {
    throw new RedisUnreachableError(masked, hide((error as Error).message), "bad Redis URL");
  }
  let up = false;
  // Loaded here, not at the top: ioredis (through `debug`) reads the
  // environment when it loads, and mod.ts must import without permissions.
  const { Redis } = await import("ioredis");
  const redis = new Redis({
    ...options,
    lazyConnect: true,
    // Until the first PING answers, connectRedis retries by itself (so it can stop at the deadline).
    retryStrategy: (times) => up ? reconnectDelay(times - 1) : null,
  });
  let lastError: Error | undefined;
  redis.on("error", (error: Error) => {
    lastError = error;
    if (up) opts.onEvent?.("error", { url: masked, error: hide(error.message) });
  });

  const deadline = Date.now() + timeout;
  try {
    await retry(async () => {
      try {
        await beforeDeadline(redis.connect().then(() => redis.ping()), deadline);
      } catch (error) {
        // The error event said more than the rejection ("Connection is closed.", or the deadline).
        throw lastError ??= error as Error;
      }
      if (lastError && isFatal(lastError)) throw lastError;
    }, {
      maxAttempts: Infinity,
      baseMs: 50,
      maxMs: MAX_DELAY,
      isRetryable: (error) => !isFatal(error as Error) && Date.now() < deadline,
      sleep: (ms) => sleep(Math.min(ms, deadline - Date.now())),
    });
  } catch (error) {
    await closeRedis(redis);
    const message = (error as Error | undefined)?.message;
    const why = message === TIMED_OUT
      ? `no answer within ${timeout}ms`
      : message ?? "connection closed";
    const refused = message !== undefined && isFatal(error as Error);
    throw new RedisUnreachableError(masked, hide(why), refused ? "Redis refused us at" : undefined);
  }

  up = true;
  redis.on("close", () => {
    rejectInFlight(redis);
    opts.onEvent?.("dropped", { url: masked });
  });
  redis.on(
    "reconnecting",
    (delay: number) => opts.onEvent?.("reconnecting", { url: masked, delay }),
  );
  if (!opts.blocking) {
    watchReplies(redis, {
      replyTimeout: opts.replyTimeout ?? REPLY_TIMEOUT,
      stallAfter: opts.stallAfter ?? STALL_AFTER,
      onStall: (waited) => opts.onEvent?.("unresponsive", { url: masked, waited }),
      onAnswer: () => opts.onEvent?.("ready", { url: masked }),
    });
  }
  redis.on("ready", () => opts.onEvent?.("ready", { url: masked }));
  return redis;
}

const TIMED_OUT = "timed out";

interface ReplyWatch {
  replyTimeout: number;
  stallAfter: number;
  onStall(waited: number): void;
  onAnswer(): void;
}

/**
 * Watches the socket of the moment for a server that owes a reply and sends
 * nothing: after `stallAfter` it calls `onStall` (once, until the server
 * answers: then `onAnswer`, or until the connection is ready again), after
 * `replyTimeout` it destroys that socket so ioredis reconnects.
 *
 * Not ioredis's own `socketTimeout`: in 5.11.1 its timer belongs to the
 * client, not to a socket. A socket that closes with a command unanswered
 * leaves the timer running; when it fires it destroys `this.stream`, by then
 * the new socket, failing commands that were fine (redis/ioredis#2147), and
 * until then no timer watches the new socket. Here each socket gets its own
 * listeners, and a socket that closed is never acted on.
 *
 * The wait is measured from the first tick that sees a reply owed, so it is
 * up to one tick short.
 */
function watchReplies(redis: Redis, watch: ReplyWatch): void {
  const owed = () => (redis as unknown as { commandQueue: { length: number } }).commandQueue.length;
  let stream: Redis["stream"] | undefined;
  let owedSince: number | undefined;
  let stalled = false;
  const follow = (socket: Redis["stream"]) => {
    stream = socket;
    owedSince = undefined;
    socket.on("data", () => {
      if (socket !== stream) return;
      owedSince = undefined;
      // While reconnecting, the "ready" to come says it instead.
      if (stalled && redis.status === "ready") {
        stalled = false;
        watch.onAnswer();
      }
    });
    socket.once("close", () => {
      if (socket === stream) stream = undefined;
    });
  };
  follow(redis.stream);
  redis.on("connect", () => follow(redis.stream));
  // A reconnect is a reply of sorts: its "ready" says the server is back.
  redis.on("ready", () => stalled = false);
  const tick = Math.max(10, Math.min(1000, watch.stallAfter / 5, watch.replyTimeout / 5));
  const timer = setInterval(() => {
    if (!stream || owed() === 0) {
      owedSince = undefined;
      return;
    }
    owedSince ??= Date.now();
    const waited = Date.now() - owedSince;
    if (waited >= watch.replyTimeout) {
      const socket = stream;
      stream = undefined;
      socket.destroy(new Error(`no reply from Redis within ${watch.replyTimeout}ms`));
    } else if (waited >= watch.stallAfter && !stalled) {
      stalled = true;
      watch.onStall(waited);
    }
  }, tick);
  redis.once("end", () => clearInterval(timer));
}

/** `promise`, or a rejection at `deadline`; the timer never outlives the call. */
function beforeDeadline<T>(promise: Promise<T>, deadline: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(TIMED_OUT)), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/**
 * ioredis, told not to resend, keeps the commands that were in flight when
 * the connection dropped in `prevCommandQueue` and forgets them on the next
 * ready: their promises would never settle. Reject them instead. The "close"
 * event is emitted after ioredis has moved them there.
 */
function rejectInFlight(redis: Redis): void {
  const queue = (redis as unknown as { prevCommandQueue?: InFlight }).prevCommandQueue;
  if (!queue) return;
  for (let item = queue.shift(); item; item = queue.shift()) {
    item.command.reject(new RedisConnectionLostError(item.command.name.toUpperCase()));
  }
}

interface InFlight {
  shift(): { command: { name: string; reject(error: Error): void } } | undefined;
}

/**
 * Closes a connection whatever state it is in, and resolves once it is
 * closed: waits for replies to commands already sent when connected;
 * between reconnect tries, closes at the next try, failing what was queued
 * with "Connection is closed.".
 */
export async function closeRedis(redis: Redis): Promise<void> {
  while (redis.status !== "end") {
    if (redis.status === "wait") {
      redis.disconnect();
      continue;
    }
    const ended = new Promise<void>((resolve) => redis.once("end", () => resolve()));
    if (redis.status === "reconnecting") {
      // disconnect() now would leave the client stuck between tries; act at the next try.
      await new Promise<void>((resolve) => {
        const next = () => {
          redis.off("end", next);
          resolve();
        };
        redis.once("connecting", next);
        redis.once("end", next);
      });
      continue;
    }
    if (redis.status === "ready") {
      await redis.quit().catch(() => redis.disconnect());
    } else {
      redis.disconnect();
    }
    await ended;
  }
}
