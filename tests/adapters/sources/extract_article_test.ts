import assert from "node:assert/strict";
import {
  extractArticle,
  type HtmlDocument,
  loadDom,
  parseHtml,
  UnreadablePageError,
} from "../../../adapters/sources/_extract_article.ts";

await loadDom();

const tags = (doc: HtmlDocument) => {
  const root = (doc as unknown as { documentElement: { children: { tagName: string }[] } })
    .documentElement;
  return Array.from(root.children, (c) => c.tagName);
};

Deno.test("a page with a script after </body> is read as linkedom parses it, once", () => {
  // As most real pages end. The first check sent them through parse5 as well, at 2.5 times the
  // time; only a page whose content sits outside an empty body needs it.
  const page = "<html><head><title>T</title></head><body><p>x</p></body><script>1</script></html>";
  assert.deepEqual(tags(parseHtml(page)), ["HEAD", "BODY", "SCRIPT"]);
  // Left out tags put the content beside an empty body: parsed again, it is in the body.
  const minified = "<!doctype html><html><title>T</title><article><p>x</p></article></html>";
  assert.deepEqual(tags(parseHtml(minified)), ["HEAD", "BODY"]);
});

Deno.test("Readability failing on a page is an UnreadablePageError, told from the source's own", () => {
  // Any throw of the reader skipped the page as having no article, remembered as seen: a bug of
  // ours as well, which retired pages for good.
  const doc = {
    querySelector: () => null,
    querySelectorAll: (selectors: string) => {
      if (selectors.includes("pre")) throw new TypeError("reader broke");
      return [];
    },
  } as unknown as HtmlDocument;
  assert.throws(() => extractArticle(doc, "https://example.com/a"), (error: Error) => {
    assert.ok(error instanceof UnreadablePageError);
    assert.equal(error.message, "its article could not be read: reader broke");
    return true;
  });
});
