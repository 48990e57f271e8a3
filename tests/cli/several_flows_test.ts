import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const MAIN = join(ROOT, "main.ts");
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"];

/** A small memory flow named `name` in `dir`, with its output in dir/out-<name>. */
async function flow(dir: string, name: string, source: string): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  await Deno.writeTextFile(
    file,
    `name: ${name}
output: out-${name}
sources: { s: ${source} }
pipeline:
  - validate: { require: [title, url] }
  - publish: [ { jsonl: { path: items.jsonl } } ]
`,
  );
  return file;
}

function start(args: string[], cwd: string) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, MAIN, ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

const lineCount = async (file: string) =>
  (await Deno.readTextFile(file)).split("\n").filter((l) => l.trim()).length;

Deno.test("two flow files run side by side, each reported under its own name", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-two-" });
  const a = await flow(
    dir,
    "alpha",
    "{ kind: generator, count: 200, seed: 1, invalid: 0, duplicates: 0, nearDuplicates: 0 }",
  );
  const b = await flow(
    dir,
    "beta",
    "{ kind: generator, count: 300, seed: 2, invalid: 0, duplicates: 0, nearDuplicates: 0 }",
  );
  const out = await start(["--log-format", "json", a, b], dir).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  const logs = stderr.trim().split("\n").map((l) => JSON.parse(l));
  const reports = logs.filter((l) => l.report).map((l) => [l.flow, l.report.published]).sort();
  assert.deepEqual(reports, [["alpha", 200], ["beta", 300]]);
  assert.ok(logs.every((l) => l.flow === "alpha" || l.flow === "beta"), "each line names its flow");
  assert.equal(await lineCount(join(dir, "out-alpha", "items.jsonl")), 200);
  assert.equal(await lineCount(join(dir, "out-beta", "items.jsonl")), 300);
});

Deno.test("one signal drains every flow, each with its own summary", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-two-" });
  const a = await flow(dir, "alpha", "{ kind: generator, count: 50, every: 50ms }");
  const b = await flow(dir, "beta", "{ kind: generator, count: 70, every: 50ms }");
  const child = start([a, b], dir);
  const decoder = new TextDecoder();
  let stderr = "";
  const reading = (async () => {
    for await (const chunk of child.stderr) stderr += decoder.decode(chunk, { stream: true });
  })();
  for (
    let i = 0;
    i < 600 && !/alpha: running[^]*beta: running|beta: running[^]*alpha: running/.test(stderr);
    i++
  ) {
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGTERM");
  const status = await child.status;
  await reading;
  await child.stdout.cancel();
  assert.equal(status.code, 0, stderr);
  assert.match(stderr, /^alpha: stopped in .*: \d+ published/m);
  assert.match(stderr, /^beta: stopped in .*: \d+ published/m);
});

Deno.test("the exit code is non-zero when one of the flows failed; the other still finishes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-two-" });
  const a = await flow(
    dir,
    "alpha",
    "{ kind: generator, count: 50, invalid: 0, duplicates: 0, nearDuplicates: 0 }",
  );
  // Refused before any connection: a loopback address the flow does not allow.
  const c = await flow(dir, "gamma", `{ kind: json, url: "http://127.0.0.1:9/x.json" }`);
  const out = await start([a, c], dir).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1, stderr);
  assert.match(stderr, /^error: gamma: source s failed: /m);
  assert.match(stderr, /^alpha: finished in .*: 50 published/m);
  assert.equal(await lineCount(join(dir, "out-alpha", "items.jsonl")), 50);
  // The last line names the flow that failed, below every summary.
  assert.match(
    stderr.trimEnd().split("\n").at(-1)!,
    /^error: 1 of 2 flows did not finish cleanly: gamma \(exit 1\)$/,
  );
});

Deno.test("two flow files with one name are refused before either starts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-two-" });
  const a = await flow(dir, "alpha", "{ kind: generator, count: 5 }");
  const copy = join(dir, "copy.yaml");
  await Deno.copyFile(a, copy);
  const out = await start([a, copy], dir).output();
  assert.equal(out.code, 2);
  assert.match(new TextDecoder().decode(out.stderr), /two flow files are named "alpha"/);
});

Deno.test("--port with two flow files says it serves one, and nothing of --watch that was not given", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-two-" });
  try {
    const a = await flow(dir, "alpha", "{ kind: generator, count: 10 }");
    const b = await flow(dir, "beta", "{ kind: generator, count: 10 }");
    const out = await start([a, b, "--port", "0"], dir).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 2, stderr);
    assert.match(
      stderr,
      /--port serves the dashboard and metrics of one flow file, and 2 were named/,
    );
    assert.ok(!stderr.includes("--watch"), stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a flow that cannot start ends alone: the others run on, drain and report", async () => {
  // Redis refused for one flow: the process exited 75 a few seconds in, the other flow
  // neither drained nor reported, its accepted items lost without a word.
  const dir = await Deno.makeTempDir({ prefix: "millrace-two-" });
  const a = await flow(dir, "alpha", "{ kind: generator, count: 40, every: 50ms }");
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = closed.addr.port;
  closed.close();
  const down = join(dir, "down.yaml");
  await Deno.writeTextFile(
    down,
    `name: down
durability: redis
redis: redis://127.0.0.1:${port}
sources: { s: { kind: generator, count: 10 } }
pipeline:
  - publish: [ { jsonl: { path: items.jsonl } } ]
`,
  );
  const child = start(["--log-format", "json", a, down], dir);
  const decoder = new TextDecoder();
  let stderr = "";
  const reading = (async () => {
    for await (const chunk of child.stderr) stderr += decoder.decode(chunk, { stream: true });
  })();
  for (let i = 0; i < 400 && !/cannot reach Redis[^\n]*"flow":"down"/.test(stderr); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(stderr, /cannot reach Redis[^\n]*"flow":"down"/);
  await new Promise((r) => setTimeout(r, 300));
  child.kill("SIGTERM");
  const status = await child.status;
  await reading;
  await child.stdout.cancel();
  const logs = stderr.trim().split("\n").map((l) => JSON.parse(l));
  const report = logs.find((l) => l.flow === "alpha" && l.report)?.report;
  assert.ok(report, stderr);
  assert.ok(report.published > 0);
  // Each poll makes the same items again: the file holds each id once.
  assert.ok((await lineCount(join(dir, "out-alpha", "items.jsonl"))) > 0);
  assert.ok(
    logs.some((l) => /1 of 2 flows did not finish cleanly: down \(exit 75\)/.test(l.msg)),
    stderr,
  );
  assert.equal(status.code, 75);
});
