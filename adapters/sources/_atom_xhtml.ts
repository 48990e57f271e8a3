/** The markup of an Atom entry's `type="xhtml"` title and content (else summary), if any. */
export interface AtomXhtml {
  title?: string;
  body?: string;
}

/**
 * The xhtml parts of each Atom entry, in document order. rss-parser reads
 * xhtml through xml2js, which separates text from child elements and so
 * loses inline words ("The <code>Inhibit</code> call" comes back as "The
 * call"; an xhtml title is dropped whole, given as an object); slicing the
 * source keeps the text whole.
 */
export function atomXhtml(xml: string): AtomXhtml[] {
  return [...xml.matchAll(/<entry\b[^>]*>([\s\S]*?)<\/entry\s*>/g)].map(([, entry]) => ({
    title: xhtmlOf(entry, "title"),
    body: xhtmlOf(entry, "content") ?? xhtmlOf(entry, "summary"),
  }));
}

function xhtmlOf(entry: string, element: "content" | "summary" | "title"): string | undefined {
  const re = new RegExp(
    `<${element}\\b[^>]*\\btype\\s*=\\s*["']xhtml["'][^>]*>([\\s\\S]*?)<\\/${element}\\s*>`,
  );
  return re.exec(entry)?.[1];
}

/**
 * The base of each Atom entry, in document order: its `xml:base`, else the
 * feed's, resolved against the one above it (RFC 4287 §1.2, XML Base), and
 * `base` where neither says one. rss-parser drops xml:base, so relative
 * links resolved against the feed's own URL pointed elsewhere on the site.
 */
export function atomBases(xml: string, base: string | undefined): (string | undefined)[] {
  const feed = xmlBaseOf(/<feed\b[^>]*>/.exec(xml)?.[0], base);
  return [...xml.matchAll(/<entry\b[^>]*>/g)].map(([tag]) => xmlBaseOf(tag, feed));
}

/** The `xml:base` of a start tag resolved against `base`; `base` when it has none. */
function xmlBaseOf(tag: string | undefined, base: string | undefined): string | undefined {
  const m = tag === undefined ? null : /\sxml:base\s*=\s*(?:"([^"]*)"|'([^']*)')/.exec(tag);
  if (!m) return base;
  const value = (m[1] ?? m[2]).replace(
    /&(amp|lt|gt|quot|apos);/g,
    (_, e: string) => ({ amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" })[e]!,
  );
  try {
    const url = new URL(value, base);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : base;
  } catch {
    return base;
  }
}
