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

/**
 * npm stopword's Chinese list is of single characters, and the segmenter
 * cuts Chinese into words of one to four: its function words of two or more
 * (我们, 这个, 因为) topped the keywords of a text once words of two counted.
 * These are the common ones, simplified and traditional, as the classic
 * Chinese stopword lists have them; a word made of stopword characters that
 * is a word of its own (小说) stays a keyword.
 */
const MORE_CHINESE = [
  ..."我们 你们 他们 她们 它们 咱们 大家 自己 这个 那个 这些 那些 这里 那里 这样 那样 这么 那么 这种 那种"
    .split(" "),
  ..."什么 怎么 怎样 为什么 如何 哪里 哪个 一个 一些 一样 一直 一定 一起 已经 还是 就是 不是 只是 但是 可是"
    .split(" "),
  ..."而且 因为 所以 如果 虽然 然后 或者 以及 并且 还有 没有 可以 可能 应该 非常 比较 其他 其中 之后 之前"
    .split(" "),
  ..."以后 以前 时候 现在 不过 而是 由于 对于 关于 通过 根据 为了 作为 其实 当然 的话 起来 出来 下来 之一"
    .split(" "),
  ..."之间 以上 以下 目前 一般 而已 每个 各种 这是 那是 就是说 也是 都是 还要 只有 我的 你的 他的 她的"
    .split(" "),
  ..."我們 你們 他們 她們 它們 咱們 這個 那個 這些 那些 這裡 那裡 這樣 那樣 這麼 那麼 這種 那種 甚麼 什麼"
    .split(" "),
  ..."怎麼 為什麼 哪裡 哪個 一個 一樣 還是 雖然 然後 還有 沒有 應該 時候 現在 對於 關於 通過 為了 作為 其實"
    .split(" "),
  ..."當然 的話 起來 出來 下來 之間 目前 而已 每個 各種 這是 那是 只有 已經 而且 因為 所以 如果 或者 以及"
    .split(" "),
];

/**
 * npm stopword's Japanese list leaves out most grammar the segmenter gives
 * as words of its own: verb and copula endings (した, です, ます), particles
 * of two kana or more (しか, から, まで), demonstratives and fillers, which
 * topped the keywords of a text once words of two counted. A noun in kana
 * (いじめ) stays a keyword.
 */
const MORE_JAPANESE = [
  ..."これ それ あれ どれ この その あの どの ここ そこ あそこ どこ こちら そちら あちら どちら だれ なに なん"
    .split(" "),
  ..."こと もの よう ため ところ とき など まで から より ので のに けど けれど けれども しかし でも また そして"
    .split(" "),
  ..."それで ただ もう まだ とても すごく ちょっと たち さん くん ちゃん する した して します しました しない"
    .split(" "),
  ..."です でした ます ました ません ない なかった ある あり あります あった いる いた います いない なる なり"
    .split(" "),
  ..."なります なった れる られる せる させる という といった について によって による として とは では には"
    .split(" "),
  ..."での との ような ように みたい ほど くらい ぐらい だけ しか ばかり こそ さえ なら いい よい だった だろう"
    .split(" "),
  ..."でしょう ですが ですね ますが かも かな よね ね よ か".split(" "),
];

const MORE: Record<string, readonly string[]> = { zh: MORE_CHINESE, ja: MORE_JAPANESE };

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
    const list = [
      ...LISTS.en,
      ...MORE_ENGLISH,
      ...(code === "en" ? [] : LISTS[code]),
      ...(MORE[code] ?? []),
    ];
    set = new Set(list.map((w) => w.toLowerCase()));
    sets.set(code, set);
  }
  return set;
}
