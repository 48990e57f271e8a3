/**
 * Dates as sources write them, turned into ISO 8601 or left out. Feeds in the
 * wild carry RFC 822 dates with zone names ("PST", "UTC"), two-digit years,
 * trailing whitespace and comments; a date that cannot be read is dropped, it
 * never fails the item.
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
};

/** ISO 8601 of a date string, or undefined when it cannot be read. */
export function isoDate(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (!text) return undefined;
  return fromMs(Date.parse(text)) ?? fromMs(Date.parse(normalized(text)));
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

/** Drops weekday and comments, maps zone names, widens two-digit years. */
function normalized(text: string): string {
  let s = text
    .replace(/\([^)]*\)/g, " ")
    .replace(/^[A-Za-z]{2,10}\.?,?\s+/, "")
    .replace(/\s+/g, " ")
    .trim();
  s = s.replace(/\b([A-Z]{1,5})$/, (zone) => ZONES[zone] ?? zone);
  // "10 Dec 17 13:01:36": a two-digit year before the time.
  s = s.replace(
    /^(\d{1,2} [A-Za-z]{3,9}) (\d{2}) (\d{1,2}:)/,
    (_, dm: string, yy: string, t: string) => `${dm} ${Number(yy) < 70 ? "20" : "19"}${yy} ${t}`,
  );
  return s;
}
