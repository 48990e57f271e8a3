/** Structured logging in one of two voices: text for people, JSON lines for machines. */
export interface Logger {
  /** Detail nobody needs unless asked for (`--log-level debug`); optional for hand-made loggers. */
  debug?(msg: string, fields?: Record<string, unknown>): void;
  /** What a person watching the run wants to see (the start line, a missed tick polled). */
  info(msg: string, fields?: Record<string, unknown>): void;
  /** Something went wrong and was handled (a retry, a Redis outage waited out). */
  warn(msg: string, fields?: Record<string, unknown>): void;
  /** Something failed and was not (a source that cannot be read, a run that ends). */
  error(msg: string, fields?: Record<string, unknown>): void;
  /**
   * A logger whose lines also carry `context` (flow, stage, source): as
   * fields of each JSON line, so a machine can filter on them. Text lines
   * already name them in the message. Optional: see withContext.
   */
  with?(context: Record<string, string>): Logger;
}

/** `text`: a line for people; `json`: one object per line, context and fields as keys. */
export type LogFormat = "text" | "json";
/** How much a line matters; a logger writes the lines at or above its level. */
export type LogLevel = "debug" | "info" | "warn" | "error";
/** The levels, least severe first: a logger writes its level and those after it. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** `log` with `context` on its lines when it can carry it, else `log` itself. */
export function withContext(log: Logger, context: Record<string, string>): Logger {
  return log.with?.(context) ?? log;
}

/**
 * `log` with `prefix` (`flow/stage: `) before each message, for a client a
 * component hands the run's logger to: its lines then say whose they are,
 * as the stages' own lines do (context is kept for JSON lines).
 */
export function withPrefix(log: Logger, prefix: string): Logger {
  const put =
    (level: "info" | "warn" | "error") => (msg: string, fields?: Record<string, unknown>) =>
      log[level](prefix + msg, fields);
  return {
    ...(log.debug ? { debug: (msg, fields) => log.debug!(prefix + msg, fields) } : {}),
    info: put("info"),
    warn: put("warn"),
    error: put("error"),
    ...(log.with ? { with: (context) => withPrefix(log.with!(context), prefix) } : {}),
  };
}

/** Where a finished line goes, with its level. */
export type LineOut = (level: LogLevel, line: string) => void;

/** How createLogger filters and where it writes. */
export interface LoggerOptions {
  /** Lines below this level are not written (default info). */
  level?: LogLevel;
  /** Default: stderr, exported by Deno's OpenTelemetry at the line's level (see stderrOut). */
  out?: LineOut;
}

/**
 * Logs to stderr so stdout stays free for a stdout sink. `options` may
 * still be the boolean `quiet` of earlier versions (true: level warn).
 */
export function createLogger(
  format: LogFormat = "text",
  options: LoggerOptions | boolean = {},
): Logger {
  if (typeof options === "boolean") options = { level: options ? "warn" : "info" };
  const min = LOG_LEVELS.indexOf(options.level ?? "info");
  const out = options.out ?? stderrOut();
  const make = (context: Record<string, string>): Logger => {
    const write = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
      if (LOG_LEVELS.indexOf(level) < min) return;
      const line = format === "json"
        ? JSON.stringify({ time: new Date().toISOString(), level, msg, ...context, ...fields })
        : terminalSafe(
          `${level === "info" ? "" : level + ": "}${msg}${
            fields && Object.keys(fields).length ? " " + JSON.stringify(fields) : ""
          }`,
        );
      out(level, line);
    };
    return {
      debug: write("debug"),
      info: write("info"),
      warn: write("warn"),
      error: write("error"),
      with: (more) => make({ ...context, ...more }),
    };
  };
  return make({});
}

/**
 * How Deno's OpenTelemetry integration treats `console` in this process:
 * `none` (OTEL_DENO off, OTEL_DENO_CONSOLE=ignore, or OTEL_SDK_DISABLED),
 * `capture` (the default with OTEL_DENO=true: printed and exported) or
 * `replace` (exported only, not printed). Read once at start, as Deno does.
 */
export type ConsoleExport = "none" | "capture" | "replace";

/** This process's ConsoleExport, from the variables Deno read (`env` for tests). */
export function consoleExport(env: (name: string) => string | undefined = readEnv): ConsoleExport {
  const on = (v?: string) => v === "true" || v === "1";
  if (!on(env("OTEL_DENO")?.toLowerCase()) || on(env("OTEL_SDK_DISABLED")?.toLowerCase())) {
    return "none";
  }
  const mode = env("OTEL_DENO_CONSOLE");
  return mode === "ignore" ? "none" : mode === "replace" ? "replace" : "capture";
}

/**
 * Lines to stderr, exported by Deno's OpenTelemetry integration with their
 * own level. Deno gives a console line its severity from the method
 * (debug, info, warn, error) and, when it also prints it, its stream from
 * the same method: `console.info` is INFO and goes to stdout, which belongs
 * to the stdout sink. So a line is printed here, on stderr, and exported
 * through `console[level]` only where that prints nothing (`replace`).
 * Under `capture`, warnings and errors go through console.warn/error
 * (stderr, their own level); info and debug lines are printed but not
 * exported, since no console method would export them as INFO without
 * writing them to stdout (run says so at start: set OTEL_DENO_CONSOLE=replace).
 */
export function stderrOut(mode: ConsoleExport = consoleExport()): LineOut {
  if (mode === "none") return (_level, line) => console.error(line);
  return (level, line) => {
    if (mode === "capture" && (level === "warn" || level === "error")) {
      return console[level](line);
    }
    printErr(line);
    if (mode === "replace") console[level](line);
  };
}

/**
 * `text` fit for a terminal: control characters but line breaks and tabs
 * written as escapes (`\u001b`). What a line quotes comes from the web (a
 * title, a feed's error), and an escape sequence in it would reach the
 * operator's terminal: retitle the window, clear the screen, draw a line
 * of its own.
 */
export function terminalSafe(text: string): string {
  return CONTROL.test(text)
    ? text.replace(CONTROL_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    : text;
}

// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const CONTROL_ALL = new RegExp(CONTROL.source, "g");

/** Writes a line to stderr, never through console (which OTEL_DENO_CONSOLE=replace silences). */
export function printErr(text: string): void {
  writeAll(Deno.stderr, text + "\n");
}

/** Writes a line to stdout, never through console. */
export function printOut(text: string): void {
  writeAll(Deno.stdout, text + "\n");
}

const encoder = new TextEncoder();
function writeAll(to: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(to.writeSync(bytes));
}

/** An environment variable, or undefined when unset or not permitted (no prompt). */
function readEnv(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") return;
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** A logger that keeps lines in memory, for tests. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (m: string, f?: Record<string, unknown>) =>
    void lines.push(`${level} ${m}${f ? " " + JSON.stringify(f) : ""}`);
  const log = {
    lines,
    debug: push("debug"),
    info: push("info"),
    warn: push("warn"),
    error: push("error"),
    with: () => log,
  };
  return log;
}
