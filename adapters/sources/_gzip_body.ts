/**
 * A body that is still gzip-compressed: a server that compresses without
 * saying `Content-Encoding: gzip` (so nothing decompresses it), or a
 * `.gz` file given as a feed. Read as text it is noise, and the parser's
 * "not a feed" would send the user looking in the wrong place.
 */

/** What is wrong when the document starts with gzip's magic bytes 1f 8b; else undefined. */
export function gzipProblem(doc: Uint8Array | string): string | undefined {
  const gzip = typeof doc === "string"
    ? doc.charCodeAt(0) === 0x1f && (doc.charCodeAt(1) === 0x8b || doc.charCodeAt(1) === 0xfffd)
    : doc.length >= 2 && doc[0] === 0x1f && doc[1] === 0x8b;
  return gzip
    ? "the body is gzip-compressed (it starts with bytes 1f 8b) but nothing decompressed it: " +
      "the server sent no Content-Encoding: gzip header, or the file is a .gz; decompress it first"
    : undefined;
}
