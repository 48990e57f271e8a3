import { decodeXML } from "entities";
import { generateItems } from "../../adapters/sources/generator_source.ts";
import { FIXTURES } from "../_fixtures_dir.ts";

/**
 * One text of the labelled near-duplicate set: `copyOf` is the index of the
 * earlier text it is a syndicated or retouched copy of, -1 for a text that
 * must pass (an original, or a different article on the same topic).
 */
export interface Labelled {
  text: string;
  copyOf: number;
  /** Where it comes from, for failure messages. */
  kind: string;
}

/** Readability's article pages with enough text to syndicate (the words of expected.html). */
const PAGES = ["bbc-1", "nytimes-1", "lemonde-1", "heise", "medium-1", "pixnet"];

const BOILERPLATE = "Copyright 2016 Thomson Reuters. All rights reserved. This material may " +
  "not be published, broadcast, rewritten or redistributed. Click here to subscribe.";

const paragraphs = (html: string) =>
  [...html.matchAll(/<(p|li|h[1-6])\b[^>]*>([\s\S]*?)<\/\1>/g)]
    .map(([, , p]) => decodeXML(p.replace(/<[^>]*>/g, " ")).replace(/\s+/g, " ").trim())
    .filter((p) => p.length > 0);

/**
 * Articles from the shared fixtures: the six Readability pages, the
 * Wikipedia "Mozilla" article cut at its h2 headings into sections (one
 * topic, different texts: the hard negatives), and heise's feed entries
 * (15 developer-news items, also one topic).
 */
export async function fixtureArticles(): Promise<{ name: string; text: string }[]> {
  const out: { name: string; text: string }[] = [];
  for (const page of PAGES) {
    const html = await Deno.readTextFile(`${FIXTURES}/html/${page}/expected.html`);
    out.push({ name: page, text: paragraphs(html).join("\n\n") });
  }
  const wiki = await Deno.readTextFile(`${FIXTURES}/html/wikipedia/expected.html`);
  wiki.split(/<h2\b/).forEach((section, i) => {
    const text = paragraphs(section).join("\n\n");
    if (text.split(/\s+/).length >= 120) out.push({ name: `wikipedia §${i}`, text });
  });
  const atom = await Deno.readTextFile(`${FIXTURES}/feeds/rss-parser__heise.atom`);
  [...atom.matchAll(/<content[^>]*>([\s\S]*?)<\/content>/g)].forEach(([, c], i) => {
    const html = decodeXML(c.replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, "$1"));
    out.push({ name: `heise entry ${i}`, text: paragraphs(`<p>${html}</p>`).join("\n\n") });
  });
  return out;
}

/** The edits a syndicating site makes, applied to a text of 100 words or more. */
export const EDITS: Record<string, (text: string) => string> = {
  rewrap: (t) => t.replace(/\s+/g, " ").replace(/(.{60,72}) /g, "$1\n"),
  "reuters prefix": (t) => "LONDON (Reuters) - " + t,
  boilerplate: (t) => t + "\n\n" + BOILERPLATE,
  "sentence changed": (t) => {
    const sentences = t.split(/(?<=[.!?。])\s+/);
    const at = Math.floor(sentences.length / 2);
    sentences[at] = "A spokesperson declined to comment on the matter when reached on Monday.";
    return sentences.join(" ");
  },
  "prefix, boilerplate and a changed sentence": (t) =>
    EDITS["reuters prefix"](EDITS.boilerplate(EDITS["sentence changed"](t))),
};

/**
 * The labelled set: every fixture article (negatives among themselves), then
 * each edit of every article of 100 words or more (positives), then
 * `generated` generator items: its near duplicates are positives, its
 * unique items negatives (exact duplicates and invalid items left out).
 */
export async function labelledSet(generated = 20_000): Promise<Labelled[]> {
  const set: Labelled[] = [];
  const articles = await fixtureArticles();
  for (const a of articles) set.push({ text: a.text, copyOf: -1, kind: a.name });
  articles.forEach((a, i) => {
    if (a.text.split(/\s+/).length < 100) return;
    for (const [edit, apply] of Object.entries(EDITS)) {
      set.push({ text: apply(a.text), copyOf: i, kind: `${a.name}: ${edit}` });
    }
  });
  const { items, labels, origin } = generateItems({ count: generated, seed: 7 });
  const at = new Map<number, number>();
  items.forEach((item, i) => {
    if (labels[i] === "unique") {
      at.set(i, set.length);
      set.push({ text: item.text ?? "", copyOf: -1, kind: "generated" });
    } else if (labels[i] === "near") {
      set.push({ text: item.text ?? "", copyOf: at.get(origin[i])!, kind: "generated near" });
    }
  });
  return set;
}
