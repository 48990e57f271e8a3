/**
 * One bounded HTTP GET for the sources that read the web (feeds, JSON APIs).
 * A scraper talks to servers it does not control, so every request has a
 * deadline and a size cap that hold for the whole body, not only the headers,
 * and reaches only public addresses unless the flow allows an internal one:
 * every hop, redirects included, is checked on the address it connects to
 * (checked_request.ts says how).
 */

import { maskedError, maskUrl, maskUrlsIn, urlSecrets } from "../../engine/mask_url.ts";
import { retryAfterMs } from "../../engine/retry.ts";
import { AddressRule, RefusedAddressError } from "./address_guard.ts";
import { ACCEPT_ENCODING, BodyTooLargeError, readCappedBody } from "./capped_body.ts";
import { checkedGet, WireTooLargeError } from "./checked_request.ts";

export { RefusedAddressError } from "./address_guard.ts";

/** What millrace says it is; some APIs (reddit) refuse requests without one. */
export const USER_AGENT = "millrace/0.1 (stream ingestion; +https://github.com/millrace)";

/** Default deadline of one request, headers and body together. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Default cap on a response body, after content decoding. */
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;

/** Redirects followed before giving up. */
export const MAX_REDIRECTS = 5;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Request headers that must not follow a redirect to another origin (as fetch() does). */
const CREDENTIAL_HEADERS = ["authorization", "cookie", "proxy-authorization"];

export interface FetchLimits {
  /** Milliseconds for the whole exchange, body included. Default 10 s. */
  timeout?: number;
  /** Largest body accepted; a larger one aborts the request. Default 10 MiB. */
  maxBytes?: number;
  /** Extra request headers; a User-Agent is added unless one is given. */
  headers?: HeadersInit;
  /** Aborts the request (shutdown); its reason is rethrown as is. */
  signal?: AbortSignal;
  /**
   * Internal hosts or address ranges this request may reach all the same
   * (`127.0.0.1`, `10.0.0.0/8`, `intranet.example`); the flow's `http.allow`.
   * Without it, private, loopback, link-local, CGNAT, multicast, reserved
   * and unique-local addresses (and IPv6 forms of them) are refused.
   */
  allow?: readonly string[];
  /**
   * Called with each redirect's target before it is followed (the polite
   * client checks its robots.txt there and waits for its host's turn), and
   * the ms the request's timeout has left. It returns the ms of them it
   * spent on servers' time (a robots.txt read), which count against the
   * timeout as the hops do; its waits for a turn do not. What it throws
   * ends the request as it is, not wrapped.
   */
  beforeRedirect?: (next: URL, signal: AbortSignal, leftMs: number) => Promise<number | void>;
}

export interface Fetched {
  /** The final URL, after redirects: the right base for relative links. */
  url: string;
  /** 2xx, or 304 when the request was conditional and nothing changed. */
  status: number;
  headers: Headers;
  /** The body; empty for 304. */
  body: Uint8Array;
}

/**
 * A response with a status other than 2xx or 304. Carries the status and the
 * server's Retry-After (in ms) so a caller can back off as asked.
 */
export class HttpStatusError extends Error {
  constructor(
    message: string,
    readonly url: string,
    readonly status: number,
    readonly retryAfterMs?: number,
    /** The host that answered: after redirects, the last hop's, not the first URL's. */
    readonly host?: string,
  ) {
    super(message);
    this.name = "HttpStatusError";
  }
}

/**
 * GETs `url` within a deadline and a size cap, and returns the whole body,
 * decoded from gzip, deflate or brotli. Follows up to MAX_REDIRECTS
 * redirects itself, checking every hop's address. Throws an Error that
 * names the URL (masked) when the deadline passes, the body is too large,
 * the connection fails, a redirect loops or goes on too long; a
 * RefusedAddressError (its message saying how to allow the address) for an
 * internal address the limits do not allow; an HttpStatusError for
 * statuses other than 2xx/304; the signal's reason when `signal` aborts.
 *
 * A body that is gzip bytes without a Content-Encoding header is returned
 * as it came (a source that wanted text says so: adapters/sources/_gzip_body.ts).
 *
 * @example
 * ```ts ignore
 * const res = await fetchLimited("https://example.com/feed.xml", { timeout: 5_000 });
 * if (res.status === 304) console.log("unchanged");
 * ```
 */
export async function fetchLimited(url: string, limits: FetchLimits = {}): Promise<Fetched> {
  const timeout = limits.timeout ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  const shown = maskUrl(url);
  let current = httpUrl(url, shown);
  let rule: AddressRule;
  try {
    rule = new AddressRule(limits.allow);
  } catch (err) {
    throw new Error(`GET ${shown}: ${(err as Error).message}`);
  }
  limits.signal?.throwIfAborted();

  const deadline = new AbortController();
  // The server's time, not the wait for a redirect's turn (beforeRedirect): the clock stops
  // while a hop waits, as it has not started while the first one did. Counted, a host's
  // Crawl-delay as long as the timeout failed every redirect within it as "no complete
  // response", the server having answered in milliseconds.
  let left = timeout;
  let since = performance.now();
  let timer = setTimeout(() => deadline.abort(), left);
  const signal = limits.signal
    ? AbortSignal.any([limits.signal, deadline.signal])
    : deadline.signal;
  const headers = new Headers(limits.headers);
  if (!headers.has("user-agent")) headers.set("user-agent", USER_AGENT);
  if (!headers.has("accept-encoding")) headers.set("accept-encoding", ACCEPT_ENCODING);
  const chain = [withoutHash(current)];
  const secrets = new Set(urlSecrets(url));
  /** Text about this fetch with every URL in it masked, and every form of its secrets. */
  const hide = (text: string) => scrub(maskUrlsIn(text), secrets);

  try {
    for (;;) {
      const { request, response } = await checkedGet(
        current,
        requestHeaders(current, headers),
        rule,
        signal,
        maxBytes,
      );
      try {
        const status = response.statusCode ?? 0;
        const resHeaders = headersOf(response.rawHeaders);
        const location = resHeaders.get("location");
        if (REDIRECT_STATUSES.has(status) && location !== null) {
          const next = redirectTarget(location, current, chain);
          if (next.origin !== current.origin) {
            for (const h of CREDENTIAL_HEADERS) headers.delete(h);
          } else if (!next.username && !next.password) {
            // Within the origin a URL's user:password goes on, as a relative Location keeps
            // it: a site's own absolute redirect (http to https aside, a trailing slash)
            // would otherwise get a 401. Another origin never gets it (curl does the same).
            next.username = current.username;
            next.password = current.password;
          }
          for (const s of urlSecrets(next.href)) secrets.add(s);
          chain.push(withoutHash(next));
          // Done with this hop: its socket is not held while the next one waits its turn.
          request.destroy();
          if (limits.beforeRedirect) {
            clearTimeout(timer);
            left -= performance.now() - since;
            try {
              left -= await limits.beforeRedirect(next, limits.signal ?? NEVER, left) ?? 0;
            } catch (error) {
              throw new CallerError(error);
            }
            since = performance.now();
            timer = setTimeout(() => deadline.abort(), Math.max(0, left));
          }
          current = next;
          continue;
        }
        if (status === 304) {
          return { url: publicUrl(current), status, headers: resHeaders, body: new Uint8Array() };
        }
        if (status < 200 || status > 299) {
          const text = response.statusMessage ? " " + response.statusMessage : "";
          const at = chain.length > 1 ? ` (at ${maskUrl(current.href)})` : "";
          // A status line may repeat what the request sent (its query, its Basic credentials).
          throw new HttpStatusError(
            hide(`GET ${shown}: HTTP ${status}${text}${at}`),
            shown,
            status,
            retryAfterMs(resHeaders, Number.POSITIVE_INFINITY),
            current.host,
          );
        }
        const body = await readCappedBody(response, maxBytes, signal);
        return { url: publicUrl(current), status, headers: resHeaders, body };
      } finally {
        request.destroy();
      }
    }
  } catch (err) {
    if (limits.signal?.aborted) throw limits.signal.reason;
    if (deadline.signal.aborted) {
      throw new Error(`GET ${shown}: no complete response within ${timeout} ms`);
    }
    if (err instanceof HttpStatusError) throw err;
    if (err instanceof CallerError) throw err.error;
    const message = hide(`GET ${shown}: ${(err as Error).message ?? err}`);
    if (err instanceof RefusedAddressError) {
      // A hop the caller never wrote: say so, before the refusal says how to allow it.
      const hop = chain.length > 1 ? `redirected to ${maskUrl(current.href)}, ` : "";
      throw new RefusedAddressError(
        hide(`GET ${shown}: ${hop}${(err as Error).message}`),
        err.host,
        err.address,
        chain.length > 1,
      );
    }
    if (err instanceof BodyTooLargeError || err instanceof WireTooLargeError) {
      // Marked, so a caller can tell a reply too large from a host that did not answer.
      throw Object.assign(new Error(message), { tooLarge: true });
    }
    if (err instanceof RedirectError) throw new Error(message);
    throw new Error(message, { cause: maskedError(err, hide) });
  } finally {
    clearTimeout(timer);
  }
}

/** A redirect that cannot be followed: a loop, too many, a bad Location. */
class RedirectError extends Error {}

/** A signal that never aborts: a beforeRedirect's wait with no caller's signal. */
const NEVER = new AbortController().signal;

/** What the caller's beforeRedirect threw: passed on as it is. */
class CallerError extends Error {
  constructor(readonly error: unknown) {
    super("beforeRedirect failed");
  }
}

function httpUrl(url: string, shown: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`GET ${shown}: not a valid URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new Error(`GET ${shown}: only http and https URLs can be fetched`);
  }
  return parsed;
}

/** Where a redirect leads; throws for a loop, the redirect past MAX_REDIRECTS, or a bad Location. */
function redirectTarget(location: string, from: URL, chain: string[]): URL {
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    throw new RedirectError(
      `redirected by ${maskUrl(from.href)} to ${
        JSON.stringify(maskUrl(location))
      }, not a valid URL`,
    );
  }
  const path = () => [...chain, withoutHash(next)].map(maskUrl).join(" -> ");
  if (next.protocol !== "http:" && next.protocol !== "https:") {
    throw new RedirectError(`redirected to a URL that is not http(s): ${path()}`);
  }
  if (chain.includes(withoutHash(next))) throw new RedirectError(`redirect loop: ${path()}`);
  if (chain.length > MAX_REDIRECTS) {
    throw new RedirectError(`more than ${MAX_REDIRECTS} redirects: ${path()}`);
  }
  return next;
}

function withoutHash(url: URL): string {
  const u = new URL(url);
  u.hash = "";
  return u.href;
}

/** The URL a caller may show and resolve links against: no credentials, no fragment. */
function publicUrl(url: URL): string {
  const u = new URL(url);
  u.username = "";
  u.password = "";
  u.hash = "";
  return u.href;
}

/** The headers of one hop; a URL's user:password becomes Basic authorization. */
function requestHeaders(url: URL, headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => out[name] = value);
  if ((url.username || url.password) && !headers.has("authorization")) {
    const pair = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    const bytes = new TextEncoder().encode(pair);
    out["authorization"] = "Basic " + btoa(String.fromCharCode(...bytes));
  }
  return out;
}

/** A response's header lines as Headers; a line Headers refuses is left out. */
function headersOf(raw: string[]): Headers {
  const headers = new Headers();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      headers.append(raw[i], raw[i + 1]);
    } catch {
      // a name or value fetch() would not accept either: not for callers
    }
  }
  return headers;
}

/** The message with every form of the URLs' passwords replaced by `***`. */
function scrub(message: string, secrets: Set<string>): string {
  let out = message;
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) out = out.replaceAll(s, "***");
  return out;
}
