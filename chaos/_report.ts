/** The table `deno task chaos` prints: one row per scenario run. */
import type { Result } from "./_run.ts";

const COLUMNS = [
  "scenario",
  "items",
  "lost",
  "dups",
  "stuck",
  "dead letters exp/act",
  "peak RSS MiB",
  "recover s",
  "secs",
  "verdict",
];

export function formatTable(results: Result[]): string {
  const rows = results.map((r) => [
    r.scenario,
    String(r.items),
    String(r.lost),
    String(r.duplicates),
    String(r.stuck),
    `${r.deadLettersExpected}/${r.deadLetters}`,
    r.peakRssMiB.toFixed(0),
    r.recoverSecs === null ? "-" : r.recoverSecs.toFixed(1),
    r.secs.toFixed(0),
    r.status,
  ]);
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    "| " + cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(" | ") +
    " |";
  const out = [line(COLUMNS), "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|"];
  out.push(...rows.map(line));
  const notes = results.filter((r) => r.notes.length > 0 || r.crashes > 0).map((r) =>
    `- ${r.scenario}: ${
      [r.crashes ? `${r.crashes} worker crashes` : "", ...r.notes]
        .filter(Boolean).join("; ")
    }`
  );
  return [...out, "", ...notes].join("\n");
}
