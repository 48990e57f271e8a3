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
