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
 * A redirect is not followed: an API (Qdrant, an OpenAI-compatible one)
 * answers where it is, and fetch kept a custom key header (Qdrant's
 * `api-key`) on the way to another address, or dropped the
 * `Authorization` one, whose "no API key" reply then said nothing of the
 * redirect. It fails with a RedirectError, which ends the run: every
 * request would be sent there alike.
 */
export function cappedFetch(maxBytes: number, limit = "maxReplyBytes"): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, { ...init, redirect: "manual" });
    if (response.status >= 300 && response.status < 400 && response.headers.has("location")) {
      await response.body?.cancel();
      throw new RedirectError(response.status, response.headers.get("location")!);
    }
    const declared = Number(response.headers.get("content-length") ?? NaN);
    const tooLarge = () => new ReplyTooLargeError(maxBytes, limit);
    if (declared > maxBytes) {
      await response.body?.cancel();
      throw tooLarge();
    }
    if (!response.body) return response;
    const parts: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += chunk.length;
      if (size > maxBytes) throw tooLarge();
      parts.push(chunk);
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

/** An API answered with a redirect (see cappedFetch): the run ends, as the url must change. */
export class RedirectError extends Error implements RetryHint {
  readonly endsRun = true;
  readonly retryable = false;
  constructor(status: number, location: string) {
    super(
      `answered ${status}, redirecting to ${maskUrl(location)}: give that address itself; a ` +
        "redirect is not followed, so that the request and its key go nowhere else",
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
