/**
 * Dates as sources write them, turned into ISO 8601 or left out. Feeds in the
 * wild carry RFC 822 dates with zone names ("PST", "UTC"), two-digit years,
 * trailing whitespace and comments, and day and month names in the feed's
 * own language (`Seg, 24 Set 2018 19:42:40 -0300`): RFC 822 asks for English
 * ones, but CMSs localise them. A date that cannot be read never fails the
 * item; the feed parser counts such dates and warns (see _parse_feed.ts).
 */

/** Offsets of zone names seen in feeds that Date.parse does not know. */
const ZONES: Record<string, string> = {
  UT: "+0000",
  Z: "+0000",
  WET: "+0000",
  BST: "+0100",
  CET: "+0100",
  MEZ: "+0100",
  CEST: "+0200",
  MESZ: "+0200",
  EET: "+0200",
  EEST: "+0300",
  MSK: "+0300",
  IST: "+0530",
  JST: "+0900",
  KST: "+0900",
  AEST: "+1000",
  AEDT: "+1100",
  NZST: "+1200",
  NZDT: "+1300",
  AKST: "-0900",
  AKDT: "-0800",
  HST: "-1000",
  MET: "+0100",
  MEST: "+0200",
  BRT: "-0300",
  ART: "-0300",
  WIB: "+0700",
  SGT: "+0800",
  HKT: "+0800",
  AWST: "+0800",
};

/**
 * Month names and abbreviations of Portuguese, Spanish, French, German,
 * Italian, Dutch and the Scandinavian languages, lower case and without
 * accents, mapped to the English abbreviation Date.parse reads. English
 * ones are not listed: Date.parse knows them.
 */
const MONTHS: Record<string, string> = monthTable({
  Jan: "janeiro enero ene janvier janv januar jan jaenner jaen gennaio gen januari",
  Feb: "fevereiro fev febrero fevrier fevr fev februar febbraio februari",
  Mar: "marco marzo mars marz maer mrz maerz maart mrt",
  Apr: "abril abr avril avr aprile april",
  May: "maio mayo mai maggio mag mei maj",
  Jun: "junho junio juin juni giugno giu",
  Jul: "julho julio juillet juil juli luglio lug",
  Aug: "agosto ago aout august augusti",
  Sep: "setembro set septiembre sept septembre settembre september",
  Oct: "outubro out octubre octobre oktober okt ottobre ott",
  Nov: "novembro noviembre novembre november",
  Dec: "dezembro dez diciembre dic decembre dezember dicembre december des",
});

function monthTable(names: Record<string, string>): Record<string, string> {
  const table: Record<string, string> = {};
  for (const [en, words] of Object.entries(names)) {
    for (const w of words.split(" ")) table[w] = en;
  }
  return table;
}

/**
 * ISO 8601 of a date string, or undefined when it cannot be read. A date
 * and time with no zone (`2015-04-08T12:46:00`, heise's `<meta name=date>`)
 * is read as UTC: JavaScript reads it in the machine's zone, so the same
 * page gave another publishedAt on every machine.
 */
export function isoDate(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (!text) return undefined;
  const numeric = NUMERIC.exec(text);
  if (numeric) return numericDate(numeric);
  const inner = IN_TEXT.exec(text);
  if (inner) return numericInText(text, inner);
  // V8 reads "2026-02-31" as March 3rd: a day the month does not have is no date.
  const ymd = /^(\d{4})-(\d{2})-(\d{2})/.exec(text);
  if (ymd && !isDay(+ymd[1], +ymd[2], +ymd[3])) return undefined;
  const utc = ZONELESS.test(text) ? text + "Z" : text;
  return parsed(utc) ?? parsed(normalized(text));
}

/** An ISO 8601 date and time with no zone or offset. */
const ZONELESS = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

/**
 * Date.parse of a text that names a year of four digits or a month: V8 reads
 * almost anything as some date ("0" as 2000-01-01, "page 12" as 2001-12-01).
 */
function parsed(text: string): string | undefined {
  if (!/\d{4}/.test(text) && !/\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)/i.test(text)) {
    return undefined;
  }
  return fromMs(Date.parse(text));
}

/** A date all in digits, `05.12.2026` or `5/12/2026`, with a time of day perhaps. */
const NUMERIC = /^(\d{1,2})([./-])(\d{1,2})\2(\d{4})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$/;

/**
 * A date all in digits, which V8 reads month first ("05.12.2026" as May
 * 12th; "31.12.2026" as none). Dots are written day first wherever they are
 * used (`<meta name="date" content="05.12.2026">` on German and Russian
 * sites). Slashes and hyphens are month first in the US and day first most
 * elsewhere: the one above 12 tells which; when both could be a month (and
 * differ) the date is left out rather than guessed. A time of day is read as
 * UTC, as a zoneless ISO one is.
 */
function numericDate(m: RegExpExecArray): string | undefined {
  const date = dayMonthYear(m);
  if (!date) return undefined;
  const [day, month, year] = date;
  const [h, min, sec] = [+(m[5] ?? 0), +(m[6] ?? 0), +(m[7] ?? 0)];
  if (h > 23 || min > 59 || sec > 59) return undefined;
  return fromMs(Date.UTC(year, month - 1, day, h, min, sec));
}

/** Day, month and year of a date in digits (NUMERIC, IN_TEXT), or undefined when it is none or either. */
function dayMonthYear(m: RegExpExecArray): [number, number, number] | undefined {
  const [a, b, year] = [+m[1], +m[3], +m[4]];
  let day: number, month: number;
  if (m[2] === "." || (a > 12 && b <= 12)) [day, month] = [a, b];
  else if (b > 12 && a <= 12) [day, month] = [b, a];
  else if (a === b) [day, month] = [a, b];
  else return undefined;
  return isDay(year, month, day) ? [day, month, year] : undefined;
}

/** A date in digits within a longer text: after a label ("Stand: "), before a zone or AM/PM. */
const IN_TEXT = /(?<![\d./-])(\d{1,2})([./-])(\d{1,2})\2(\d{4})(?![\d./-])/;

const MONTH_NAMES = [
  "Jan",
  "Feb",
  "Mar",
  "Apr",
  "May",
  "Jun",
  "Jul",
  "Aug",
  "Sep",
  "Oct",
  "Nov",
  "Dec",
];

/**
 * A text holding a date in digits (`05.12.2026 14:30 MEZ`, `Stand: 05.12.2026`,
 * `5/12/2026 10:00 AM`), read with the date's day and month told as
 * numericDate tells them, and what follows it (a time, a zone, AM/PM) as
 * Date.parse reads it; with no zone, UTC.
 */
function numericInText(text: string, m: RegExpExecArray): string | undefined {
  const date = dayMonthYear(m);
  if (!date) return undefined;
  const [day, month, year] = date;
  let rest = normalized(
    `${day} ${MONTH_NAMES[month - 1]} ${year}${text.slice(m.index + m[0].length)}`,
  );
  // No zone (the US ones are Date.parse's own, not in ZONES): UTC, as an ISO time with none.
  if (!/[+-]\d{2}:?\d{2}\b|\b(?:UTC|GMT|Z|[ECMP][SD]T)\b/i.test(rest)) rest += " UTC";
  return parsed(rest);
}

/** Whether the month has that day. */
function isDay(year: number, month: number, day: number): boolean {
  return month >= 1 && month <= 12 && day >= 1 &&
    day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** ISO 8601 of a Unix time in seconds (HN `time`, reddit `created_utc`). */
export function isoFromUnixSeconds(value: unknown): string | undefined {
  return typeof value === "number" ? fromMs(value * 1000) : undefined;
}

function fromMs(ms: number): string | undefined {
  if (!Number.isFinite(ms)) return undefined;
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/**
 * Drops weekday and comments, maps month names of other languages and zone
 * names, widens two-digit years.
 */
function normalized(text: string): string {
  let s = text
    .replace(/\([^)]*\)/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  s = s.replace(/\p{L}[\p{L}.]*/gu, (word) => monthOf(word) ?? word)
    // "24 de setembro de 2018", "24. Mai 2018"
    .replace(/ de (?=\p{L}|\d)/gu, " ")
    .replace(/^(\d{1,2})\. /, "$1 ");
  s = s.replace(/\b([A-Z]{1,5})$/, (zone) => ZONES[zone] ?? zone);
  // A leading word is a weekday, in whatever language, unless it is the
  // only month ("Mar, 24 Set 2018": martedi, then settembre).
  s = s.replace(/^([\p{L}-]{1,20})\.?,?\s+(?=\d)/u, (all, word: string) => {
    const rest = s.slice(all.length);
    return isMonth(word) && !/\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b/.test(rest)
      ? all
      : "";
  });
  // "10 Dec 17 13:01:36": a two-digit year before the time.
  s = s.replace(
    /^(\d{1,2} [A-Za-z]{3,9}) (\d{2}) (\d{1,2}:)/,
    (_, dm: string, yy: string, t: string) => `${dm} ${Number(yy) < 70 ? "20" : "19"}${yy} ${t}`,
  );
  return s;
}

/** The English abbreviation of a month name in one of the languages above. */
function monthOf(word: string): string | undefined {
  const key = word.normalize("NFD").replace(/[\u0300-\u036f.]/g, "").toLowerCase();
  // Umlauts written out (maerz, jaenner) and as letters (marz) both occur.
  return MONTHS[key] ?? MONTHS[key.replace(/ae/g, "a")] ??
    // "déc." and "Mär" lose their accent to spell an English month: the
    // word as written is no English month, so it must be mapped too.
    (ENGLISH_MONTH.test(key) ? key[0].toUpperCase() + key.slice(1, 3) : undefined);
}

const ENGLISH_MONTH =
  /^(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sept?(ember)?|oct(ober)?|nov(ember)?|dec(ember)?)$/i;

function isMonth(word: string): boolean {
  return ENGLISH_MONTH.test(word) || monthOf(word) !== undefined;
}
