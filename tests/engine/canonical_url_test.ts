import assert from "node:assert/strict";
import { canonicalUrl } from "../../engine/canonical_url.ts";

const cases: [string, string | undefined][] = [
  // scheme and host lower-cased, default port dropped, fragment dropped
  ["HTTP://Example.COM:80/Path#section-2", "http://example.com/Path"],
  ["https://example.com:443/", "https://example.com/"],
  ["https://example.com:8443/a", "https://example.com:8443/a"],
  // the root keeps its slash, every other path loses a trailing one
  ["https://example.com", "https://example.com/"],
  ["https://example.com/news/", "https://example.com/news"],
  ["https://example.com/news//", "https://example.com/news"],
  // tracking parameters go, the rest are sorted by name (stable for repeats)
  [
    "http://www.washingtontimes.com/news/2016/dec/21/detroit-judge-delays-trial-for-chicago-palestinian/?utm_source=RSS_Feed&utm_medium=RSS",
    "http://www.washingtontimes.com/news/2016/dec/21/detroit-judge-delays-trial-for-chicago-palestinian",
  ],
  ["https://example.com/a?b=2&a=1&fbclid=x&gclid=y", "https://example.com/a?a=1&b=2"],
  [
    "https://example.com/a?tag=z&mc_cid=1&mc_eid=2&ref=hn&tag=a",
    "https://example.com/a?tag=z&tag=a",
  ],
  ["https://example.com/a?UTM_Campaign=x&id=3", "https://example.com/a?id=3"],
  ["https://example.com/a?", "https://example.com/a"],
  ["https://example.com/a?&&x=1&", "https://example.com/a?x=1"],
  // unreserved escapes decoded, the others kept with upper-case hex
  ["https://example.com/%7Euser/%41bc/%2f?q=%20x", "https://example.com/~user/Abc/%2F?q=%20x"],
  // dot segments resolved, www and path case kept
  ["https://www.Example.com/a/./b/../C", "https://www.example.com/a/C"],
  // international names: host punycoded, path and query percent-encoded
  ["https://Bücher.example/ä?x=ü", "https://xn--bcher-kva.example/%C3%A4?x=%C3%BC"],
  ["  https://example.com/a  ", "https://example.com/a"],
  // not absolute http(s) URLs
  ["notaurl", undefined],
  ["/news/technology-38400224", undefined],
  ["//example.com/a", undefined],
  ["example.com/a", undefined],
  ["ftp://example.com/file", undefined],
  ["mailto:someone@example.com", undefined],
  ["https://exa mple.com/", undefined],
  ["http://", undefined],
  ["", undefined],
];

Deno.test("canonical URLs: one spelling per address", () => {
  for (const [input, expected] of cases) {
    assert.equal(canonicalUrl(input), expected, `canonicalUrl(${JSON.stringify(input)})`);
  }
});

Deno.test("canonical URLs are a fixed point: canonicalising again changes nothing", () => {
  for (const [input] of cases) {
    const once = canonicalUrl(input);
    if (once !== undefined) assert.equal(canonicalUrl(once), once, input);
  }
});

Deno.test("variants of one article share a canonical URL, different articles do not", () => {
  const variants = [
    "http://www.bbc.co.uk/news/technology-38400224",
    "HTTP://WWW.BBC.CO.UK:80/news/technology-38400224/",
    "http://www.bbc.co.uk/news/technology-38400224?utm_source=twitter#comments",
    "http://www.bbc.co.uk/news/technology-38400224?fbclid=IwAR0x",
  ];
  assert.equal(new Set(variants.map(canonicalUrl)).size, 1);
  assert.notEqual(
    canonicalUrl("http://www.bbc.co.uk/news/technology-38400224"),
    canonicalUrl("http://www.bbc.co.uk/news/technology-38400225"),
  );
  assert.notEqual(
    canonicalUrl("https://example.com/a?id=1"),
    canonicalUrl("https://example.com/a?id=2"),
  );
});
