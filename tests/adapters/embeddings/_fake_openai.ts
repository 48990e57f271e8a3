/**
 * An OpenAI-compatible embeddings server that lives in the test process:
 * POST /v1/embeddings over real HTTP on 127.0.0.1, answering
 * `{object: "list", data: [{object: "embedding", index, embedding}], model, usage}`.
 * It checks each request's shape the way the real API does (a model, a
 * non-empty list of non-empty strings, `encoding_format`, a positive
 * `dimensions`, the bearer key) and answers a bad one with OpenAI's 400
 * error shape, so a client that sends what OpenAI would refuse fails here too.
 *
 * Vectors are deterministic in (model, dimensions, text), so a test can tell
 * a cached vector from a fresh one of another model. `intercept` lets a test
 * answer any hit itself: a 429, a 500, a slow reply.
 */
import { HashingEmbedder } from "../../../adapters/embeddings/hashing_embedder.ts";

export interface Hit {
  /** 1-based order of arrival. */
  n: number;
  model: string;
  input: string[];
  dimensions?: number;
  encodingFormat?: string;
  authorization: string | null;
}

export interface FakeOpenAIOptions {
  /** Length of vectors when a request names no dimensions; default 8. */
  nativeDimensions?: number;
  /** Answer with native vectors even when `dimensions` is sent (a server that ignores it). */
  ignoreDimensions?: boolean;
  /** Required bearer key; a request without it gets OpenAI's 401, which quotes the key. */
  apiKey?: string;
  /** Ms every answer waits; default 0. */
  latency?: number;
  /** Tokens of one input for `usage`; default chars/4. */
  countTokens?: (text: string) => number;
  /** Answers a hit instead of the default when it returns a Response. */
  intercept?: (hit: Hit, request: Request) => Response | undefined | Promise<Response | undefined>;
}

export interface FakeOpenAI {
  /** Base URL up to /v1. */
  readonly url: string;
  readonly hits: Hit[];
  close(): Promise<void>;
}

/** OpenAI's error body. */
export function apiError(
  status: number,
  message: string,
  headers: Record<string, string> = {},
  code: string | null = null,
): Response {
  return Response.json(
    { error: { message, type: code ?? "invalid_request_error", param: null, code } },
    { status, headers },
  );
}

/** Aborted when a fake server closes, so replies it holds back end with it. */
const closing = new Set<AbortController>();

/**
 * Waits `ms`, or until the server closes (so a reply held past a client's
 * timeout does not hold up the test's end). `request.signal` is not used:
 * Deno.serve also aborts it after every successful reply, and warns so.
 */
export function hold(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    const signals = [...closing].map((c) => c.signal);
    function done() {
      clearTimeout(timer);
      for (const s of signals) s.removeEventListener("abort", done);
      resolve();
    }
    for (const s of signals) s.addEventListener("abort", done, { once: true });
  });
}

/** The vector the fake answers for a text, as a test computes it independently. */
export function fakeVector(model: string, dimensions: number, text: string): number[] {
  return new HashingEmbedder({ dimensions }).embedOne(`${model}\n${text}`);
}

export function startFakeOpenAI(opts: FakeOpenAIOptions = {}): FakeOpenAI {
  const hits: Hit[] = [];
  const stop = new AbortController();
  closing.add(stop);
  const count = opts.countTokens ?? ((t: string) => Math.ceil(t.length / 4));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const path = new URL(request.url).pathname;
      if (request.method !== "POST" || path !== "/v1/embeddings") {
        return apiError(404, `Unknown request URL: ${request.method} ${path}`);
      }
      const authorization = request.headers.get("authorization");
      let body: Record<string, unknown>;
      try {
        body = await request.json();
      } catch {
        return apiError(400, "We could not parse the JSON body of your request.");
      }
      const hit: Hit = {
        n: hits.length + 1,
        model: String(body.model),
        input: body.input as string[],
        dimensions: body.dimensions as number | undefined,
        encodingFormat: body.encoding_format as string | undefined,
        authorization,
      };
      hits.push(hit);
      if (opts.apiKey !== undefined && authorization !== `Bearer ${opts.apiKey}`) {
        const given = authorization?.replace(/^Bearer /, "") ?? "";
        return apiError(401, `Incorrect API key provided: ${given}.`);
      }
      const invalid = checkBody(body);
      if (invalid) return apiError(400, invalid);
      const intercepted = await opts.intercept?.(hit, request);
      if (intercepted) return intercepted;
      if (opts.latency) await hold(opts.latency);
      const dims = opts.ignoreDimensions || hit.dimensions === undefined
        ? (opts.nativeDimensions ?? 8)
        : hit.dimensions;
      const tokens = hit.input.reduce((n, t) => n + count(t), 0);
      const data = hit.input.map((text, index) => ({
        object: "embedding",
        index,
        embedding: fakeVector(hit.model, dims, text),
      }));
      // Out of order on purpose: clients must place vectors by `index`.
      data.reverse();
      return Response.json({
        object: "list",
        data,
        model: hit.model,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/v1`,
    hits,
    close: () => {
      stop.abort();
      closing.delete(stop);
      return server.shutdown();
    },
  };
}

/** Runs `fn` with a fresh fake server, shut down afterwards whatever happens. */
export async function withFakeOpenAI<T>(
  opts: FakeOpenAIOptions,
  fn: (server: FakeOpenAI) => Promise<T>,
): Promise<T> {
  const server = startFakeOpenAI(opts);
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}

function checkBody(body: Record<string, unknown>): string | undefined {
  if (typeof body.model !== "string" || body.model === "") {
    return "you must provide a model parameter";
  }
  const input = body.input;
  if (!Array.isArray(input) || input.length === 0 || input.length > 2048) {
    return "'$.input' is invalid: expected 1 to 2048 strings";
  }
  const bad = input.findIndex((t) => typeof t !== "string" || t === "");
  if (bad >= 0) return `'$.input[${bad}]' is invalid: expected a non-empty string`;
  if (
    body.encoding_format !== undefined &&
    !["float", "base64"].includes(String(body.encoding_format))
  ) {
    return "'encoding_format' must be float or base64";
  }
  const dims = body.dimensions;
  if (dims !== undefined && !(Number.isInteger(dims) && (dims as number) > 0)) {
    return "'dimensions' must be a positive integer";
  }
  return undefined;
}
