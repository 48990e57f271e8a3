import type { RunningFlow } from "../engine/run_flow.ts";
import { fitWidth, formatTable } from "./summary.ts";

/** Redraws the per-stage table in place a few times a second. */
export function showProgress(running: RunningFlow): { stop(): void } {
  const enc = new TextEncoder();
  let lines = 0;
  const draw = () => {
    let table = formatTable(
      running.sources.map((s) => s.toJSON()),
      running.stages.map((s) => s.toJSON()),
      Date.now() - running.startedAt,
    );
    const clear = lines ? `\x1b[${lines}A\x1b[J` : "";
    table = fitWidth(table, columns());
    Deno.stderr.writeSync(enc.encode(clear + table + "\n"));
    lines = table.split("\n").length;
  };
  const timer = setInterval(draw, 250);
  return {
    stop() {
      clearInterval(timer);
      if (lines) Deno.stderr.writeSync(enc.encode(`\x1b[${lines}A\x1b[J`));
      lines = 0;
    },
  };
}

/** The terminal's width; 80 when it cannot be read. */
function columns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}
