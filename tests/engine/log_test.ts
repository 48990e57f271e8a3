import assert from "node:assert/strict";
import { z } from "zod";
import type { Actor } from "../../engine/actor.ts";
import { defineFlow } from "../../config/define_flow.ts";
import { MemoryDeadLetters } from "../../engine/dead_letters.ts";
import { consoleExport, createLogger, type LogLevel, terminalSafe } from "../../engine/log.ts";
import { runFlow } from "../../engine/run_flow.ts";
import { testRegistry } from "../../testing.ts";

/** A logger whose lines are kept, with their levels, instead of printed. */
function captured(format: "text" | "json", level?: LogLevel) {
  const lines: [LogLevel, string][] = [];
  const log = createLogger(format, { level, out: (l, line) => void lines.push([l, line]) });
  return { log, lines };
}

Deno.test("each line is handed out with its own level, info included", () => {
  const { log, lines } = captured("text", "debug");
  log.debug!("d");
  log.info("i");
  log.warn("w", { n: 1 });
  log.error("e");
  assert.deepEqual(lines, [["debug", "debug: d"], ["info", "i"], ["warn", 'warn: w {"n":1}'], [
    "error",
    "error: e",
  ]]);
});

Deno.test("lines below the level are not written", () => {
  const { log, lines } = captured("text", "warn");
  log.debug!("d");
  log.info("i");
  log.warn("w");
  assert.deepEqual(lines.map(([l]) => l), ["warn"]);
  const info = captured("text");
  info.log.debug!("d");
  info.log.info("i");
  assert.deepEqual(info.lines.map(([l]) => l), ["info"], "the default level is info");
});

Deno.test("JSON lines carry the context as fields; text lines leave it to the message", () => {
  const json = captured("json");
  json.log.with!({ flow: "f" }).with!({ stage: "s" }).warn("f/s: slow", { attempt: 2 });
  const line = JSON.parse(json.lines[0][1]);
  assert.equal(line.level, "warn");
  assert.equal(line.msg, "f/s: slow");
  assert.equal(line.flow, "f");
  assert.equal(line.stage, "s");
  assert.equal(line.attempt, 2);
  const text = captured("text");
  text.log.with!({ flow: "f" }).info("f: started");
  assert.deepEqual(text.lines, [["info", "f: started"]]);
});

Deno.test("a stage's retry warning names its flow and stage as JSON fields", async () => {
  let calls = 0;
  const registry = testRegistry().stage({
    kind: "flaky",
    summary: "fails its first batch",
    schema: z.strictObject({}),
    create: (): Actor => ({
      handle(batch, out) {
        if (calls++ === 0) throw new Error("flaked");
        for (const item of batch) out.emit(item);
      },
    }),
  });
  const flow = defineFlow({
    name: "logged",
    output: await Deno.makeTempDir({ prefix: "millrace-log-" }),
    sources: { m: { kind: "memory", items: [{ title: "a", url: "https://a.test/" }] } },
    pipeline: [{ flaky: {} }],
  }, registry);
  const { log, lines } = captured("json");
  await runFlow(flow, { registry, log, deadLetters: new MemoryDeadLetters(), backoffBase: 1 });
  const retry = lines.map(([, l]) => JSON.parse(l)).find((l) => l.msg.includes("retrying"));
  assert.ok(retry, "the retry was logged");
  assert.equal(retry.level, "warn");
  assert.equal(retry.flow, "logged");
  assert.equal(retry.stage, "flaky");
  await Deno.remove(flow.outDir, { recursive: true });
});

Deno.test("console export follows OTEL_DENO and OTEL_DENO_CONSOLE as Deno reads them", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.equal(consoleExport(env({})), "none");
  assert.equal(consoleExport(env({ OTEL_DENO: "false" })), "none");
  assert.equal(consoleExport(env({ OTEL_DENO: "true" })), "capture");
  assert.equal(consoleExport(env({ OTEL_DENO: "1", OTEL_DENO_CONSOLE: "replace" })), "replace");
  assert.equal(consoleExport(env({ OTEL_DENO: "true", OTEL_DENO_CONSOLE: "ignore" })), "none");
  assert.equal(consoleExport(env({ OTEL_DENO: "true", OTEL_SDK_DISABLED: "true" })), "none");
});

Deno.test("a text line shows a control character a title brought as an escape, never sends it", () => {
  // A hostile feed's title holding a terminal's escape sequences: set the window title, clear
  // the screen, draw a line of its own.
  const title = "News\x1b]0;owned\x07\x1b[2J\x1b[31mall dead letters replayed OK\x1b[0m";
  const lines: string[] = [];
  const log = createLogger("text", { out: (_level, line) => void lines.push(line) });
  log.warn(`feed: refused ${title}`, { title });
  assert.equal(lines.length, 1);
  const control = [...lines[0]].filter((c) => c < " " || (c >= "\x7f" && c <= "\x9f"));
  assert.deepEqual(control, []);
  assert.match(lines[0], /^warn: feed: refused News\\u001b\]0;owned\\u0007\\u001b\[2J/);
  // Line breaks and tabs a message means stay as they are.
  assert.equal(terminalSafe("a\n\tb"), "a\n\tb");
});
