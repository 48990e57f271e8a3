import {
  baseUrlOf,
  domLoaded,
  type HtmlDocument,
  type HtmlElement,
  httpUrl,
  parseHtml,
} from "./_extract_article.ts";

/**
 * The links a list page points to: the `href` of each element `selector`
 * matches (an `<a>`, or the first `<a href>` inside it, so `h2.title` works
 * as well as `h2.title a`), resolved against the page's base URL, http(s)
 * only, without fragments, in document order, each once.
 *
 * The selector runs on the page's linkedom DOM (css-select, the engine
 * cheerio uses too), so the page is parsed once, by the same parser that
 * extracts articles, and no second HTML library is needed.
 *
 * With `sameSite`, a link is kept only when its host is the page's host,
 * a leading `www.` aside: a list page's links to other sites (ads, shares,
 * partners) are not its articles. Finer "site" notions (example.com and
 * blog.example.com) would need the public-suffix list; the host is the
 * rule that never follows a link it should not.
 */
export function followLinks(
  doc: HtmlDocument,
  selector: string,
  pageUrl: string,
  sameSite: boolean,
): string[] {
  const base = baseUrlOf(doc, pageUrl);
  const site = hostOf(pageUrl);
  const links = new Set<string>();
  for (const el of doc.querySelectorAll(selector)) {
    const href = hrefOf(el);
    if (href === undefined) continue;
    const url = httpUrl(href, base);
    if (url === undefined) continue;
    if (sameSite && hostOf(url) !== site) continue;
    links.add(url);
  }
  return [...links];
}

/**
 * Why `selector` cannot select anything, or undefined when it is a valid
 * CSS selector; tried on an empty page so a typo fails the flow at load.
 * Undefined too while linkedom is not loaded: a flow file's loader loads
 * it first (the html source's `prepare`), and a flow built in code is
 * checked when its source is (HtmlSource.check).
 */
export function selectorProblem(selector: string): string | undefined {
  if (!domLoaded()) return undefined;
  try {
    parseHtml("<p></p>").querySelectorAll(selector);
    return undefined;
  } catch (err) {
    const why = String((err as Error).message ?? err).trim().replace(/found$/, "found the end");
    return `not a valid CSS selector: ${JSON.stringify(selector)}: ${why}`;
  }
}

function hrefOf(el: HtmlElement): string | undefined {
  const own = el.getAttribute("href");
  if (own !== null) return own;
  return el.querySelector("a[href]")?.getAttribute("href") ?? undefined;
}

function hostOf(url: string): string {
  return (URL.parse(url)?.hostname ?? "").replace(/^www\./, "");
}
