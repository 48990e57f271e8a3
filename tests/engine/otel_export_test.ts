import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { withServer } from "../_http_server.ts";

/**
 * The real thing: `OTEL_DENO=true` with Deno's own OTLP exporter, pointed
 * (OTLP/HTTP, JSON) at a receiver on 127.0.0.1 that keeps what it is sent.
 */
const MAIN = join(dirname(dirname(dirname(fileURLToPath(import.meta.url)))), "main.ts");
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"];

interface Received {
  spans: { name: string; traceId: string; attributes: Record<string, unknown> }[];
  logs: { severity: string; body: string }[];
}

/** A value of an OTLP/JSON attribute, whatever its type. */
function valueOf(v: Record<string, unknown>): unknown {
  return v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ??
    v.doubleValue ?? v.boolValue;
}

// deno-lint-ignore no-explicit-any
type Json = any;

function receive(received: Received) {
  return async (req: Request) => {
    const body: Json = await req.json().catch(() => ({}));
    const path = new URL(req.url).pathname;
    if (path === "/v1/traces") {
      for (const rs of body.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            const attributes = Object.fromEntries(
              (s.attributes ?? []).map((a: Json) => [a.key, valueOf(a.value)]),
            );
            received.spans.push({ name: s.name, traceId: s.traceId, attributes });
          }
        }
      }
    } else if (path === "/v1/logs") {
      for (const rl of body.resourceLogs ?? []) {
        for (const sl of rl.scopeLogs ?? []) {
          for (const r of sl.logRecords ?? []) {
            received.logs.push({ severity: r.severityText, body: String(r.body?.stringValue) });
          }
        }
      }
    }
    return Response.json({});
  };
}

async function runExported(console: "replace" | "capture") {
  const dir = await Deno.makeTempDir({ prefix: "millrace-otel-" });
  const flow = join(dir, "flow.yaml");
  await Deno.writeTextFile(
    flow,
    `name: otel
output: ${dir}
sources:
  gen: { kind: generator, count: 20, duplicates: 0, nearDuplicates: 0, invalid: 0 }
pipeline:
  - validate: {}
  - publish: [ { stdout: {} } ]
`,
  );
  const received: Received = { spans: [], logs: [] };
  let out!: Deno.CommandOutput;
  await withServer(receive(received), async (origin) => {
    out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...PERMS, MAIN, flow],
      env: {
        OTEL_DENO: "true",
        OTEL_DENO_CONSOLE: console,
        OTEL_EXPORTER_OTLP_ENDPOINT: origin,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_SERVICE_NAME: "millrace-test",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
  });
  await Deno.remove(dir, { recursive: true });
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { received, code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("OTEL_DENO=true exports the stage spans and info logs at INFO; stdout keeps only items", async () => {
  const { received, code, stdout, stderr } = await runExported("replace");
  assert.equal(code, 0, stderr);
  const lines = stdout.trim().split("\n");
  assert.equal(lines.length, 20, "nothing but the 20 items on stdout");
  for (const line of lines) assert.ok(JSON.parse(line).payload.url, line);
  assert.match(stderr, /otel: running/, "lines are still printed, on stderr");

  const running = received.logs.find((l) => l.body.includes("otel: running"));
  assert.ok(running, JSON.stringify(received.logs));
  assert.equal(running.severity, "INFO");

  const names = received.spans.map((s) => s.name).sort();
  assert.deepEqual(names, [
    "millrace.source gen",
    "millrace.stage publish",
    "millrace.stage validate",
  ]);
  const validate = received.spans.find((s) => s.name === "millrace.stage validate")!;
  assert.equal(validate.attributes["millrace.flow"], "otel");
  assert.equal(validate.attributes["millrace.batch.size"], 20);
  assert.equal(validate.attributes["millrace.batch.out"], 20);
  assert.equal(new Set(received.spans.map((s) => s.traceId)).size, 1, "one trace, source to sink");
});

Deno.test("under OTEL_DENO_CONSOLE=capture stdout stays the sink's, and run says how to export info", async () => {
  const { received, code, stdout, stderr } = await runExported("capture");
  assert.equal(code, 0, stderr);
  assert.equal(stdout.trim().split("\n").length, 20);
  assert.match(stderr, /set OTEL_DENO_CONSOLE=replace/);
  assert.equal(received.spans.length, 3);
  assert.ok(!received.logs.some((l) => l.severity === "ERROR"), "no info line exported as ERROR");
});
