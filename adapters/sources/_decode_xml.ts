/**
 * Turns the bytes of an XML document into a string. Feed parsers take
 * strings, and a Latin-1 feed read as UTF-8 turns every accent into U+FFFD,
 * so the encoding has to be settled before parsing, from the bytes.
 *
 * Order of evidence: a `charset` forced by the flow file, a byte-order
 * mark, the XML declaration's `encoding`, the charset of an HTTP
 * Content-Type, then UTF-8. The declaration wins over HTTP because feeds
 * are often served as text/xml with a wrong or default charset while the
 * file itself states what it is. UTF-8 reached by anything but a BOM or a
 * forced charset is checked strictly: bytes that are not UTF-8 and hold no
 * UTF-8 sequence at all are an 8-bit feed that did not say so, read as
 * windows-1252 (a superset of Latin-1, as browsers do); bytes that mix both
 * keep UTF-8 with U+FFFD for the bad ones. Either way a warning says so:
 * the text may be wrong and nothing else would tell.
 */
export interface DecodedXml {
  text: string;
  /** The encoding the text was read in (a WHATWG name, e.g. "utf-8", "windows-1252"). */
  encoding: string;
  /** Why the text may not be what the publisher meant; one line, no name. */
  warning?: string;
}

export interface DecodeOptions {
  /** Charset of an HTTP Content-Type, used when the document states none. */
  httpCharset?: string;
  /** Charset given in the flow file: wins over everything the bytes say. */
  forced?: string;
}

/** The document as text, decoded as the module comment says. */
export function decodeXml(bytes: Uint8Array, httpCharset?: string): string {
  return decodeXmlWithEvidence(bytes, { httpCharset }).text;
}

/** The document as text, with the encoding used and a warning when it is a guess. */
export function decodeXmlWithEvidence(bytes: Uint8Array, options: DecodeOptions = {}): DecodedXml {
  if (options.forced !== undefined) {
    const forced = decoderFor(options.forced);
    // The schema checks the label; this guards a caller that did not.
    if (!forced) throw new Error(`charset ${JSON.stringify(options.forced)} is not known`);
    return { text: stripBom(forced.decode(bytes)), encoding: forced.encoding };
  }
  const bom = bomEncoding(bytes);
  if (bom) return { text: stripBom(new TextDecoder(bom).decode(bytes)), encoding: bom };
  const notes: string[] = [];
  for (
    const [label, from] of [
      [declaredEncoding(bytes), "the XML declaration"],
      [options.httpCharset, "the HTTP Content-Type"],
    ] as const
  ) {
    if (label === undefined) continue;
    const decoder = decoderFor(label);
    if (!decoder) {
      notes.push(`${from} names an unknown encoding ${JSON.stringify(label)}`);
      continue;
    }
    if (decoder.encoding !== "utf-8") {
      // A template's hard-coded single-byte label over bytes that are UTF-8 (with some
      // non-ASCII): read as labelled, every accent became two characters (CafÃ©), unsaid.
      // Such bytes are almost never meant as Latin-1; the html source reads them so too.
      const utf8 = SINGLE_BYTE.test(decoder.encoding) ? strictUtf8(bytes) : undefined;
      if (utf8 !== undefined) {
        notes.push(
          `${from} says ${decoder.encoding} but the bytes are UTF-8: read as UTF-8`,
        );
        return { text: stripBom(utf8), encoding: "utf-8", ...warn(notes) };
      }
      return { text: stripBom(decoder.decode(bytes)), encoding: decoder.encoding, ...warn(notes) };
    }
    return utf8OrGuess(bytes, notes, `declared UTF-8 by ${from}`);
  }
  return utf8OrGuess(bytes, notes, "no encoding declared");
}

/** WHATWG names of single-byte encodings, which UTF-8 bytes beyond ASCII are not meant as. */
const SINGLE_BYTE = /^(windows-125\d|iso-8859-\d+|koi8-[ru]|macintosh|ibm866|x-mac-cyrillic)$/;

/** The bytes as UTF-8 when they are strictly UTF-8 and not all ASCII; else undefined. */
function strictUtf8(bytes: Uint8Array): string | undefined {
  if (!bytes.some((b) => b > 0x7f)) return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** The charset parameter of a Content-Type header, if any. */
export function charsetOf(contentType: string | null | undefined): string | undefined {
  const m = /;\s*charset\s*=\s*["']?([^"';\s]+)/i.exec(contentType ?? "");
  return m?.[1];
}

/** True when TextDecoder knows `label` (for a flow file's `charset:`). */
export function isKnownCharset(label: string): boolean {
  return decoderFor(label) !== undefined;
}

function utf8OrGuess(bytes: Uint8Array, notes: string[], why: string): DecodedXml {
  try {
    return {
      text: stripBom(new TextDecoder("utf-8", { fatal: true }).decode(bytes)),
      encoding: "utf-8",
      ...warn(notes),
    };
  } catch {
    // not UTF-8: see below which reading is more likely
  }
  const lossy = new TextDecoder("utf-8").decode(bytes);
  let bad = 0;
  let good = 0;
  for (const c of lossy) {
    if (c === "\uFFFD") bad++;
    else if (c.charCodeAt(0) > 0x7f) good++;
  }
  if (good === 0) {
    notes.push(
      `${why} and not valid UTF-8: read as windows-1252 (Latin-1); set charset: to choose`,
    );
    return {
      text: stripBom(new TextDecoder("windows-1252").decode(bytes)),
      encoding: "windows-1252",
      ...warn(notes),
    };
  }
  notes.push(
    `${why}, but ${bad} byte sequence(s) are not UTF-8 and became U+FFFD; set charset: to choose`,
  );
  return { text: stripBom(lossy), encoding: "utf-8", ...warn(notes) };
}

function warn(notes: string[]): { warning?: string } {
  return notes.length ? { warning: notes.join("; ") } : {};
}

// TextDecoder drops a BOM that matches its encoding; this drops any other left over.
function stripBom(text: string): string {
  return text.replace(/^\uFEFF/, "");
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
    return undefined; // An unknown label: the caller says so and tries the next evidence.
  }
}
