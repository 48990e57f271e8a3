import assert from "node:assert/strict";
import { KeywordCounts } from "../../actors/_keyword_counts.ts";
import { stopwordsOf } from "../../actors/_keywords.ts";
import { loadLanguageDetector } from "../../actors/_language.ts";
import { hasUnspaced, plainText, words } from "../../actors/_text.ts";
import { generateItems } from "../../adapters/sources/generator_source.ts";
import { declaredTexts } from "./_language_fixtures.ts";

/**
 * Keywords as they were picked before the typed-array counts, kept as the
 * reference: a Map of the word strings, title words first, then the most
 * frequent, ties in order of first appearance.
 */
function reference(title: string, text: string, language: string, max: number): string[] {
  const stop = stopwordsOf(language);
  const counts = new Map<string, number>();
  for (const word of [...words(title.toLowerCase()), ...words(text.toLowerCase())]) {
    if (word.length < (hasUnspaced(word) ? 2 : 3)) continue;
    const w = word.toLowerCase().replaceAll("’", "'");
    if (stop.has(w) || /^[\d'\-]+$/.test(w) || /^[\u3041-\u309f]{2}$/.test(w)) continue;
    counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  return [...counts].map(([w, n], i) => ({ w, n, i }))
    .sort((a, b) => b.n - a.n || a.i - b.i)
    .slice(0, max)
    .map((e) => e.w);
}

function picked(counts: KeywordCounts, title: string, text: string, language: string, max: number) {
  counts.reset().addWords(title.toLowerCase());
  counts.addWords(text.toLowerCase());
  return counts.top(max, language);
}

Deno.test("keywords are the reference's on every fixture text and generated item", async () => {
  const detect = await loadLanguageDetector();
  const texts = (await declaredTexts()).map((t) => [plainText(t.title), plainText(t.text)]);
  for (const item of generateItems({ count: 1000, seed: 9 }).items) {
    texts.push([String(item.title ?? ""), String(item.text ?? "")]);
  }
  const counts = new KeywordCounts();
  const differ: string[] = [];
  for (const [title, text] of texts) {
    const language = detect(title, text);
    for (const max of [1, 8, 30]) {
      const ours = picked(counts, title, text, language, max);
      const theirs = reference(title, text, language, max);
      if (JSON.stringify(ours) !== JSON.stringify(theirs)) {
        differ.push(`${title.slice(0, 40)} (${language}, ${max}): ${ours} / ${theirs}`);
      }
    }
  }
  assert.deepEqual(differ, []);
});

Deno.test("keywords drop stopwords, short words and numbers, and read ’ as '", () => {
  const counts = new KeywordCounts();
  const text = "It’s the release: it's out, 2024 and 1-2 too; '90s rock’n’roll release notes, " +
    "rock'n'roll notes. Die Die Die";
  assert.deepEqual(picked(counts, "Release", text, "en", 8), [
    "release",
    "die",
    "rock'n'roll",
    "notes",
    "90s",
  ]);
  // German stopwords come with the English ones.
  assert.deepEqual(picked(counts, "Release", text, "de", 8), [
    "release",
    "rock'n'roll",
    "notes",
    "90s",
  ]);
});

Deno.test("keywords of Chinese and Japanese count their two-character words", () => {
  // Most segmented words are one or two characters: at three, 城市规划 five times gave none.
  const counts = new KeywordCounts();
  const zh = picked(
    counts,
    "城市规划",
    "政府发布城市规划。城市规划方案很重要。政府支持城市规划。城市规划",
    "zh",
    3,
  );
  assert.deepEqual(zh, ["城市", "规划", "政府"]);
  const ja = picked(
    counts,
    "東京の地下鉄",
    "東京の地下鉄は便利です。地下鉄の駅は多い。東京の地下鉄で通勤する。",
    "ja",
    2,
  );
  assert.deepEqual(ja, ["地下鉄", "東京"]);
});

Deno.test("keywords of Chinese and Japanese leave out their grammar: 我们, 这个, した, しか", () => {
  const counts = new KeywordCounts();
  const zh = picked(
    counts,
    "我们讨论城市规划",
    "我们认为这个城市规划很重要。我们今天讨论这个问题。城市规划是我们的问题。",
    "zh",
    4,
  );
  assert.deepEqual(zh, ["城市", "规划", "讨论", "问题"]);
  const ja = picked(
    counts,
    "今日は東京",
    "今日は天気がいいので東京へ行きました。しかし東京は暑かった。",
    "ja",
    3,
  );
  assert.deepEqual(ja, ["東京", "今日", "天気"]);
  // Words of such characters that are words of their own stay: 小说 (小, 说), いじめ.
  assert.deepEqual(picked(counts, "小说", "这本小说很好。我们读小说。小说", "zh", 1), ["小说"]);
  assert.deepEqual(picked(counts, "いじめ", "いじめはいじめです。いじめ", "ja", 1), ["いじめ"]);
  // The pieces the segmenter cuts verb endings into: ています, しました.
  const news = "政府は対策を実施しています。政府は説明を求めています。議論が続いています。" +
    "政府は発表しました。";
  assert.deepEqual(picked(counts, "政府の対策", news, "ja", 3), ["政府", "対策", "実施"]);
});

Deno.test("the counts table grows past its first size and starts clean for each item", () => {
  const counts = new KeywordCounts();
  const many = Array.from({ length: 3000 }, (_, i) => `word${i.toString(36)}x`).join(" ");
  assert.equal(counts.reset().addWords(many), 3000);
  assert.deepEqual(counts.top(2, "en"), ["word0x", "word1x"]);
  assert.equal(counts.reset().addWords("zebra zebra apple"), 3);
  assert.deepEqual(counts.top(8, "en"), ["zebra", "apple"]);
});
