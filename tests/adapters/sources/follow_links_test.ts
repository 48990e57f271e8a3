import assert from "node:assert/strict";
import { followLinks } from "../../../adapters/sources/_follow_links.ts";
import { loadDom, parseHtml } from "../../../adapters/sources/_extract_article.ts";

const PAGE = `<html><head><base href="/news/"></head><body>
<h2 class="headline"><a href="2026/a.html">A</a></h2>
<ul>
  <li><a href="2026/b.html#comments">B</a></li>
  <li class="ad"><a href="https://ads.example.net/2026/x">ad</a></li>
  <li><a href="https://www.example.com/news/2026/c.html">C</a></li>
  <li><a href="https://blog.example.com/2026/d.html">D</a></li>
  <li><a href="javascript:void(0)">js</a></li>
  <li><a href="2026/b.html">B again</a></li>
</ul></body></html>`;
const PAGE_URL = "https://example.com/index.html";
await loadDom();
const links = (selector: string, sameSite = true) =>
  followLinks(parseHtml(PAGE), selector, PAGE_URL, sameSite);

Deno.test("links resolve against <base href>, lose fragments, stay http(s) and come once", () => {
  assert.deepEqual(links("li > a", false), [
    "https://example.com/news/2026/b.html",
    "https://ads.example.net/2026/x",
    "https://www.example.com/news/2026/c.html",
    "https://blog.example.com/2026/d.html",
  ]);
});

Deno.test("sameSite keeps the page's host, www. aside", () => {
  assert.deepEqual(links("li > a"), [
    "https://example.com/news/2026/b.html",
    "https://www.example.com/news/2026/c.html",
  ]);
});

Deno.test("a selector may pick an element that holds the link, and use the usual CSS", () => {
  assert.deepEqual(links("h2.headline"), ["https://example.com/news/2026/a.html"]);
  assert.deepEqual(links("li:not(.ad) > a[href*='2026/c']", false), [
    "https://www.example.com/news/2026/c.html",
  ]);
  assert.deepEqual(links("ul li:nth-child(4) a", false), ["https://blog.example.com/2026/d.html"]);
});
