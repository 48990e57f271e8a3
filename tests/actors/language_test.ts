import assert from "node:assert/strict";
import { loadLanguageDetector } from "../../actors/_language.ts";
import { plainText } from "../../actors/_text.ts";
import { declaredTexts } from "./_language_fixtures.ts";

/** Detected-as-declared counts per language, as the Enricher reads title and text. */
async function agreement(): Promise<Map<string, { texts: number; same: number }>> {
  const detect = await loadLanguageDetector();
  const rows = new Map<string, { texts: number; same: number }>();
  for (const t of await declaredTexts()) {
    const row = rows.get(t.declared) ?? { texts: 0, same: 0 };
    rows.set(t.declared, row);
    row.texts++;
    if (detect(plainText(t.title) + "\n" + plainText(t.text)) === t.declared) row.same++;
  }
  return rows;
}

Deno.test("fixture texts are detected as the language their publisher declares", async () => {
  const rows = await agreement();
  assert.deepEqual([...rows.keys()].sort(), ["de", "en", "fr", "pt", "zh"]);
  const share = (l: string) => rows.get(l)!.same / rows.get(l)!.texts;
  // Measured: en 282/284, de 21/21, pt 40/40, fr 27/27, zh 70/74 (README, "Enrich").
  assert.ok(share("en") >= 0.98, `en ${JSON.stringify(rows.get("en"))}`);
  for (const l of ["de", "pt", "fr"]) {
    assert.equal(share(l), 1, `${l} ${JSON.stringify(rows.get(l))}`);
  }
  // Chinese paragraphs are words too: counting a sentence as one word made most of them "und".
  assert.ok(share("zh") >= 0.9, `zh ${JSON.stringify(rows.get("zh"))}`);
});

Deno.test("fewer than 3 words is und, in any script", async () => {
  const detect = await loadLanguageDetector();
  assert.equal(detect("Hello world"), "und");
  assert.equal(detect("你好"), "und");
  assert.equal(detect("今天天氣很好，我們去公園散步吧。"), "zh");
});
