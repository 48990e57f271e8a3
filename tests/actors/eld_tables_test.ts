import assert from "node:assert/strict";
import { eld } from "eld/small";
import { EldTables } from "../../actors/_eld_tables.ts";
import { plainText } from "../../actors/_text.ts";
import { generateItems } from "../../adapters/sources/generator_source.ts";
import { declaredTexts } from "./_language_fixtures.ts";

/** What eld itself answers: its language when it calls the guess reliable, else "". */
function eldSays(text: string): string {
  const result = eld.detect(text);
  return result.language && result.isReliable() ? result.language : "";
}

/** Texts that differ from eld's answer, with both answers. */
function differences(tables: EldTables, texts: string[]): string[] {
  return texts.flatMap((t) => {
    const ours = tables.detect(t), theirs = eldSays(t);
    return ours === theirs
      ? []
      : [`${JSON.stringify(t.slice(0, 80))}: eld ${theirs}, ours ${ours}`];
  });
}

Deno.test("eld's tables in typed arrays answer as eld does on every fixture text", async () => {
  const tables = await EldTables.load();
  const texts = (await declaredTexts()).flatMap((t) => {
    const full = plainText(t.title) + "\n" + plainText(t.text);
    // Whole texts too: eld cuts at 350 to 380 bytes, and Chinese words run past 70 bytes.
    return [full, full.slice(0, 200), t.title, t.text];
  });
  assert.ok(texts.length > 1700);
  assert.deepEqual(differences(tables, texts), []);
});

Deno.test("eld's tables answer as eld does on generated items and on odd texts", async () => {
  const tables = await EldTables.load();
  const { items } = generateItems({ count: 2000, seed: 11 });
  const texts = items.map((i) => `${i.title ?? ""}\n${i.text ?? ""}`.slice(0, 200));
  texts.push(
    "",
    "   ",
    "Hello world",
    "a b c",
    "你好",
    "don't 'quote' it’s rock’n’roll `x` ''' ’",
    "Straßenbahnhaltestellenüberdachungsreinigungsdienstleistungsunternehmen fährt",
    "𝒜𝓁𝓅𝒽𝒶 and emoji 😀 here, İstanbul’da büyük bir toplantı yapıldı",
    "Привет, как дела? Всё хорошо, спасибо.",
    "東京都は今日、新しい計画を発表しました。".repeat(6),
  );
  assert.deepEqual(differences(tables, texts), []);
  assert.equal(tables.detect("Die Bundesregierung hat heute neue Regeln beschlossen."), "de");
});
