import { EldTables } from "./_eld_tables.ts";
import { countWords } from "./_text.ts";

/**
 * A language detector: ISO 639-1 code of a text, or of a title and a text
 * read as `${title}\n${text}` (without building that string), or "und" when
 * it cannot tell.
 */
export type DetectLanguage = (title: string, text?: string) => string;

/** Below this many words a guess is noise ("Hello world" reads as Norwegian). */
const MIN_WORDS = 3;
/**
 * eld reads at most about 350 bytes of a text, and its cost grows with the
 * n-grams of what it reads: a 200-character sample, whitespace collapsed,
 * costs about half of what the full text does on generated items, and names
 * the same language on every one of the fixtures' 446 texts in five
 * languages (README, "Enrich"); 150 characters starts to miss (a German
 * heise entry under an English title reads as English).
 */
const SAMPLE_CHARS = 200;

let loading: Promise<DetectLanguage> | undefined;

/**
 * Loads the detector on first use: npm eld (Efficient Language Detector,
 * its "small" n-gram set, 60 languages), scored over its tables in typed
 * arrays (_eld_tables.ts: eld's answers at about a fifth of its cost per
 * item; no other detector on npm measured faster or as accurate on the
 * fixtures).
 * Its data costs about 150 ms to load, so only a flow whose Enricher
 * detects languages pays that, once per process.
 *
 * The answer is "und" for text of fewer than 3 words (words as `words()`
 * cuts them, so a Chinese sentence is several) and whenever eld itself calls
 * its guess unreliable.
 */
export function loadLanguageDetector(): Promise<DetectLanguage> {
  loading ??= EldTables.load().then((eld) => (title: string, text?: string) => {
    const sample = sampleOf(title, text);
    if (countWords(sample) < MIN_WORDS) return "und";
    return eld.detect(sample) || "und";
  });
  return loading;
}

/** What collapsing whitespace changes: a run of two or more, or one that is not a space. */
const SPACES = /\s{2,}|[^\S ]/g;
const collapse = (s: string) => s.replace(SPACES, " ");

/** The first `n` characters of `${title}\n${text}` (of `title` without a text). */
function headOf(title: string, text: string | undefined, n: number): string {
  if (text === undefined || title.length >= n) return title.slice(0, n);
  return title + "\n" + text.slice(0, n - title.length - 1);
}

/**
 * The text's first SAMPLE_CHARS characters with runs of whitespace as one
 * space (feed content is often indented by hundreds of them), cut back to
 * the last space so no word is halved. Whitespace is collapsed in the first
 * 400 characters, and in the first 800 only when that left too few: a
 * longer head only adds to the end of what a shorter one gives.
 */
function sampleOf(title: string, text: string | undefined): string {
  let head = headOf(title, text, 2 * SAMPLE_CHARS);
  let t = collapse(head);
  if (t.length <= SAMPLE_CHARS && head.length === 2 * SAMPLE_CHARS) {
    head = headOf(title, text, 4 * SAMPLE_CHARS);
    t = collapse(head);
  }
  if (t.length <= SAMPLE_CHARS) return t;
  const cut = t.lastIndexOf(" ", SAMPLE_CHARS);
  return t.slice(0, cut > SAMPLE_CHARS / 2 ? cut : SAMPLE_CHARS);
}
