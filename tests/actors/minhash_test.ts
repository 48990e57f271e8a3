import assert from "node:assert/strict";
import { minhash, minhashOfText } from "../../actors/_minhash.ts";
import { plainText, words } from "../../actors/_text.ts";
import { generateItems } from "../../adapters/sources/generator_source.ts";
import { declaredTexts } from "./_language_fixtures.ts";

Deno.test("a text's signature is the signature of its lower-cased words", async () => {
  const texts = (await declaredTexts()).flatMap((t) => [plainText(t.title), plainText(t.text)]);
  for (const item of generateItems({ count: 500, seed: 5 }).items) {
    texts.push(plainText(String(item.text ?? "")));
  }
  texts.push(
    "",
    "... --- ...",
    // Greek final sigma, dotted İ, ß: lower-cased word by word, as before.
    "ΑΣ.Β ΟΔΟΣ İstanbul’da ÇOK Straße STRASSE ǅ ǄEMAL",
    "Don't STOP the Open-Source-PROJEKT",
    "東京都は今日 ABC DEF",
    "word ".repeat(3000),
  );
  for (const text of texts) {
    const expected = minhash(words(text).map((w) => w.toLowerCase()), 3);
    assert.deepEqual(minhashOfText(text, 3), expected, text.slice(0, 80));
  }
});
