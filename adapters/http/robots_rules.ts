import robotsParser from "robots-parser";
import type { HttpResponse } from "../../engine/http.ts";
import { HttpStatusError } from "./http_fetch.ts";
import { RefusedAddressError } from "./address_guard.ts";
import type { Clock } from "./rate_limiter.ts";

/** Longest Crawl-delay obeyed, in seconds: one request an hour to a host that asks for less. */
export const MAX_CRAWL_DELAY_S = 3600;

/** A good robots.txt (or a 4xx: no rules) is trusted this long before it is read again. */
export const ROBOTS_TTL_MS = 60 * 60_000;
/** A robots.txt that could not be read (5xx, 429, unreachable) is tried again after this. */
export const ROBOTS_RETRY_MS = 60_000;
/** Largest robots.txt read; Google reads 500 KiB. A larger one counts as unreadable. */
export const ROBOTS_MAX_BYTES = 512 * 1024;
/** Deadline of a robots.txt request. */
export const ROBOTS_TIMEOUT_MS = 10_000;
/** Origins kept before expired entries are dropped, so a wide crawl stays bounded. */
const PRUNE_AT = 10_000;

/** What robots.txt says of one URL for our user agent. */
export type RobotsVerdict =
  | {
    allowed: true; /** Seconds between requests the host asks for, if any. */
    crawlDelay?: number;
  }
  | {
    allowed: false; /** Why, for the error: "disallows it", "could not be read (...)". */
    why: string;
    /** Its rules refuse the URL (not: it could not be read, which a later read may mend). */
    ruled?: true;
  };

/** What we use of robots-parser's result. */
interface Robot {
  isDisallowed(url: string, ua?: string): boolean | undefined;
  getCrawlDelay(ua?: string): number | undefined;
}

// The package's index.d.ts wraps its export in `declare module`, which hides
// the call signature from an ES import of this CommonJS module: say it here.
const parseRobots = robotsParser as unknown as (url: string, text: string) => Robot;

type Entry =
  | { until: number; robot?: Robot; pending?: undefined; failure?: undefined }
  | { until: number; failure: string; robot?: Robot; pending?: undefined }
  | { until: number; pending: Promise<void>; robot?: Robot; failure?: undefined };

/**
 * Each origin's robots.txt, read once and kept for ROBOTS_TTL_MS, the way
 * Google treats one:
 *
 * - 2xx: its rules, for the group of our user agent's name or else `*`;
 * - 4xx other than 429 (404 most often): there are no rules, all allowed;
 * - 5xx, 429, no answer, too large: the host is taken to disallow everything
 *   for ROBOTS_RETRY_MS (a host in trouble is the last one to crawl), unless
 *   an earlier copy was read, which then stays in force meanwhile.
 *
 * `fetch` sends the request; the polite client passes its own, so reading
 * robots.txt takes a turn of the host's bucket like any other request.
 */
export class RobotsRules {
  readonly #entries = new Map<string, Entry>();
  /** Our user agent's name: its first word, without version (`millrace` of `millrace/0.1 (...)`). */
  readonly agent: string;

  constructor(
    userAgent: string,
    private readonly fetch: (url: string, signal?: AbortSignal) => Promise<HttpResponse>,
    private readonly clock: Clock,
    /** Told when a robots.txt could not be read, with why (once per attempt). */
    private readonly onFailure?: (origin: string, why: string) => void,
  ) {
    this.agent = userAgent.trim().split(/[\s/]/)[0].toLowerCase();
  }

  /** What the robots.txt of `url`'s origin says of it; reads that robots.txt when due. */
  async check(url: URL, signal?: AbortSignal): Promise<RobotsVerdict> {
    const origin = url.origin;
    for (;;) {
      signal?.throwIfAborted();
      let entry = this.#entries.get(origin);
      if (!entry || (!entry.pending && entry.until <= this.clock.now())) {
        entry = this.#load(origin, entry?.robot, signal);
      }
      // Settled, or given up by the caller that started it: look again.
      if (entry.pending) {
        // Another request's read: this one may be stopped meanwhile (a read waits on the
        // host's bucket, which a Retry-After or Crawl-delay can hold for an hour).
        await untilSettledOrAborted(entry.pending, signal);
        continue;
      }
      return this.#verdict(entry, url);
    }
  }

  #verdict(entry: Entry, url: URL): RobotsVerdict {
    if (entry.failure && !entry.robot) return { allowed: false, why: entry.failure };
    if (!entry.robot) return { allowed: true };
    if (entry.robot.isDisallowed(escapesNormalized(url.href), this.agent)) {
      return { allowed: false, why: `disallows it for user agent "${this.agent}"`, ruled: true };
    }
    const delay = entry.robot.getCrawlDelay(this.agent);
    // Capped, so `Crawl-delay: 1e400` (Infinity) or a year still paces requests
    // rather than breaking the arithmetic (an infinite interval let everything through).
    return delay !== undefined && delay > 0
      ? { allowed: true, crawlDelay: Math.min(delay, MAX_CRAWL_DELAY_S) }
      : { allowed: true };
  }

  /** Starts reading `origin`'s robots.txt; the entry is pending until it settles. */
  #load(origin: string, earlier: Robot | undefined, signal?: AbortSignal): Entry {
    this.#prune();
    const robotsUrl = `${origin}/robots.txt`;
    const settle = (next: Entry | undefined) => {
      if (next) this.#entries.set(origin, next);
      else this.#entries.delete(origin);
    };
    // Deferred a tick so the pending entry is in place before anything settles it.
    const pending = Promise.resolve().then(async () => {
      try {
        const res = await this.fetch(robotsUrl, signal);
        const text = new TextDecoder().decode(res.body);
        const robot = parseRobots(robotsUrl, rulesNormalized(text));
        settle({ until: this.clock.now() + ROBOTS_TTL_MS, robot });
      } catch (e) {
        if (signal?.aborted) return settle(earlier ? { until: 0, robot: earlier } : undefined);
        const status = e instanceof HttpStatusError ? e.status : undefined;
        if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
          return settle({ until: this.clock.now() + ROBOTS_TTL_MS });
        }
        // The host itself is an address the flow may not reach: its pages are refused the
        // same way, and that refusal, saying how to allow the host, is the error to show.
        // Not a redirect's (to the same name on another port, say), which hides the rules.
        const refused = e instanceof RefusedAddressError;
        if (refused && !e.redirected) {
          return settle({ until: this.clock.now() + ROBOTS_RETRY_MS });
        }
        // A robots.txt redirected to an address the flow may not reach is unreadable like any
        // other, not absent: it was taken to allow everything, its earlier copy dropped.
        // No status: the host itself did not answer (refused, timed out), which is the news.
        const why = refused
          ? "it redirects to an address this flow may not reach"
          : status !== undefined
          ? `HTTP ${status}`
          : (e as { tooLarge?: unknown }).tooLarge === true
          ? `it is larger than the ${ROBOTS_MAX_BYTES} bytes a robots.txt is read up to`
          : `the host did not answer: ${(e as Error).message}`;
        this.onFailure?.(
          origin,
          `could not be read (${why})${earlier ? "; the last copy stays in force" : ""}`,
        );
        settle({
          until: this.clock.now() + ROBOTS_RETRY_MS,
          failure: `could not be read (${why}), so the host is taken to disallow ` +
            `everything for ${ROBOTS_RETRY_MS / 1000} s`,
          ...(earlier ? { robot: earlier } : {}),
        });
      }
    });
    const entry: Entry = { until: 0, pending, ...(earlier ? { robot: earlier } : {}) };
    this.#entries.set(origin, entry);
    return entry;
  }

  #prune(): void {
    if (this.#entries.size < PRUNE_AT) return;
    const now = this.clock.now();
    for (const [origin, entry] of this.#entries) {
      if (!entry.pending && entry.until <= now) this.#entries.delete(origin);
    }
  }
}

/**
 * A URL or rule path with its percent-escapes as RFC 9309 (2.2.2) compares
 * them: an unreserved character's decoded (`%7E` is `~`), any other's in
 * upper case. robots-parser compares them as written, so `Disallow:
 * /%7Ejoe/` let `/~joe/` through.
 */
export function escapesNormalized(s: string): string {
  if (!s.includes("%")) return s;
  return s.replace(/%([0-9a-fA-F]{2})/g, (escape, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : escape.toUpperCase();
  });
}

/** robots.txt with its Allow and Disallow paths' escapes normalized (escapesNormalized). */
function rulesNormalized(text: string): string {
  return text.includes("%")
    ? text.replace(
      /^([ \t]*(?:dis)?allow[ \t]*:)(.*)$/gim,
      (_, rule, path) => rule + escapesNormalized(path),
    )
    : text;
}

/** Waits for `promise` (its outcome ignored) or for `signal`, whichever comes first. */
function untilSettledOrAborted(promise: Promise<unknown>, signal?: AbortSignal): Promise<void> {
  if (!signal) return promise.then(() => {}, () => {});
  return new Promise((resolve) => {
    const done = () => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done, { once: true });
    promise.then(done, done);
  });
}
