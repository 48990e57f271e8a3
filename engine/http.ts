/**
 * The seam between sources that read the web and the one HTTP client of a
 * flow run. One client per run, handed to every source through BuildEnv,
 * so what must hold across sources (per-host limits, robots.txt, which
 * addresses may be reached) is kept in one place: in memory, or in Redis
 * for a durable flow, where every process shares it.
 */

import type { Redis } from "ioredis";
import type { Logger } from "./log.ts";
import type { FlowKeys } from "./redis/keys.ts";

/** One GET: its deadline, its size cap, its headers and what cancels it. */
export interface HttpRequest {
  /** Milliseconds for the whole exchange, body included. */
  timeout?: number;
  /** Largest body accepted, after content decoding; a larger one fails the request. */
  maxBytes?: number;
  /** Headers to send besides the User-Agent (e.g. If-None-Match). */
  headers?: HeadersInit;
  /** Aborts the request (shutdown); its reason is rethrown as is. */
  signal?: AbortSignal;
  /**
   * Ms this request may wait out its host's Retry-After pause; a host
   * paused for longer fails it at once, unsent (the polite client's
   * HostPausedError), so a polled source can leave the page for its next
   * poll instead of holding the poll. Default: the whole pause.
   */
  maxWait?: number;
}

/** A response whose body was read whole, within the size cap. */
export interface HttpResponse {
  /** The final URL, after redirects: the right base for relative links. */
  url: string;
  /** 2xx, or 304 when the request was conditional and nothing changed. */
  status: number;
  /** The response headers. */
  headers: Headers;
  /** The whole body; empty for 304. */
  body: Uint8Array;
}

/** The polite HTTP client sources fetch through: per-host limits, robots.txt, address checks. */
export interface HttpClient {
  /** GETs `url`; throws for statuses other than 2xx/304, deadlines, caps and refusals. */
  get(url: string, request?: HttpRequest): Promise<HttpResponse>;
  /** The per-host limits this client keeps, when it keeps any (a source may pace itself by them). */
  readonly perHost?: PerHost;
}

/** How hard one host may be hit: the flow's `http.perHost`, or a source's own. */
export interface PerHost {
  /** Requests per second to one host, sustained. */
  rps: number;
  /** Requests that may go at once after a quiet spell (the bucket's depth). */
  burst: number;
  /** Requests to one host in flight at once, in one process. */
  concurrency: number;
}

/** The flow's `http:` block, parsed (schema and defaults in adapters/http/http_config.ts). */
export interface HttpOptions {
  /** Sent as User-Agent, and matched against robots.txt groups by its first word. */
  userAgent: string;
  /** Internal hosts or address ranges requests may reach all the same. */
  allow: string[];
  /** Per-host limits every source gets unless it sets its own. */
  perHost: PerHost;
  /** Whether robots.txt is read and obeyed (allow/deny and Crawl-delay). */
  robots: boolean;
}

/**
 * The one HTTP state of a run (buckets, robots.txt cache), and a client on
 * it per source: a source with its own `perHost` gets a client that applies
 * it, on the same per-host buckets.
 */
export interface HttpPool {
  /** A client using the flow's perHost, or `perHost` fields over it. */
  client(perHost?: Partial<PerHost>): HttpClient;
}

/**
 * Told of a request: its host and status ("error": no reply came;
 * "robots": robots.txt refused it, so it was never sent).
 */
export type CountRequest = (host: string, status: number | "error" | "robots") => void;

/** What a runtime hands the factory: where shared state lives and where to say things. */
export interface HttpContext {
  /** The flow name, for log lines. */
  readonly flow: string;
  /**
   * Told of each request the pool makes of its own accord (a host's
   * robots.txt), which no source's client sees; the metrics count them.
   */
  readonly count?: CountRequest;
  /** Where the pool's warnings go. */
  readonly log: Logger;
  /** A durable flow's Redis and keys: the per-host buckets then live there, shared. */
  readonly durable?: {
    readonly redis: Redis;
    readonly keys: FlowKeys;
  };
}

/**
 * Makes a run's HttpPool from the flow's `http:` block (absent: every
 * default). Registered on the Registry (builtins.ts registers the polite
 * client), because engine/ builds `env` but may not import adapters/.
 */
export type HttpFactory = (options: HttpOptions | undefined, ctx: HttpContext) => HttpPool;
