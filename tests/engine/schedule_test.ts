import assert from "node:assert/strict";
import { type Clock, everyDelay, nextCronPoll, parseCron } from "../../engine/schedule.ts";

/** A clock stopped at `iso`, whose random draws come from `draws` in turn. */
function clockAt(iso: string, draws: number[] = [0]): Clock {
  let i = 0;
  return { now: () => Date.parse(iso), random: () => draws[i++ % draws.length] };
}

const iso = (ms: number | undefined) => ms === undefined ? undefined : new Date(ms).toISOString();

Deno.test("a cron source never polled waits for its first tick, in UTC by default", () => {
  const poll = nextCronPoll(parseCron("*/5 * * * *"), undefined, clockAt("2026-06-01T10:02:30Z"));
  assert.equal(iso(poll?.tick), "2026-06-01T10:05:00.000Z");
  assert.equal(poll?.at, poll?.tick);
  assert.equal(poll?.late, false);
});

Deno.test("six fields put seconds first; the tick after a polled one is the next", () => {
  const every2s = parseCron("*/2 * * * * *");
  const last = Date.parse("2026-06-01T10:00:04Z");
  const poll = nextCronPoll(every2s, last, clockAt("2026-06-01T10:00:04.300Z"));
  assert.equal(iso(poll?.tick), "2026-06-01T10:00:06.000Z");
  assert.equal(poll?.late, false);
});

Deno.test("ticks missed since the last poll are caught up once, for the latest of them, now", () => {
  const hourly = parseCron("0 * * * *");
  const last = Date.parse("2026-06-01T06:00:00Z");
  const poll = nextCronPoll(hourly, last, clockAt("2026-06-01T10:17:00Z"));
  assert.equal(iso(poll?.tick), "2026-06-01T10:00:00.000Z");
  assert.equal(iso(poll?.at), "2026-06-01T10:17:00.000Z");
  assert.equal(poll?.late, true);
  // Once that one is polled, the next is the next hour: no run of five catch-up polls.
  const after = nextCronPoll(hourly, poll!.tick, clockAt("2026-06-01T10:17:01Z"));
  assert.equal(iso(after?.tick), "2026-06-01T11:00:00.000Z");
  assert.equal(after?.late, false);
});

Deno.test("a stored tick ahead of this process's clock is not polled again", () => {
  const every2s = parseCron("*/2 * * * * *");
  const last = Date.parse("2026-06-01T10:00:06Z"); // another process, its clock 1 s ahead
  const poll = nextCronPoll(every2s, last, clockAt("2026-06-01T10:00:05.100Z"));
  assert.equal(iso(poll?.tick), "2026-06-01T10:00:08.000Z");
});

Deno.test("tz reads the expression in that zone, across a daylight-saving change", () => {
  const nine = parseCron("0 9 * * *", "Europe/Berlin");
  const winter = nextCronPoll(nine, undefined, clockAt("2026-03-28T12:00:00Z"));
  assert.equal(iso(winter?.tick), "2026-03-29T07:00:00.000Z"); // CEST began that night
  const before = nextCronPoll(nine, undefined, clockAt("2026-03-27T12:00:00Z"));
  assert.equal(iso(before?.tick), "2026-03-28T08:00:00.000Z"); // still CET
  const ny = nextCronPoll(
    parseCron("30 8 * * 1-5", "America/New_York"),
    undefined,
    clockAt(
      "2026-01-02T20:00:00Z", // a Friday
    ),
  );
  assert.equal(iso(ny?.tick), "2026-01-05T13:30:00.000Z"); // Monday 08:30 EST
});

Deno.test("jitter delays each poll by a random part of it, drawn per poll", () => {
  const minutely = parseCron("* * * * *");
  const clock = clockAt("2026-06-01T10:00:30Z", [0.5, 0.999, 0]);
  const polls = [0, 1, 2].map(() => nextCronPoll(minutely, undefined, clock, 10_000)!);
  const tick = Date.parse("2026-06-01T10:01:00Z");
  assert.deepEqual(polls.map((p) => p.tick), [tick, tick, tick]);
  assert.deepEqual(polls.map((p) => p.at - p.tick), [5_000, 9_990, 0]);
  // A missed tick is polled now plus its jitter.
  const late = nextCronPoll(
    minutely,
    tick - 120_000,
    clockAt("2026-06-01T10:01:10Z", [0.25]),
    4_000,
  );
  assert.equal(iso(late?.tick), "2026-06-01T10:01:00.000Z");
  assert.equal(iso(late?.at), "2026-06-01T10:01:11.000Z");
  // every: the interval plus the draw; no jitter, no draw.
  assert.equal(everyDelay(60_000, clockAt("2026-06-01T10:00:00Z", [0.5]), 2_000), 61_000);
  assert.equal(everyDelay(60_000, clockAt("2026-06-01T10:00:00Z", [0.5])), 60_000);
});

Deno.test("a bad cron expression or time zone says what is wrong", () => {
  assert.throws(
    () => parseCron("*/5 * * *"),
    /expected a cron expression of 5 fields .* got 4 field/,
  );
  assert.throws(
    () => parseCron("61 * * * *"),
    /invalid cron expression "61 \* \* \* \*": .*minute/i,
  );
  assert.throws(() => parseCron("0 25 * * *"), /hour/i);
  assert.throws(() => parseCron("*/5 * * 13 *"), /: month 13 is out of range 1-12$/);
  // croner took a range past the field's end, and said a day of 0 as -1.
  assert.throws(() => parseCron("1-60/5 * * * *"), /: minute 60 is out of range 0-59$/);
  assert.throws(() => parseCron("* * 0 * *"), /: day 0 is out of range 1-31$/);
  assert.throws(() => parseCron("60 * * * * *"), /: second 60 is out of range 0-59$/);
  // Names, and croner's own L, W, # and ?, are croner's to read.
  parseCron("0 9 L * MON-FRI");
  parseCron("0 9 * JAN,JUL 1#2");
  assert.throws(() => parseCron("* * * * *", "Mars/Base"), /unknown time zone "Mars\/Base"/);
  assert.throws(() => parseCron("0 0 30 2 *"), /never fires|invalid/);
});
