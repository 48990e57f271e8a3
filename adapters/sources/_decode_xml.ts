/**
 * Turns the bytes of an XML document into a string. Feed parsers take
 * strings, and a Latin-1 feed read as UTF-8 turns every accent into U+FFFD,
 * so the encoding has to be settled before parsing, from the bytes.
 *
 * Order of evidence: a byte-order mark, then the XML declaration's
 * `encoding`, then the charset of an HTTP Content-Type, then UTF-8. The
 * declaration wins over HTTP because feeds are often served as text/xml with
 * a wrong or default charset while the file itself states what it is.
 */
export function decodeXml(bytes: Uint8Array, httpCharset?: string): string {
  const label = bomEncoding(bytes) ?? declaredEncoding(bytes) ?? httpCharset ?? "utf-8";
  const decoder = decoderFor(label) ?? new TextDecoder("utf-8");
  // TextDecoder drops a BOM that matches its encoding; this drops any other left over.
  return decoder.decode(bytes).replace(/^\uFEFF/, "");
}

/** The charset parameter of a Content-Type header, if any. */
export function charsetOf(contentType: string | null | undefined): string | undefined {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? "");
  return m?.[1];
}

function bomEncoding(b: Uint8Array): string | undefined {
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return "utf-8";
  if (b[0] === 0xff && b[1] === 0xfe) return "utf-16le";
  if (b[0] === 0xfe && b[1] === 0xff) return "utf-16be";
  // No BOM, but "<?" in UTF-16 (XML spec, appendix F).
  if (b[0] === 0x3c && b[1] === 0x00 && b[2] === 0x3f && b[3] === 0x00) return "utf-16le";
  if (b[0] === 0x00 && b[1] === 0x3c && b[2] === 0x00 && b[3] === 0x3f) return "utf-16be";
  return undefined;
}

/** The `encoding` of `<?xml ... ?>`, read as ASCII from the first bytes. */
function declaredEncoding(b: Uint8Array): string | undefined {
  const head = new TextDecoder("latin1").decode(b.subarray(0, 512));
  const decl = /^(?:\uFEFF|\u00EF\u00BB\u00BF)?\s*<\?xml\s[^>]*?\?>/.exec(head);
  if (!decl) return undefined;
  const m = /\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']/.exec(decl[0]);
  const label = m?.[1];
  // A document that got this far as 8-bit bytes cannot be UTF-16 whatever it says.
  return label && !/^utf-?16/i.test(label) ? label : undefined;
}

function decoderFor(label: string): TextDecoder | undefined {
  try {
    return new TextDecoder(label.trim().toLowerCase());
  } catch {
    return undefined; // An unknown label: fall back to UTF-8 rather than fail the feed.
  }
}
