import assert from "node:assert/strict";
import { eachWord } from "../../actors/_word_spans.ts";
import { generateItems } from "../../adapters/sources/generator_source.ts";
import { declaredTexts } from "./_language_fixtures.ts";

/** What a word was before the scan replaced it: this pattern, matched over the text. */
const WORD = /[\p{L}\p{N}][\p{L}\p{M}\p{N}]*(?:['’\-][\p{L}\p{M}\p{N}]+)*/gu;

function scanned(text: string): string[] {
  const out: string[] = [];
  eachWord(text, (start, end) => out.push(text.slice(start, end)));
  return out;
}

Deno.test("eachWord finds what the word pattern matches, on odd texts", () => {
  const texts = [
    "",
    "   ",
    "Don't stop the Open-Source-Projekt -- 'quoted' it’s rock’n’roll - a- -b a--b 'x'",
    "naïve café, e\u0301t\u0301e\u0301 (combining marks), \u0301 a mark alone",
    "ภาษาไทยไม่มีช่องว่าง and देवनागरी लिपि",
    "東京都は今日、新しい計画を発表しました。",
    "𝒜𝓁𝓅𝒽𝒶 𝟙𝟚𝟛 emoji 😀😀 here, a\ud800lone lead, a\udc00lone trail, end\ud800",
    "x-𝒜 𝒜-x 𝒜'𝒜 1,000 3.14 2024-05-18T20:26:17Z v1.2-rc3 C++ #hash @user",
    "İstanbul’da ΟΔΟΣ ﬁne ½ Ⅻ ²",
  ];
  for (const t of texts) assert.deepEqual(scanned(t), t.match(WORD) ?? [], JSON.stringify(t));
});

Deno.test("eachWord finds what the word pattern matches, on fixture texts and generated items", async () => {
  const texts = (await declaredTexts()).flatMap((t) => [t.title, t.text]);
  for (const item of generateItems({ count: 500, seed: 3 }).items) {
    texts.push(String(item.title ?? ""), String(item.text ?? ""));
  }
  const differ = texts.filter((t) =>
    JSON.stringify(scanned(t)) !== JSON.stringify(t.match(WORD) ?? [])
  );
  assert.deepEqual(differ, []);
});
