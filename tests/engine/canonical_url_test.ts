import assert from "node:assert/strict";
import { join } from "node:path";
import { mulberry32 } from "../../adapters/sources/_mulberry32.ts";
import { canonicalUrl, canonicalUrlByParse } from "../../engine/canonical_url.ts";
import { FIXTURES, fixtureTest } from "../_fixtures_dir.ts";

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

/** Every http(s) link in the fixture feeds and pages (../shared/fixtures). */
function fixtureUrls(): string[] {
  const urls = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const at = join(dir, entry.name);
      if (entry.isDirectory) walk(at);
      else {
        const text = Deno.readTextFileSync(at);
        for (const m of text.matchAll(/https?:\/\/[^\s"'<>\\]+/gi)) urls.add(m[0]);
      }
    }
  };
  walk(FIXTURES);
  return [...urls];
}

/** Asserts the shortcut and the parse agree on each url; returns how many came back as they were. */
function agreeing(urls: string[]): number {
  let shortcut = 0;
  for (const url of urls) {
    const answer = canonicalUrl(url);
    assert.equal(answer, canonicalUrlByParse(url), `canonicalUrl(${JSON.stringify(url)})`);
    if (answer === url.trim()) shortcut++;
  }
  return shortcut;
}

/** Near misses of the shortcut: each differs from a canonical URL in one way the parse handles. */
const tricky = [
  "https://example.com/a",
  "https://example.com/",
  "https://example.com",
  "https://example.com/a/",
  "https://example.com//",
  "https://example.com/a//b",
  "https://example.com/./a",
  "https://example.com/a/.",
  "https://example.com/a/..",
  "https://example.com/a/../b",
  "https://example.com/.well-known/x",
  "https://example.com/a.b/c..d",
  "https://example.com/a?b",
  "https://example.com/a#b",
  "https://example.com:443/a",
  "https://user@example.com/a",
  "https://Example.com/a",
  "HTTPS://example.com/a",
  "https://example.com./a",
  "https://.example.com/a",
  "https://a..b.com/a",
  "https://127.0.0.1/a",
  "https://1.2.3/a",
  "https://0x7f.1/a",
  "https://example.0x1/a",
  "https://example.123/a",
  "https://xn--bcher-kva.example/a",
  "https://xn--invalid.example/a",
  "https://xn--a.example/a",
  "https://a--b.example/a",
  "https://-a.example/a",
  "https://a-.example/a",
  "https://localhost/a",
  "https://a/b",
  "https://example.com/a%7E",
  "https://example.com/a b",
  "https://example.com/a\tb",
  "https://exa\nmple.com/a",
  "https://example.com/a\\b",
  "https://example.com/ä",
  "https://example.com/a|b^c`d{e}",
  "https://example.com/a:b@c!$&'()*+,;=",
  "https://example.com/A/B~c_d-e",
  // characters the parse percent-encodes in a path
  'https://example.com/a"b',
  "https://example.com/a<b",
  "https://example.com/a>b",
  "https://example.com/a{b",
  "https://example.com/a}b",
  // an empty user, with and without a password
  "https://@example.com/a",
  "https://u:@example.com/a",
  // "xn--" inside a label, or a label that only starts like one
  "https://axn--b.example/a",
  "https://a.xn--/a",
  "https://xn-a.example/a",
  "https://a.bxn--.com/a",
  // what trim takes off: spaces, and Unicode's spaces past ASCII
  " https://example.com/a ",
  "\u00a0https://example.com/a",
  "https://example.com/a\u00a0",
  "\ufeffhttps://example.com/a",
  "https://example.com/a\u2028",
  "\u3000https://example.com/a\n",
];

Deno.test("the shortcut for URLs already canonical answers as the parse does", () => {
  // Random urls over alphabets of the characters the shortcut and the parse treat apart.
  const next = mulberry32(7);
  const pick = (chars: string, most: number) =>
    Array.from(
      { length: Math.floor(next() * (most + 1)) },
      () => chars.charAt(Math.floor(next() * chars.length)),
    ).join("");
  const fuzzed = Array.from({ length: 20_000 }, () => {
    const scheme = next() < 0.5 ? "https://" : "http://";
    const host = pick("abz09.-xn_@", 12);
    return scheme + host + "/" + pick("aZ09.-/_~%?#:@!'()*+,;= \t\\|xn\"<>{}^[]", 10);
  });
  const shortcut = agreeing([...tricky, ...fuzzed]);
  // Many of these are already canonical, where the shortcut answers (else it would be untested).
  assert.ok(shortcut > 1_000, `only ${shortcut} URLs came back as they were`);
});

fixtureTest("the shortcut answers as the parse does on every link in the fixtures", () => {
  const urls = fixtureUrls();
  assert.ok(urls.length > 500, `only ${urls.length} fixture urls`);
  assert.ok(agreeing(urls) > 100, "the shortcut took no fixture url");
});
