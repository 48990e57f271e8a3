/**
 * The markup of each Atom entry's `type="xhtml"` content (else summary), in
 * document order. rss-parser reads xhtml content through xml2js, which
 * separates text from child elements and so loses inline words ("The
 * <code>Inhibit</code> call" comes back as "The  call"); slicing the source
 * keeps the text whole. Entries without xhtml content give undefined.
 */
export function atomXhtmlBodies(xml: string): (string | undefined)[] {
  const bodies: (string | undefined)[] = [];
  for (const entry of xml.matchAll(/<entry\b[^>]*>([\s\S]*?)<\/entry\s*>/g)) {
    bodies.push(xhtmlOf(entry[1], "content") ?? xhtmlOf(entry[1], "summary"));
  }
  return bodies;
}

/**
 * The markup of each Atom entry's `type="xhtml"` title, in document order
 * (rss-parser drops such a title: xml2js gives it as an object).
 */
export function atomXhtmlTitles(xml: string): (string | undefined)[] {
  return [...xml.matchAll(ENTRY)].map((entry) => xhtmlOf(entry[1], "title"));
}

const ENTRY = /<entry\b[^>]*>([\s\S]*?)<\/entry\s*>/g;

function xhtmlOf(entry: string, element: "content" | "summary" | "title"): string | undefined {
  const re = new RegExp(
    `<${element}\\b[^>]*\\btype\\s*=\\s*["']xhtml["'][^>]*>([\\s\\S]*?)<\\/${element}\\s*>`,
  );
  return re.exec(entry)?.[1];
}
