import assert from "node:assert/strict";
import { formatStatus } from "../../cli/format_status.ts";
import type { FlowStatus, LaneStatus } from "../../cli/status.ts";

function lane(over: Partial<LaneStatus>): LaneStatus {
  return {
    lane: "normal",
    stream: "millrace:{ops}:in:x",
    exists: true,
    length: 0,
    group: true,
    lag: 0,
    lagAtMost: null,
    entriesRead: 0,
    pending: 0,
    consumers: [],
    itemsPerEntry: null,
    entriesPerSec: 0,
    itemsPerSec: 0,
    ...over,
  };
}

const STATUS: FlowStatus = {
  flow: "ops",
  prefix: "millrace",
  redis: "redis://:***@cache:6379",
  time: "2026-01-01T00:00:00.000Z",
  sampleMs: 1000,
  ran: true,
  sources: [
    { name: "news", kind: "rss", done: false, heldBy: "host-a:1", leaseMs: 21_000, lastTick: null },
    { name: "archive", kind: "json", done: true, heldBy: null, leaseMs: null, lastTick: null },
    {
      name: "hourly",
      kind: "rss",
      done: false,
      heldBy: null,
      leaseMs: null,
      lastTick: "2026-01-01T00:00:00.000Z",
    },
  ],
  stages: [
    {
      id: "validate",
      kind: "validate",
      lanes: [
        lane({
          length: 5,
          lag: 1,
          pending: 3,
          entriesPerSec: 2.5,
          itemsPerSec: 250,
          consumers: [
            { name: "host-a:1", pending: 2, idleMs: 1200 },
            { name: "host-b:7", pending: 1, idleMs: 180_000 },
          ],
        }),
        lane({
          lane: "high",
          length: 12,
          lag: null,
          lagAtMost: 12,
          entriesPerSec: null,
          itemsPerSec: null,
        }),
      ],
      deadLetters: 2,
      notes: ["high lane: lag unknown: Redis cannot tell after entries were deleted"],
    },
    {
      id: "publish",
      kind: "publish",
      lanes: [lane({ exists: false })],
      deadLetters: 0,
      notes: ["no input stream: the stage has not started, or is fused into the step before it"],
    },
  ],
  deadLetters: { total: 3, byStage: { validate: 2, renamed: 1 } },
  notes: ['1 dead letter(s) of stage "renamed", which is not in the pipeline any more'],
};

Deno.test("formatStatus lays out one row per lane with aligned columns", () => {
  const lines = formatStatus(STATUS).split("\n");
  assert.equal(
    lines[0],
    "flow ops (prefix millrace) in redis://:***@cache:6379 at 2026-01-01T00:00:00.000Z, rates over 1.0s",
  );
  assert.deepEqual(lines.slice(1, 5), [
    "stage     lane    length  lag  pending  consumers  entries/s  items/s  dead letters",
    "validate  normal       5    1        3          2        2.5    250.0             2",
    "          high        12  ≤12        0          0          ?        ?",
    "publish   normal       -    0        0          0        0.0      0.0             0",
  ]);
});

Deno.test("formatStatus lists who holds pending work, the dead letters and every note", () => {
  const text = formatStatus(STATUS);
  assert.match(
    text,
    /^consumers:\n {2}validate: host-a:1, pending 2, idle 1\.2s\n {2}validate: host-b:7, pending 1, idle 3m$/m,
  );
  assert.match(text, /^dead letters: 3$/m);
  assert.match(text, /^ {2}- validate: high lane: lag unknown/m);
  assert.match(text, /^ {2}- publish: no input stream/m);
  assert.match(text, /^ {2}- 1 dead letter\(s\) of stage "renamed"/m);
});

Deno.test("formatStatus says when rates were not sampled", () => {
  assert.match(formatStatus({ ...STATUS, sampleMs: 0 }).split("\n")[0], /rates not sampled$/);
});

Deno.test("formatStatus says of each source whether it is done and which process reads it", () => {
  const text = formatStatus(STATUS);
  assert.match(
    text,
    /^sources:\n {2}news \(rss\): read by host-a:1 \(its lease runs 21\.0s more; a crashed holder's runs out, then another process takes over\)\n {2}archive \(json\): done: it emitted everything \(`reset` starts the flow over\)\n {2}hourly \(rss\): not being read: no process holds it; last cron tick 2026-01-01T00:00:00\.000Z$/m,
  );
});

Deno.test("formatStatus says a lease with no expiry will not run out", () => {
  const text = formatStatus({
    ...STATUS,
    sources: [{
      name: "news",
      kind: "rss",
      done: false,
      heldBy: "h:1",
      leaseMs: null,
      lastTick: null,
    }],
  });
  assert.match(
    text,
    /^ {2}news \(rss\): held by h:1 with no expiry: no process will take it over/m,
  );
});

Deno.test("formatStatus says once of the stages fused into one step what they share", () => {
  const fused = (id: string) => ({
    id,
    kind: id,
    lanes: [lane({ exists: false })],
    deadLetters: 0,
    notes: ["fused into validate's step, which reads validate's streams"],
  });
  const text = formatStatus({
    ...STATUS,
    stages: [STATUS.stages[0], fused("dedupe"), fused("enrich"), fused("publish")],
    notes: [],
  });
  assert.deepEqual(text.split("\n").slice(text.split("\n").indexOf("notes:")), [
    "notes:",
    "  - validate: high lane: lag unknown: Redis cannot tell after entries were deleted",
    "  - dedupe, enrich, publish: fused into validate's step, which reads validate's streams",
  ]);
});

Deno.test("formatStatus says why items/s is ? for a stage whose entries were read and trimmed", () => {
  // Before: `?` with no word in the legend, for every stage keeping up (its stream trimmed to 0).
  const keepingUp = lane({ entriesPerSec: 9, itemsPerSec: null, itemsPerEntry: null });
  const text = formatStatus({
    ...STATUS,
    stages: [{ id: "dedupe", kind: "dedupe", lanes: [keepingUp], deadLetters: 0, notes: [] }],
  });
  assert.match(
    text,
    /^ {2}items\/s \?: no entry left in the stream to count items per entry from/m,
  );
  assert.doesNotMatch(
    formatStatus(STATUS),
    /items\/s \?:/,
    "said only when a measured rate has no items/s",
  );
});
