/**
 * One bounded HTTP GET for the sources that read the web (feeds, JSON APIs).
 * A scraper talks to servers it does not control, so every request has a
 * deadline and a size cap that hold for the whole body, not only the headers.
 */

import { retryAfterMs } from "../../engine/retry.ts";

/** What millrace says it is; some APIs (reddit) refuse requests without one. */
export const USER_AGENT = "millrace/0.1 (stream ingestion; +https://github.com/millrace)";

/** Default deadline of one request, headers and body together. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Default cap on a response body, after content decoding. */
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;

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
   */
  allow?: readonly string[];
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
  ) {
    super(message);
    this.name = "HttpStatusError";
  }
}

/**
 * GETs `url` within a deadline and a size cap, and returns the whole body.
 * Throws an Error that names the URL when the deadline passes, the body is
 * too large, or the connection fails; an HttpStatusError for statuses other
 * than 2xx/304; the signal's reason when `signal` aborts.
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
  checkHttpUrl(url);
  limits.signal?.throwIfAborted();

  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeout);
  const signal = limits.signal
    ? AbortSignal.any([limits.signal, deadline.signal])
    : deadline.signal;
  const headers = new Headers(limits.headers);
  if (!headers.has("user-agent")) headers.set("user-agent", USER_AGENT);

  try {
    const res = await fetch(url, { headers, signal, redirect: "follow" });
    if (res.status === 304) {
      await res.body?.cancel();
      return { url: res.url || url, status: 304, headers: res.headers, body: new Uint8Array() };
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new HttpStatusError(
        `GET ${url}: HTTP ${res.status}${res.statusText ? " " + res.statusText : ""}`,
        url,
        res.status,
        retryAfterMs(res, Number.POSITIVE_INFINITY),
      );
    }
    const body = await readCapped(res, url, maxBytes);
    return { url: res.url || url, status: res.status, headers: res.headers, body };
  } catch (err) {
    if (limits.signal?.aborted) throw limits.signal.reason;
    if (deadline.signal.aborted) {
      throw new Error(`GET ${url}: no complete response within ${timeout} ms`);
    }
    if (err instanceof HttpStatusError || (err as Error).message?.startsWith(`GET ${url}:`)) {
      throw err;
    }
    throw new Error(`GET ${url}: ${(err as Error).message ?? err}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

function checkHttpUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`GET ${url}: not a valid URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new Error(`GET ${url}: only http and https URLs can be fetched`);
  }
}

/** Reads the body chunk by chunk and gives up as soon as it passes `maxBytes`. */
async function readCapped(res: Response, url: string, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = () =>
    new Error(`GET ${url}: response is larger than the limit of ${maxBytes} bytes`);
  const declared = Number(res.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel();
    throw tooLarge();
  }
  if (!res.body) return new Uint8Array();
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return concat(chunks, size);
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
