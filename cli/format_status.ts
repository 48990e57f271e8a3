import type { FlowStatus, StageStatus } from "./status.ts";

/**
 * A table for people: one row per stage lane, then who holds pending work,
 * then notes.
 */
export function formatStatus(status: FlowStatus): string {
  const sampled = status.sampleMs > 0
    ? `rates over ${(status.sampleMs / 1000).toFixed(1)}s`
    : "rates not sampled";
  const where = status.redis ? ` in ${status.redis}` : "";
  const lines = [
    `flow ${status.flow} (prefix ${status.prefix})${where} at ${status.time}, ${sampled}`,
  ];
  const header = ["stage", "lane", "length", "lag", "pending", "consumers", "entries/s", "items/s"];
  const rows: string[][] = [[...header, "dead letters"]];
  for (const stage of status.stages) {
    stage.lanes.forEach((lane, i) => {
      rows.push([
        i === 0 ? stage.id : "",
        lane.lane,
        lane.exists ? String(lane.length) : "-",
        lane.lag !== null ? String(lane.lag) : lane.lagAtMost !== null ? `≤${lane.lagAtMost}` : "?",
        String(lane.pending),
        String(lane.consumers.length),
        rate(lane.entriesPerSec),
        rate(lane.itemsPerSec),
        i === 0 ? String(stage.deadLetters) : "",
      ]);
    });
  }
  lines.push(...table(rows));
  lines.push(
    "  length: entries in the stream, read or not, until trimmed; lag: entries the stage has " +
      "not read yet; pending: read, not yet acknowledged",
  );
  if (status.stages.some((s) => s.lanes.some((l) => l.itemsPerSec === null && l.entriesPerSec))) {
    // A stage that keeps up has its stream trimmed to nothing: no entry is left to count from.
    lines.push(
      "  items/s ?: no entry left in the stream to count items per entry from (a stage keeping " +
        "up has its read entries trimmed); entries/s is measured",
    );
  }
  const holders = status.stages.flatMap((s) =>
    s.lanes.flatMap((l) =>
      l.consumers.map((c) =>
        `  ${s.id}${l.lane === "high" ? " (high)" : ""}: ${c.name}, pending ${c.pending}, ` +
        `idle ${seconds(c.idleMs)}`
      )
    )
  );
  if (holders.length > 0) lines.push("consumers:", ...holders);
  if (status.sources.length > 0) {
    lines.push(
      "sources:",
      ...status.sources.map((s) => {
        const state = s.done
          ? "done: it emitted everything (`reset` starts the flow over)"
          : s.heldBy !== null && s.leaseMs === null
          ? `held by ${s.heldBy} with no expiry: no process will take it over (set by hand?)`
          : s.heldBy !== null
          ? `read by ${s.heldBy} (its lease runs ${
            seconds(s.leaseMs ?? 0)
          } more; a crashed holder's runs out, then another process takes over)`
          : "not being read: no process holds it";
        return `  ${s.name} (${s.kind}): ${state}${
          s.lastTick ? `; last cron tick ${s.lastTick}` : ""
        }`;
      }),
    );
  }
  lines.push(`dead letters: ${status.deadLetters.total}`);
  const notes = [...stageNotes(status.stages), ...status.notes];
  if (notes.length > 0) lines.push("notes:", ...notes.map((n) => `  - ${n}`));
  return lines.join("\n");
}

/**
 * Each stage's notes, `stage: note`; stages with the same note (those fused
 * into one step) share one line, `dedupe, enrich: note`, in pipeline order.
 */
function stageNotes(stages: StageStatus[]): string[] {
  const byNote = new Map<string, string[]>();
  for (const stage of stages) {
    for (const note of stage.notes) byNote.set(note, [...byNote.get(note) ?? [], stage.id]);
  }
  return [...byNote].map(([note, ids]) => `${ids.join(", ")}: ${note}`);
}

function rate(value: number | null): string {
  return value === null ? "?" : value.toFixed(1);
}

function seconds(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 60_000)}m`;
}

/** Left-aligned text, right-aligned numbers, two spaces between columns. */
function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) =>
    r.map((cell, c) => c < 2 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])).join("  ")
      .trimEnd()
  );
}
