import assert from "node:assert/strict";
import { countWords, plainText, words } from "../../actors/_text.ts";

Deno.test("a > inside a quoted attribute does not leak markup into the text", () => {
  const html = `<p>Read <a title="a > b" href="/x">this story</a> now</p>`;
  assert.deepEqual(words(plainText(html)), ["Read", "this", "story", "now"]);
  assert.deepEqual(words(plainText(`<img alt='1 > 0' src=x.png>caption`)), ["caption"]);
});

Deno.test("scripts, styles and comments are not words; entities are decoded once", () => {
  const html = `<style>p > a { color: red }</style><p>f&uuml;r &amp;lt;</p>` +
    `<!-- a > b --><script>if (a > b) x()</script><br/>ende`;
  assert.deepEqual(words(plainText(html)), ["für", "lt", "ende"]);
});

Deno.test("Japanese, Chinese and Thai are cut into words, not counted as one per sentence", () => {
  assert.deepEqual(words("東京都は今日、新しい計画を発表しました。"), [
    "東京",
    "都",
    "は",
    "今日",
    "新しい",
    "計画",
    "を",
    "発表",
    "しま",
    "した",
  ]);
  assert.equal(countWords("東京都は今日、新しい計画を発表しました。"), 10);
  assert.equal(countWords("這是一個測試句子，我們來看看。"), 7);
  assert.equal(countWords("ภาษาไทยไม่มีช่องว่างระหว่างคำ"), 7);
});

Deno.test("spaced scripts keep inner apostrophes and hyphens, mixed text keeps both rules", () => {
  assert.deepEqual(words("Don't stop the Open-Source-Projekt"), [
    "Don't",
    "stop",
    "the",
    "Open-Source-Projekt",
  ]);
  assert.deepEqual(words("Deno 2 対応の新機能"), ["Deno", "2", "対応", "の", "新", "機能"]);
});
