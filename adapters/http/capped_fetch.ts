/**
 * A fetch whose response bodies are held to `maxBytes`: a larger
 * Content-Length fails before the body is read, and a body without one is
 * read no further than the cap. For the API clients that take a fetch (the
 * OpenAI SDK's chat and embeddings): a reply larger than any answer to
 * what was asked is broken or hostile, and must not fill memory. `limit`
 * names what sets the cap, for the error.
 */
export function cappedFetch(maxBytes: number, limit = "maxReplyBytes"): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
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

/** A reply over a capped fetch's limit: the same request would bring it again. */
export class ReplyTooLargeError extends Error {
  constructor(maxBytes: number, limit: string) {
    super(`reply is larger than the limit of ${maxBytes} bytes (${limit})`);
    this.name = "ReplyTooLargeError";
  }
}
