import assert from "node:assert/strict";
import { eld } from "eld/small";
import { EldTables, type NgramRuns, runsOf, scanNgramsModule } from "../../actors/_eld_tables.ts";
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

/** Each n-gram's pairs as "lang:score" text, sorted: what a run means, whatever its order. */
function byGram(runs: NgramRuns): Map<string, string> {
  return new Map(runs.grams.map((g, i) => {
    const pairs = [];
    for (let p = runs.start[i]; p < runs.start[i + 1]; p++) {
      pairs.push(`${runs.lang[p]}:${runs.score[p]}`);
    }
    return [g, pairs.sort().join(",")];
  }));
}

Deno.test("eld's n-gram module read as text holds what it evaluates to, n-gram by n-gram", async () => {
  const url = new URL("../ngrams/small.js", import.meta.resolve("eld/small"));
  const scanned = scanNgramsModule(await Deno.readTextFile(url), url.href);
  const { ngramsData } = await import(url.href);
  assert.deepEqual(scanned.languages, { ...ngramsData.languages });
  const ours = byGram(scanned.ngrams), theirs = byGram(runsOf(ngramsData.ngrams));
  assert.ok(theirs.size > 80_000, `${theirs.size} n-grams`);
  assert.equal(scanned.ngrams.grams.length, theirs.size, "no n-gram read twice");
  const wrong = [...theirs].filter(([g, pairs]) => ours.get(g) !== pairs).slice(0, 5);
  assert.deepEqual(wrong, []);
});

Deno.test("the n-gram scanner reads quoted, escaped and bare keys, and names the file of what it cannot", () => {
  const text = `export const ngramsData = {type:'S2',languages:{0:'am',1:"ar"},` +
    `ngrams:{' a\\'b':{0:5,1:-3},LQ:{1:7},"\\"x":{0:0}}};`;
  const { languages, ngrams } = scanNgramsModule(text, "small.js");
  assert.deepEqual(languages, { 0: "am", 1: "ar" });
  assert.deepEqual(ngrams, {
    grams: [" a'b", "LQ", '"x'],
    start: [0, 2, 3, 4],
    lang: [0, 1, 1, 0],
    score: [5, -3, 7, 0],
  });
  assert.throws(
    () => scanNgramsModule(text.replace("{1:7}", "{1:x}"), "small.js"),
    /eld tables: small\.js: expected an integer at offset \d+/,
  );
  assert.throws(
    () => scanNgramsModule(text.replace("a\\'b", "a\\nb"), "small.js"),
    /small\.js: expected no escape but/,
  );
});
