import * as stopwords from "stopword";

/**
 * ISO 639-1 codes to the stopword lists of npm stopword (named by ISO 639-3).
 * "no" is what the language detector says for Norwegian Bokmål.
 */
const LISTS: Record<string, readonly string[]> = {
  af: stopwords.afr,
  ar: stopwords.ara,
  bg: stopwords.bul,
  bn: stopwords.ben,
  br: stopwords.bre,
  ca: stopwords.cat,
  cs: stopwords.ces,
  da: stopwords.dan,
  de: stopwords.deu,
  el: stopwords.ell,
  en: stopwords.eng,
  eo: stopwords.epo,
  es: stopwords.spa,
  et: stopwords.est,
  eu: stopwords.eus,
  fa: stopwords.fas,
  fi: stopwords.fin,
  fr: stopwords.fra,
  ga: stopwords.gle,
  gl: stopwords.glg,
  gu: stopwords.guj,
  ha: stopwords.hau,
  he: stopwords.heb,
  hi: stopwords.hin,
  hr: stopwords.hrv,
  hu: stopwords.hun,
  hy: stopwords.hye,
  id: stopwords.ind,
  it: stopwords.ita,
  ja: stopwords.jpn,
  ko: stopwords.kor,
  ku: stopwords.kur,
  la: stopwords.lat,
  lt: stopwords.lit,
  lv: stopwords.lav,
  mr: stopwords.mar,
  ms: stopwords.msa,
  my: stopwords.mya,
  nb: stopwords.nob,
  nl: stopwords.nld,
  no: stopwords.nob,
  pl: stopwords.pol,
  pt: stopwords.por,
  ro: stopwords.ron,
  ru: stopwords.rus,
  sk: stopwords.slk,
  sl: stopwords.slv,
  so: stopwords.som,
  st: stopwords.sot,
  sv: stopwords.swe,
  sw: stopwords.swa,
  th: stopwords.tha,
  tl: stopwords.tgl,
  tr: stopwords.tur,
  uk: stopwords.ukr,
  ur: stopwords.urd,
  vi: stopwords.vie,
  yo: stopwords.yor,
  zh: stopwords.zho,
  zu: stopwords.zul,
};

/**
 * npm stopword's English list (108 words) leaves out "not", "she", modal
 * verbs and contractions, which then top the keywords of chatty posts
 * ("will", "don't"), and function words NLTK's list has ("when", "down",
 * "off", "against", "during": a fixture BBC item's were "race, when,
 * laws"); these fill that gap.
 */
const MORE_ENGLISH = [
  // NLTK's English stopwords that npm stopword lacks.
  "myself",
  "ours",
  "ourselves",
  "yours",
  "yourself",
  "yourselves",
  "hers",
  "herself",
  "itself",
  "theirs",
  "themselves",
  "whom",
  "having",
  "until",
  "against",
  "during",
  "above",
  "below",
  "down",
  "off",
  "again",
  "further",
  "once",
  "when",
  "few",
  "no",
  "nor",
  "own",
  "so",
  "not",
  "she",
  "does",
  "doing",
  "done",
  "its",
  "why",
  "will",
  "just",
  "can't",
  "cannot",
  "don't",
  "doesn't",
  "didn't",
  "won't",
  "isn't",
  "aren't",
  "wasn't",
  "i'm",
  "i've",
  "i'd",
  "i'll",
  "it's",
  "that's",
  "there's",
  "you're",
  "you've",
  "we're",
  "they're",
  "let's",
  "what's",
  "one",
  "yet",
  "anyone",
  "really",
];

const sets = new Map<string, ReadonlySet<string>>();

/**
 * The stopwords of a language, built on first use, always with the English
 * ones added: English phrases run through texts in every language (a German
 * heise entry on "Tales from the Web side"), and English function words are
 * seldom content words elsewhere. "und" and unknown codes get English alone.
 */
export function stopwordsOf(language: string): ReadonlySet<string> {
  const code = language in LISTS ? language : "en";
  let set = sets.get(code);
  if (!set) {
    const list = [...LISTS.en, ...MORE_ENGLISH, ...(code === "en" ? [] : LISTS[code])];
    set = new Set(list.map((w) => w.toLowerCase()));
    sets.set(code, set);
  }
  return set;
}
