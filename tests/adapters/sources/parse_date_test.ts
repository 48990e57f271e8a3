import assert from "node:assert/strict";
import { isoDate } from "../../../adapters/sources/_parse_date.ts";

Deno.test("dates in digits are read day first with dots, by the part above 12 with slashes, else left out", () => {
  // V8 reads them month first: "05.12.2026" (a German <meta name=date>) became May 12th, and
  // "31.12.2026" no date at all.
  assert.equal(isoDate("05.12.2026"), "2026-12-05T00:00:00.000Z");
  assert.equal(isoDate("31.12.2026"), "2026-12-31T00:00:00.000Z");
  assert.equal(isoDate("5.1.2026 14:30"), "2026-01-05T14:30:00.000Z");
  assert.equal(isoDate("25/12/2026"), "2026-12-25T00:00:00.000Z");
  assert.equal(isoDate("12/25/2026"), "2026-12-25T00:00:00.000Z");
  assert.equal(isoDate("07/07/2026"), "2026-07-07T00:00:00.000Z");
  assert.equal(isoDate("05/12/2026"), undefined, "May 12th or December 5th: not guessed");
  assert.equal(isoDate("31.02.2026"), undefined, "no such day");
  // Within a longer text: a zone, a label, AM/PM (V8 read all of these month first).
  assert.equal(isoDate("05.12.2026 14:30:00 +0100"), "2026-12-05T13:30:00.000Z");
  assert.equal(isoDate("05.12.2026 14:30 MEZ"), "2026-12-05T13:30:00.000Z");
  assert.equal(isoDate("Stand: 05.12.2026"), "2026-12-05T00:00:00.000Z");
  assert.equal(isoDate("25/12/2026 10:00 PM"), "2026-12-25T22:00:00.000Z");
  assert.equal(isoDate("5/12/2026 10:00 AM"), undefined, "May 12th or December 5th");
  assert.equal(isoDate("12/25/2026 10:00 AM EST"), "2026-12-25T15:00:00.000Z");
  assert.equal(isoDate("05.12.2026 14:30 PST"), "2026-12-05T22:30:00.000Z");
});

Deno.test("a text that names no four-digit year and no month is no date, and no day rolls over", () => {
  for (const text of ["0", "1", "12", "page 12", "2026-02-31", "2026-13-01"]) {
    assert.equal(isoDate(text), undefined, text);
  }
  // What feeds write still reads.
  assert.equal(isoDate("Tue, 10 Jun 03 04:00:00 GMT"), "2003-06-10T04:00:00.000Z");
  assert.equal(isoDate("2026-02-28"), "2026-02-28T00:00:00.000Z");
  assert.equal(isoDate("2015-04-08T12:46:00"), "2015-04-08T12:46:00.000Z");
  assert.equal(isoDate("Sat, 05 Dec 2026 10:00:00 +0100"), "2026-12-05T09:00:00.000Z");
});
