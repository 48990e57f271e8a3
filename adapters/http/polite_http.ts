import type {
  CountRequest,
  HttpClient,
  HttpContext,
  HttpOptions,
  HttpPool,
  HttpRequest,
  HttpResponse,
  PerHost,
} from "../../engine/http.ts";
import type { Logger } from "../../engine/log.ts";
import { maskUrl } from "../../engine/mask_url.ts";
import { untilAborted } from "../../engine/until_aborted.ts";
import { Aimd } from "./aimd.ts";
import { intervalOf } from "./gcra.ts";
import { DEFAULT_HTTP } from "./http_config.ts";
import {
  DEFAULT_TIMEOUT_MS,
  fetchLimited,
  type FetchLimits,
  HttpStatusError,
} from "./http_fetch.ts";
import { type HostBuckets, MemoryHostBuckets } from "./host_buckets.ts";
import { HostSlots } from "./host_slots.ts";
import { type Clock, realClock } from "./rate_limiter.ts";
import { RedisHostBuckets } from "./redis_host_buckets.ts";
import { ROBOTS_MAX_BYTES, ROBOTS_TIMEOUT_MS, RobotsRules } from "./robots_rules.ts";

/** Longest Retry-After obeyed: a host asking for a day's pause gets an hour, then is asked again. */
export const MAX_PAUSE_MS = 60 * 60_000;

/**
 * A request robots.txt does not let us make. `ruled` when its rules refuse
 * the URL, so no request was made and none will be while they stand (an
 * html source then neither counts it fetched nor spends maxPages on it);
 * else robots.txt could not be read, which sources report like any failed GET.
 * `redirected` when the URL refused is a redirect's target: the request
 * that redirected there was made.
 */
export class RobotsDisallowedError extends Error {
  constructor(
    message: string,
    readonly url: string,
    readonly ruled = false,
    readonly redirected = false,
  ) {
    super(message);
    this.name = "RobotsDisallowedError";
  }
}

/**
 * A request not sent because its host asked for a pause (Retry-After)
 * longer than the request's `maxWait`: nothing went out. Asked before the
 * request takes a connection slot or a turn, so a source giving up on a
 * paused host's pages spends none of them; a request already waiting for its
 * turn when the pause came gives up that one turn.
 */
export class HostPausedError extends Error {
  constructor(message: string, readonly host: string, readonly pausedMs: number) {
    super(message);
    this.name = "HostPausedError";
  }
}

/** What PoliteHttp runs on; tests pass a fake clock and a recording fetch. */
export interface PoliteDeps {
  /** Where a host's pause and an unreadable robots.txt are said, once each. */
  log?: Logger;
  /** The flow's name, first word of what is logged. */
  flow?: string;
  buckets?: HostBuckets;
  clock?: Clock;
  fetch?: (url: string, limits: FetchLimits) => Promise<HttpResponse>;
  /** Told of each robots.txt read, which no source's client sees (HttpContext.count). */
  count?: CountRequest;
}

/**
 * The run's HTTP client when the flow reads the web: every GET goes
 *
 * 1. past the host's robots.txt (read once per TTL, see robots_rules.ts):
 *    a disallowed URL fails with a RobotsDisallowedError, a Crawl-delay
 *    lowers the host's rate;
 * 2. through a free slot of the host's concurrency (per process);
 * 3. through the host's bucket (rps, burst; in Redis for a durable flow, so
 *    every process shares it), waiting its turn;
 * 4. to fetchLimited, with the flow's user agent and `allow`.
 *
 * A redirect's target goes past its own host's robots.txt and waits for its
 * host's turn in that host's bucket before it is followed, so a redirect
 * neither reaches a path robots.txt refuses nor skips another host's rate.
 * It runs within the first host's concurrency slot (taking the target's
 * too could deadlock two requests redirecting into each other's hosts).
 * As for the first hop, the wait for the turn is not counted against the
 * request's timeout, which counts the servers' time. robots.txt reads take
 * their host's turn but no slot, for the same reason.
 *
 * A 429 or 503 halves the host's rate (AIMD, see aimd.ts) and its
 * Retry-After pauses the host's bucket; the error still reaches the source,
 * whose poll retries later. Requests never retry here.
 */
export class PoliteHttp implements HttpPool {
  readonly #options: HttpOptions;
  readonly #buckets: HostBuckets;
  readonly #clock: Clock;
  readonly #fetch: (url: string, limits: FetchLimits) => Promise<HttpResponse>;
  readonly #slots = new HostSlots();
  readonly #aimd = new Aimd();
  readonly #robots: RobotsRules;
  readonly #log?: Logger;
  readonly #flow: string;

  constructor(options: HttpOptions, deps: PoliteDeps = {}) {
    this.#options = options;
    this.#clock = deps.clock ?? realClock;
    this.#buckets = deps.buckets ?? processBuckets(this.#clock);
    this.#fetch = deps.fetch ?? fetchLimited;
    this.#log = deps.log;
    this.#flow = deps.flow ?? "http";
    this.#robots = new RobotsRules(
      options.userAgent,
      (url, signal) =>
        counted(
          new URL(url).host,
          this.#send(
            url,
            new URL(url).host,
            {
              timeout: ROBOTS_TIMEOUT_MS,
              maxBytes: ROBOTS_MAX_BYTES,
              signal,
            },
            options.perHost,
            { slot: false, robots: false },
          ),
          deps.count,
        ),
      this.#clock,
      (origin, why) => this.#log?.warn(`${this.#flow}: ${origin}/robots.txt: ${why}`),
    );
  }

  client(perHost: Partial<PerHost> = {}): HttpClient {
    const limits = { ...this.#options.perHost };
    for (const [k, v] of Object.entries(perHost) as [keyof PerHost, number | undefined][]) {
      if (v !== undefined) limits[k] = v;
    }
    return { get: (url, request) => this.#get(url, request ?? {}, limits), perHost: limits };
  }

  async #get(url: string, request: HttpRequest, limits: PerHost): Promise<HttpResponse> {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch { /* fetchLimited says what is wrong with it */ }
    if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
      return await this.#fetch(url, { ...request, allow: this.#options.allow });
    }
    const crawlDelay = await this.#robotsWithin(parsed, request, url);
    // Asked before a slot or a turn is taken: a request given up would have spent them.
    await this.#pausedWithin(parsed.host, request.maxWait, url);
    return await this.#send(url, parsed.host, request, limits, { crawlDelay });
  }

  /**
   * #robotsAllow within the request's own timeout (or, for a redirect's
   * target, what it has left: `left`): robots.txt is read with a deadline of
   * its own (ROBOTS_TIMEOUT_MS), which a source with a shorter `timeout`
   * must not wait out.
   */
  async #robotsWithin(
    url: URL,
    request: HttpRequest,
    shown: string,
    left?: number,
  ): Promise<number | undefined> {
    if (!this.#options.robots) return undefined;
    const timeout = Math.max(0, Math.round(left ?? request.timeout ?? DEFAULT_TIMEOUT_MS));
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeout);
    try {
      // Only this request's wait ends at its timeout: the read itself, which
      // later requests share, goes on to its own deadline and is kept.
      return await untilAborted(this.#robotsAllow(url, request.signal, shown), deadline.signal);
    } catch (error) {
      if (!deadline.signal.aborted || request.signal?.aborted) throw error;
      throw new Error(
        `GET ${maskUrl(shown)}: robots.txt of ${url.origin} not read within ${timeout} ms ` +
          (left === undefined
            ? "(the request's timeout)"
            : "(what the request's timeout had left)"),
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** Fails with a RobotsDisallowedError past robots.txt; else the host's Crawl-delay, if any. */
  async #robotsAllow(
    url: URL,
    signal: AbortSignal | undefined,
    shown: string,
  ): Promise<number | undefined> {
    if (!this.#options.robots) return undefined;
    const verdict = await this.#robots.check(url, signal);
    if (!verdict.allowed) {
      throw new RobotsDisallowedError(
        `GET ${maskUrl(shown)}: robots.txt of ${url.origin} ${verdict.why}`,
        maskUrl(url.href),
        verdict.ruled === true,
      );
    }
    return verdict.crawlDelay;
  }

  async #send(
    url: string,
    host: string,
    request: HttpRequest,
    limits: PerHost,
    /**
     * `slot: false` takes no concurrency slot; `robots: false` (a robots.txt
     * read) follows redirects without checking their targets' robots.txt,
     * which would wait on this very read.
     */
    opts: { crawlDelay?: number; slot?: boolean; robots?: boolean } = {},
  ): Promise<HttpResponse> {
    const release = opts.slot === false
      ? () => {}
      : await this.#slots.acquire(host, limits.concurrency, request.signal);
    try {
      await this.#turn(host, limits, opts.crawlDelay, request.signal, request.maxWait, url);
      const headers = new Headers(request.headers);
      if (!headers.has("user-agent")) headers.set("user-agent", this.#options.userAgent);
      const beforeRedirect = async (next: URL, signal: AbortSignal, left: number) => {
        const shown = `${next.href} (redirected from ${maskUrl(url)})`;
        // Within what the request's timeout has left, and counted against it, as the hops
        // are; the turn is not (the servers' time is what the timeout counts: http_fetch.ts).
        let delay;
        const started = performance.now();
        try {
          delay = opts.robots === false
            ? undefined
            : await this.#robotsWithin(next, { ...request, signal }, shown, left);
        } catch (e) {
          if (!(e instanceof RobotsDisallowedError)) throw e;
          throw new RobotsDisallowedError(e.message, e.url, e.ruled, true);
        }
        const spent = performance.now() - started;
        await this.#pausedWithin(next.host, request.maxWait, next.href);
        await this.#turn(next.host, limits, delay, signal, request.maxWait, next.href);
        return spent;
      };
      try {
        const res = await this.#fetch(url, {
          ...request,
          headers,
          allow: this.#options.allow,
          beforeRedirect,
        });
        this.#aimd.succeeded(host);
        return res;
      } catch (e) {
        if (e instanceof HttpStatusError && (e.status === 429 || e.status === 503)) {
          // The host that answered: a redirect's target, not the first URL's host (which a
          // 429 from a feed proxy paused, while the proxy was asked again at once).
          const at = e.host ?? host;
          this.#aimd.slowDown(at, this.#clock.now());
          if (e.retryAfterMs !== undefined && e.retryAfterMs > 0) {
            const pause = Math.min(e.retryAfterMs, MAX_PAUSE_MS);
            this.#log?.warn(
              `${this.#flow}: ${at} answered ${e.status}: no request to it for ${
                Math.ceil(pause / 1000)
              } s, as its Retry-After asks`,
            );
            // At the pace the cut just set (no burst): the pace this request had would keep
            // the bucket's old depth, and the next request (burst - 1) intervals past `pause`.
            const after = this.#pace(at, limits, opts.crawlDelay);
            // The host's own error matters more than a failed pause (Redis away).
            await this.#buckets.pause(at, pause, after.interval, after.burst).catch(() => {});
          }
        }
        throw e;
      }
    } finally {
      release();
    }
  }

  /** Throws a HostPausedError when `host` is paused for longer than `maxWait` (when given). */
  async #pausedWithin(host: string, maxWait: number | undefined, url: string): Promise<void> {
    if (maxWait === undefined) return;
    this.#refusePause(host, await this.#buckets.pausedFor(host).catch(() => 0), maxWait, url);
  }

  #refusePause(host: string, paused: number, maxWait: number | undefined, url: string): void {
    if (maxWait === undefined || paused <= maxWait) return;
    throw new HostPausedError(
      `GET ${maskUrl(url)}: not sent: ${host} asked for a pause (Retry-After) of ${
        Math.ceil(paused / 1000)
      } s more, longer than this request waits (${Math.ceil(maxWait / 1000)} s)`,
      host,
      paused,
    );
  }

  /** Waits for the host's turn in its bucket, and past any Retry-After pause; returns its pace. */
  async #turn(
    host: string,
    limits: PerHost,
    crawlDelay: number | undefined,
    signal: AbortSignal | undefined,
    maxWait?: number,
    url = host,
  ): Promise<{ interval: number; burst: number }> {
    const pace = this.#pace(host, limits, crawlDelay);
    // A pause set before a take is in the wait it returns (the bucket holds it): only one that
    // comes while this request sleeps, told to any flow or process, is asked for after (a
    // request that had its turn went 0.27 s into the pause a review's 429 asked for).
    let wait = await this.#buckets.take(host, pace.interval, pace.burst);
    // A pause that came after #pausedWithin asked (while this request waited for a slot).
    if (maxWait !== undefined && wait > maxWait) {
      this.#refusePause(host, await this.#buckets.pausedFor(host).catch(() => 0), maxWait, url);
    }
    while (wait > 0) {
      await this.#clock.sleep(wait, signal);
      signal?.throwIfAborted();
      const paused = await this.#buckets.pausedFor(host).catch(() => 0);
      if (paused <= 0) break;
      this.#refusePause(host, paused, maxWait, url);
      wait = Math.max(paused, await this.#buckets.take(host, pace.interval, pace.burst));
    }
    signal?.throwIfAborted();
    return pace;
  }

  /**
   * Spacing and burst of the host's next request: the configured rate, cut
   * by AIMD and by Crawl-delay. A host slowed either way gets no bursts.
   */
  #pace(host: string, limits: PerHost, crawlDelay?: number): { interval: number; burst: number } {
    const factor = this.#aimd.factor(host);
    let rps = limits.rps * factor;
    let burst = factor < 1 ? 1 : limits.burst;
    if (crawlDelay !== undefined) {
      rps = Math.min(rps, 1 / crawlDelay);
      burst = 1;
    }
    return { interval: intervalOf(rps), burst };
  }
}

/**
 * The factory builtins.ts registers: per-host buckets in Redis when the
 * flow is durable (shared by every process), in this process otherwise.
 */
export function politeHttp(
  options: HttpOptions | undefined,
  ctx: HttpContext,
  /** Default the real one; a seam so a test of several processes need not wait their turns. */
  clock?: Clock,
): HttpPool {
  return new PoliteHttp(options ?? DEFAULT_HTTP, {
    log: ctx.log,
    flow: ctx.flow,
    buckets: ctx.durable ? new RedisHostBuckets(ctx.durable.redis, ctx.durable.keys) : undefined,
    clock,
    count: ctx.count,
  });
}

/**
 * The per-host buckets of every memory flow of this process that runs on
 * `clock` (the real one: all of them), so two flows fetching from one host
 * share its pace and its Retry-After pauses: each had buckets of its own, and
 * a review's two flows at rps 2 sent 4 requests in one second.
 */
function processBuckets(clock: Clock): MemoryHostBuckets {
  let buckets = PROCESS_BUCKETS.get(clock);
  if (!buckets) PROCESS_BUCKETS.set(clock, buckets = new MemoryHostBuckets(clock));
  return buckets;
}

const PROCESS_BUCKETS = new WeakMap<Clock, MemoryHostBuckets>();

/** `response`, its status told to `count` (a failure's status, or "error" when none came). */
async function counted(
  host: string,
  response: Promise<HttpResponse>,
  count: CountRequest | undefined,
): Promise<HttpResponse> {
  try {
    const res = await response;
    count?.(host, res.status);
    return res;
  } catch (error) {
    count?.(host, error instanceof HttpStatusError ? error.status : "error");
    throw error;
  }
}
