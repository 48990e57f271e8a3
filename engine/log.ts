/** Structured logging in one of two voices: text for people, JSON lines for machines. */
export interface Logger {
  /** What happened, for the record. */
  info(msg: string, fields?: Record<string, unknown>): void;
  /** Something to look at; the run goes on. */
  warn(msg: string, fields?: Record<string, unknown>): void;
  /** Something failed. */
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** text: lines for people; json: one object per line for machines. */
export type LogFormat = "text" | "json";

/** Logs to stderr so stdout stays free for a stdout sink. */
export function createLogger(format: LogFormat = "text", quiet = false): Logger {
  const write = (level: string, msg: string, fields?: Record<string, unknown>) => {
    if (quiet && level === "info") return;
    const line = format === "json"
      ? JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })
      : `${level === "info" ? "" : level + ": "}${msg}${
        fields && Object.keys(fields).length ? " " + JSON.stringify(fields) : ""
      }`;
    console.error(line);
  };
  return {
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
}

/** A logger that keeps lines in memory, for tests. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (m: string, f?: Record<string, unknown>) =>
    void lines.push(`${level} ${m}${f ? " " + JSON.stringify(f) : ""}`);
  return { lines, info: push("info"), warn: push("warn"), error: push("error") };
}
