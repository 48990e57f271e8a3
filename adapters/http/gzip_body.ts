/**
 * A body that is gzip bytes although the server sent no Content-Encoding
 * (a `.gz` file served as is, a misconfigured proxy). fetchLimited returns
 * the bytes as they came: a sitemap `.xml.gz` is meant to arrive that way,
 * and only the caller knows whether it expected text. A caller that wanted
 * text and cannot parse the body asks `gzipWithoutEncoding` for the reason
 * to put in its error instead of a parser's complaint about byte 0x1f.
 */

/** Whether `bytes` start with the gzip magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * The explanation for a body that could not be read as text, when it is
 * gzip-compressed and `headers` carry no Content-Encoding; else undefined.
 *
 * @example
 * ```ts
 * import { gzipWithoutEncoding } from "./gzip_body.ts";
 * const why = gzipWithoutEncoding(new Uint8Array([0x1f, 0x8b, 8, 0]), new Headers());
 * if (!why?.startsWith("the body is gzip-compressed")) throw new Error(why);
 * ```
 */
export function gzipWithoutEncoding(body: Uint8Array, headers: Headers): string | undefined {
  if (!isGzip(body) || headers.has("content-encoding")) return undefined;
  const type = headers.get("content-type");
  return "the body is gzip-compressed but the server sent no Content-Encoding header" +
    (type ? ` (Content-Type: ${type})` : "") +
    ", so it was not decompressed; point the URL at the uncompressed document, " +
    "or have the server send Content-Encoding: gzip";
}
