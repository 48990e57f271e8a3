import type { RetryHint } from "../../engine/errors.ts";
import { maskUrl } from "../../engine/mask_url.ts";

/**
 * A fetch whose response bodies are held to `maxBytes`: a larger
 * Content-Length fails before the body is read, and a body without one is
 * read no further than the cap. For the API clients that take a fetch (the
 * OpenAI SDK's chat and embeddings): a reply larger than any answer to
 * what was asked is broken or hostile, and must not fill memory. `limit`
 * names what sets the cap, for the error.
 *
 * A redirect is followed only within the address asked (same origin) and
 * only as a 307 or 308, which keep the method and the body (a gateway's
 * `/v1/…` to `/api/v1/…`). Any other fails with a RedirectError, which ends
 * the run: an API answers where it is, and fetch kept a custom key header
 * (Qdrant's `api-key`) on the way to another address, or dropped the
 * `Authorization` one, whose "no API key" reply then said nothing of the
 * redirect, and a 301 turned a POST into a GET.
 *
 * A failure while the body is read (the connection dropped mid-reply) is
 * marked `midReply`: the server had the request, and answered.
 */
export function cappedFetch(maxBytes: number, limit = "maxReplyBytes"): typeof fetch {
  return async (input, init) => {
    const response = await followed(input, init);
    const declared = Number(response.headers.get("content-length") ?? NaN);
    const tooLarge = () => new ReplyTooLargeError(maxBytes, limit);
    if (declared > maxBytes) {
      await response.body?.cancel();
      throw tooLarge();
    }
    if (!response.body) return response;
    const parts: Uint8Array[] = [];
    let size = 0;
    try {
      for await (const chunk of response.body) {
        size += chunk.length;
        if (size > maxBytes) throw tooLarge();
        parts.push(chunk);
      }
    } catch (error) {
      if (error instanceof Error && !(error instanceof ReplyTooLargeError)) {
        Object.assign(error, { midReply: true });
      }
      throw error;
    }
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const part of parts) bytes.set(part, (at += part.length) - part.length);
    return new Response(bytes, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

/** Redirects a request may follow within its own address before one is refused. */
const MAX_HOPS = 5;

/** The response to `input`, through the redirects cappedFetch follows; a RedirectError for another. */
async function followed(
  input: RequestInfo | URL,
  init: RequestInit | undefined,
): Promise<Response> {
  // A Request carries its own body and method: it is sent as it is, and not redirected.
  let url = input instanceof Request ? undefined : String(input);
  for (let hops = 0;; hops++) {
    const response = await fetch(url ?? input, { ...init, redirect: "manual" });
    const location = response.headers.get("location");
    if (response.status < 300 || response.status >= 400 || location === null) return response;
    await response.body?.cancel();
    const from = url ?? (input as Request).url;
    const to = URL.parse(location, from);
    const again = url !== undefined && to !== null && to.origin === new URL(from).origin &&
      (response.status === 307 || response.status === 308) && hops < MAX_HOPS &&
      !(init?.body instanceof ReadableStream);
    if (!again) throw new RedirectError(response.status, from, to?.href ?? location);
    url = to.href;
  }
}

/** An API answered with a redirect cappedFetch does not follow: the run ends, as the url must change. */
export class RedirectError extends Error implements RetryHint {
  readonly endsRun = true;
  readonly retryable = false;
  constructor(status: number, from: string, to: string) {
    super(
      `${maskUrl(from)} answered ${status}, redirecting to ${maskUrl(to)}: point the url at ` +
        "where the API answers; a redirect to another address, or one that changes the " +
        "request, is not followed, so that the request and its key go nowhere else",
    );
    this.name = "RedirectError";
  }
}

/** A reply over a capped fetch's limit: the same request would bring it again. */
export class ReplyTooLargeError extends Error {
  constructor(maxBytes: number, limit: string) {
    super(`reply is larger than the limit of ${maxBytes} bytes (${limit})`);
    this.name = "ReplyTooLargeError";
  }
}
