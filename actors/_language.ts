/** A language detector: ISO 639-1 code of a text, or "und" when it cannot tell. */
export type DetectLanguage = (text: string) => string;

/** Below this many words a guess is noise ("Hello world" reads as Norwegian). */
const MIN_WORDS = 3;
/** Detection cost grows with length and the first paragraphs settle it. */
const MAX_CHARS = 1_000;

let loading: Promise<DetectLanguage> | undefined;

/**
 * Loads the detector on first use: npm eld (Efficient Language Detector,
 * its "small" n-gram set, 60 languages). On the titles and texts of the
 * shared heise and reddit fixtures it takes about 80-100 µs per item where
 * franc-min takes 400-500 µs and tinyld 650-700 µs, and it names more of
 * the English reddit posts (95 of 100, against 84 and 86; all three get the
 * 15 German heise entries). Its data costs about 150 ms to load, so only a
 * flow whose Enricher detects languages pays that, once per process.
 *
 * The answer is "und" for text of fewer than 3 words and whenever eld itself
 * calls its guess unreliable.
 */
export function loadLanguageDetector(): Promise<DetectLanguage> {
  loading ??= import("eld/small").then(({ eld }) => (text: string) => {
    const sample = text.length > MAX_CHARS ? text.slice(0, MAX_CHARS) : text;
    if (!hasWords(sample, MIN_WORDS)) return "und";
    const result = eld.detect(sample);
    return result.language && result.isReliable() ? result.language : "und";
  });
  return loading;
}

function hasWords(text: string, n: number): boolean {
  const re = /[\p{L}\p{N}]+/gu;
  let found = 0;
  while (re.exec(text) !== null) if (++found >= n) return true;
  return false;
}
