import { terminalSafe } from "../engine/log.ts";
import type { RunningFlow } from "../engine/run_flow.ts";
import { fitWidth, formatTable } from "./summary.ts";
import type { StdoutKind } from "./stdout_kind.ts";

/** The live table: `above` prints a line (a log line) above it rather than over it. */
export interface Progress {
  stop(): void;
  above(print: () => void): void;
}

/**
 * The live table's text: the per-stage table of each running flow, headed
 * by the flow's name when the process runs several (`named`), also once
 * the others have finished, so the one left still says which it is.
 */
export function liveTable(
  running: readonly Pick<RunningFlow, "flow" | "sources" | "stages" | "startedAt">[],
  named: boolean,
  now: number = Date.now(),
): string {
  return running.map((r) =>
    (named ? `${r.flow.name}\n` : "") + formatTable(
      r.sources.map((s) => s.toJSON()),
      r.stages.map((s) => s.toJSON()),
      now - r.startedAt,
    )
  ).join("\n");
}

/** Where a run writes, as far as the live table is concerned. */
export interface Terminal {
  /** Text logs, not --quiet. */
  text: boolean;
  /** stderr, where the table is drawn, is a terminal. */
  stderr: boolean;
  /** Where stdout goes. */
  stdout: StdoutKind;
  /** A flow of the run prints its items to stdout (a stdout sink). */
  printsItems: boolean;
}

/**
 * Whether the live table is drawn. It redraws by moving the cursor up over
 * what it drew: items a stdout sink prints to the same terminal in
 * between, or to a pipe that most often ends there (`| cut`), would be
 * drawn over, so such a run shows the summary alone.
 */
export function drawsTable(t: Terminal): boolean {
  return t.text && t.stderr && !(t.printsItems && t.stdout !== "file");
}

/**
 * Redraws the per-stage table of each running flow (liveTable) in place a
 * few times a second. The redraw
 * moves up as many lines as it drew, so anything else written to stderr
 * meanwhile would be drawn over: log lines go through `above`, which takes
 * the table down, prints, and draws it again below, and so does what a
 * stage's own code prints with console (a step's console.log while you
 * debug it) for as long as the table is shown.
 */
export function showProgress(flows: () => readonly RunningFlow[], named: boolean): Progress {
  const enc = new TextEncoder();
  let lines = 0;
  const draw = () => {
    let table = terminalSafe(liveTable(flows(), named));
    // "\r" first: a ^C echoed by the terminal has moved the cursor off column 1.
    const clear = lines ? `\r\x1b[${lines}A\x1b[J` : "";
    table = fitWidth(table, columns());
    Deno.stderr.writeSync(enc.encode(clear + table + "\n"));
    lines = table.split("\n").length;
  };
  const timer = setInterval(draw, 250);
  const takeDown = () => {
    if (lines) Deno.stderr.writeSync(enc.encode(`\r\x1b[${lines}A\x1b[J`));
    lines = 0;
  };
  let stopped = false;
  let printing = false;
  const above = (print: () => void) => {
    if (printing) return print();
    printing = true;
    try {
      takeDown();
      print();
      if (!stopped) draw();
    } finally {
      printing = false;
    }
  };
  const restore = routeConsole(above);
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
      restore();
      takeDown();
    },
    above,
  };
}

const CONSOLE_METHODS = ["log", "info", "debug", "warn", "error", "trace", "dir", "table"] as const;

/** Sends console's printing methods through `above` until the returned function is called. */
function routeConsole(above: (print: () => void) => void): () => void {
  const originals = CONSOLE_METHODS.map((name) =>
    [name, console[name] as (...args: unknown[]) => void] as const
  );
  for (const [name, original] of originals) {
    // deno-lint-ignore no-explicit-any
    (console as any)[name] = (...args: unknown[]) => above(() => original.apply(console, args));
  }
  return () => {
    // deno-lint-ignore no-explicit-any
    for (const [name, original] of originals) (console as any)[name] = original;
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
