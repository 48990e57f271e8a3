/**
 * The seam between sources that read the web and the one HTTP client of a
 * flow run. One client per run, handed to every source through BuildEnv,
 * so what must hold across sources (per-host limits, robots.txt, which
 * addresses may be reached) is kept in one place: in memory, or in Redis
 * for a durable flow, where every process shares it.
 */

/** One GET: its deadline, its size cap, its headers and what cancels it. */
export interface HttpRequest {
  /** Milliseconds for the whole exchange, body included. */
  timeout?: number;
  /** Largest body accepted, after content decoding; a larger one fails the request. */
  maxBytes?: number;
  headers?: HeadersInit;
  /** Aborts the request (shutdown); its reason is rethrown as is. */
  signal?: AbortSignal;
}

export interface HttpResponse {
  /** The final URL, after redirects: the right base for relative links. */
  url: string;
  /** 2xx, or 304 when the request was conditional and nothing changed. */
  status: number;
  headers: Headers;
  /** The whole body; empty for 304. */
  body: Uint8Array;
}

export interface HttpClient {
  /** GETs `url`; throws for statuses other than 2xx/304, deadlines, caps and refusals. */
  get(url: string, request?: HttpRequest): Promise<HttpResponse>;
}
