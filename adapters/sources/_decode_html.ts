/**
 * Turns the bytes of an HTML page into a string. Readability and the DOM
 * take strings, and a page decoded with the wrong charset turns every accent
 * into mojibake (UTF-8 read as Latin-1: "Ã©") or U+FFFD (Latin-1 read as
 * UTF-8), which no later stage can undo.
 *
 * Order of evidence, first that holds wins:
 *
 * 1. A byte-order mark (UTF-8, UTF-16LE/BE): it is the bytes themselves, and
 *    the HTML standard puts it above everything else too.
 * 2. The bytes are valid UTF-8 and hold at least one non-ASCII sequence:
 *    UTF-8. Text in a legacy 8-bit charset almost never forms valid
 *    multi-byte UTF-8 by chance (it would take pairs like "Ã©" written on
 *    purpose), while templates that say `iso-8859-1` over UTF-8 content are
 *    common. So a strict UTF-8 check outranks what the page or server says.
 *    All-ASCII bytes prove nothing (ISO-2022-JP is 7-bit), so labels decide.
 *    Bytes mostly UTF-8 (more valid multi-byte sequences than invalid ones:
 *    a stray byte pasted into a UTF-8 page) in a page that names no charset
 *    or names UTF-8 are UTF-8 too, the invalid ones becoming U+FFFD as in a
 *    browser, counted in `replaced`: read as windows-1252, every accent of
 *    the page turned to mojibake. A page that names a legacy charset keeps
 *    it (its text is Latin-1, a theme's footer UTF-8).
 * 3. The charset of the HTTP Content-Type, then 4. the page's
 *    `<meta charset>` or `<meta http-equiv="Content-Type">`: header before
 *    meta as in the HTML standard, since the server knows how it sent the
 *    bytes. A label naming UTF-8 is skipped when step 2 found the bytes are
 *    not UTF-8 (a page that says utf-8 over Latin-1 bytes), and a UTF-16
 *    label is skipped without a BOM (8-bit bytes got this far).
 * 5. windows-1252, what browsers assume for an unlabelled Western page; it
 *    is also what the labels iso-8859-1, latin1 and us-ascii decode as.
 *
 * The meta is looked for in the first 32 KiB, not the standard's 1,024
 * bytes: real pages put it after kilobytes of scripts and attributes (the
 * BBC fixture at byte 8,283), and browsers switch when they meet it later.
 */

/** Bytes searched for a `<meta>` charset. */
const META_SCAN_BYTES = 32 * 1024;

/** How a page was decoded: the text, the encoding used and the evidence that chose it. */
export interface DecodedHtml {
  text: string;
  /** The WHATWG name of the encoding used, e.g. "utf-8", "windows-1252". */
  encoding: string;
  from: "bom" | "utf-8 check" | "http header" | "meta" | "default";
  /** Byte sequences that were not UTF-8 in a page read as mostly UTF-8, each now U+FFFD. */
  replaced?: number;
  /** Where the page said it was UTF-8 when its bytes were not (the label was passed over). */
  falseUtf8?: "http header" | "meta";
}

/**
 * Decodes an HTML page; `httpCharset` is the charset parameter of its
 * Content-Type, if it came over HTTP.
 *
 * @example
 * ```ts
 * import { decodeHtml } from "./_decode_html.ts";
 * const latin1 = new Uint8Array([0x3c, 0x70, 0x3e, 0x63, 0x61, 0x66, 0xe9]); // "<p>caf\xe9"
 * const page = decodeHtml(latin1, "iso-8859-1");
 * if (page.text !== "<p>café" || page.from !== "http header") throw new Error(page.text);
 * ```
 */
export function decodeHtml(bytes: Uint8Array, httpCharset?: string): DecodedHtml {
  const bom = bomEncoding(bytes);
  if (bom) return { text: decode(bom, bytes).replace(/^\uFEFF/, ""), encoding: bom, from: "bom" };
  const utf8 = strictUtf8(bytes);
  if (utf8 !== undefined && hasNonAscii(bytes)) {
    return { text: utf8, encoding: "utf-8", from: "utf-8 check" };
  }
  const candidates: ["http header" | "meta", string | undefined][] = [
    ["http header", httpCharset],
    ["meta", metaCharset(bytes)],
  ];
  // The first label there is; a page that names none, or names UTF-8, and is mostly UTF-8 is
  // read so. One labelled Latin-1 is Latin-1 whatever UTF-8 a theme's footer adds.
  const label = candidates.map(([, l]) => l === undefined ? undefined : encodingOf(l))
    .find((e) => e !== undefined && !e.startsWith("utf-16"));
  if (utf8 === undefined && (label === undefined || label === "utf-8")) {
    const lossy = mostlyUtf8(bytes);
    if (lossy) return { ...lossy, encoding: "utf-8", from: "utf-8 check" };
  }
  let falseUtf8: DecodedHtml["falseUtf8"];
  for (const [from, label] of candidates) {
    const encoding = label === undefined ? undefined : encodingOf(label);
    if (!encoding || encoding.startsWith("utf-16")) continue;
    if (encoding === "utf-8" && utf8 === undefined) {
      falseUtf8 ??= from;
      continue;
    }
    return { text: decode(encoding, bytes), encoding, from };
  }
  // Valid UTF-8 that is all ASCII and unlabelled: every ASCII-based charset reads it alike.
  if (utf8 !== undefined) return { text: utf8, encoding: "utf-8", from: "default" };
  return {
    text: decode("windows-1252", bytes),
    encoding: "windows-1252",
    from: "default",
    ...(falseUtf8 ? { falseUtf8 } : {}),
  };
}

/**
 * The bytes as UTF-8 with U+FFFD for what is not, when more of their
 * non-ASCII characters are valid UTF-8 than not; else undefined.
 */
function mostlyUtf8(bytes: Uint8Array): { text: string; replaced: number } | undefined {
  const text = new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes);
  let good = 0, bad = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0xfffd) bad++;
    else if (c > 0x7f && !(c >= 0xdc00 && c <= 0xdfff)) good++; // a pair counted once
  }
  return good > bad ? { text, replaced: bad } : undefined;
}

function bomEncoding(b: Uint8Array): string | undefined {
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return "utf-8";
  if (b[0] === 0xff && b[1] === 0xfe) return "utf-16le";
  if (b[0] === 0xfe && b[1] === 0xff) return "utf-16be";
  return undefined;
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The bytes as UTF-8, or undefined when they are not valid UTF-8. */
function strictUtf8(bytes: Uint8Array): string | undefined {
  try {
    return fatalUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

function hasNonAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] > 0x7f) return true;
  return false;
}

/**
 * The charset a `<meta>` in the page's head names, read as ASCII from its
 * first bytes with comments and scripts taken out, so a commented-out or
 * scripted `<meta charset>` does not count.
 */
export function metaCharset(bytes: Uint8Array): string | undefined {
  const head = new TextDecoder("windows-1252")
    .decode(bytes.subarray(0, META_SCAN_BYTES))
    .replace(/<!--[\s\S]*?(?:-->|$)/g, "")
    .replace(/<script\b[\s\S]*?(?:<\/script\s*>|$)/gi, "");
  for (const meta of head.matchAll(/<meta\b[^>]*>/gi)) {
    const tag = meta[0];
    const direct = /\bcharset\s*=\s*["']?\s*([^"'\s/>;]+)/i.exec(tag);
    if (direct) return direct[1];
  }
  return undefined;
}

/** The WHATWG encoding a label names, or undefined for a label TextDecoder does not know. */
function encodingOf(label: string): string | undefined {
  try {
    return new TextDecoder(label.trim().toLowerCase()).encoding;
  } catch {
    return undefined;
  }
}

function decode(encoding: string, bytes: Uint8Array): string {
  return new TextDecoder(encoding).decode(bytes);
}
