import type { FlowReport } from "../engine/run_flow.ts";
import { maskUrlsIn } from "../engine/mask_url.ts";
import type { SourceStats, StageStats } from "../engine/stats.ts";
import { UNENCODABLE } from "../engine/dead_letters.ts";

/**
 * The table a person reads at the end of a run (and, redrawn, while it
 * runs): per stage what came in, what went out, and what was dropped or
 * refused and why, so "where did my items go" has an answer without logs.
 */
export function formatTable(
  sources: readonly ReturnType<SourceStats["toJSON"]>[],
  stages: readonly ReturnType<StageStats["toJSON"]>[],
  elapsedMs: number,
): string {
  const secs = Math.max(elapsedMs, 1) / 1000;
  const rows: string[][] = [["stage", "in", "out", "dropped", "dead", "items/s", "why"]];
  for (const s of sources) {
    rows.push([
      `source ${s.name}`,
      "",
      String(s.emitted),
      "",
      s.deadLettered ? String(s.deadLettered) : "",
      rate(s.emitted, secs),
      [
        // lastError is masked where it is recorded; masked again for stats read back from elsewhere.
        s.errors ? `${s.errors} read error(s): ${maskUrlsIn(s.lastError ?? "")}` : `${s.kind}`,
        ...(s.deadLettered ? [`${s.deadLettered} ${UNENCODABLE}`] : []),
      ].join(", "),
    ]);
  }
  for (const s of stages) {
    const dropped = total(s.dropped);
    const dead = total(s.rejected) + s.failed;
    const failedItems = s.failed - (s.failedUpdates ?? 0);
    const why = [
      ...Object.entries(s.dropped).map(([r, n]) => `${n} ${r}`),
      ...Object.entries(s.rejected).map(([r, n]) => `${n} ${r}`),
      ...(failedItems ? [`${failedItems} failed`] : []),
      ...(s.failedUpdates ? [`${s.failedUpdates} merge updates failed`] : []),
      ...(s.retries ? [`${s.retries} retries`] : []),
      ...Object.entries(s.usage ?? {}).map(([name, n]) => `${n} ${name}`),
    ].join(", ").replace(/\s+/g, " "); // a stage's own reason or name with a newline split the table
    rows.push([
      s.id,
      String(s.received),
      String(s.emitted),
      String(dropped),
      String(dead),
      rate(s.received, secs),
      why,
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) =>
    r.map((
      cell,
      c,
    ) => (c === 0 || c === r.length - 1 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
      .join("  ").trimEnd()
  ).join("\n");
}

export function formatReport(report: FlowReport): string {
  // Opening is said when it was long enough to notice: the run's own time leaves it out.
  const opened = (report.openMs ?? 0) >= 1000
    ? ` (after ${((report.openMs ?? 0) / 1000).toFixed(2)}s opening its stages and sinks)`
    : "";
  // A source's failed read can make the exit code 1 ("finished" alone read as success), and a
  // stopped run's first line says them too (see failedSource in flow_run.ts for the code).
  const failed = report.sources.reduce((n, s) => n + s.errors, 0);
  const reads = `${failed} failed source read${failed === 1 ? "" : "s"}`;
  const how = failed === 0
    ? (report.stopped ? "stopped" : "finished")
    : report.stopped
    ? `stopped after ${reads}`
    : `finished with ${reads}`;
  const head = `${report.flow}: ${how} in ${
    (report.durationMs / 1000).toFixed(2)
  }s${opened}: ${report.published} published, ${report.deadLettered} dead letter${
    report.deadLettered === 1 ? "" : "s"
  }`;
  return head + "\n" + formatTable(report.sources, report.stages, report.durationMs);
}

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function rate(n: number, secs: number): string {
  const r = n / secs;
  return r >= 1000 ? `${(r / 1000).toFixed(1)}k` : r.toFixed(0);
}

/**
 * Cuts every line to fit `columns`, ending a cut line with "…" and keeping
 * one column free so no line reaches the edge: the live table is redrawn by
 * moving the cursor up one row per line, and a line that wraps takes two
 * rows, which would leave stale lines behind.
 */
export function fitWidth(text: string, columns: number): string {
  const max = Math.max(1, columns - 1);
  return text.split("\n").map((line) => line.length > max ? line.slice(0, max - 1) + "…" : line)
    .join("\n");
}
