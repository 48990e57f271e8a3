import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const MAIN = join(ROOT, "main.ts");
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"];

async function millrace(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, MAIN, ...args],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

const FLOW = `name: small
sources: { inbox: { kind: generator, count: 10 } }
pipeline:
  - validate: { require: [title, url], spam: [casino] }
  - dedupe: { key: [url], merge: false }
  - enrich: { steps: [domain] }
  - publish: [ { jsonl: { path: items.jsonl } } ]
`;

/** A folder holding small.yaml and small.test.yaml with `cases`. */
async function folder(cases: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "millrace-flowtest-" });
  await Deno.writeTextFile(join(dir, "small.yaml"), FLOW);
  await Deno.writeTextFile(join(dir, "small.test.yaml"), cases);
  return dir;
}

const PASSING = `cases:
  - name: one item per url
    input:
      - { title: First news, url: "https://a.example/1" }
      - { title: First news, url: "https://a.example/1" }
      - { url: "https://a.example/2" }
    expect:
      published:
        jsonl: [ { title: First news, domain: a.example } ]
      dropped: { dedupe: { duplicate: 1 } }
      deadLetters: [ { stage: validate, reason: "{string}" } ]
`;

Deno.test("`test` runs every case of the test files in a folder and prints one line per case", async () => {
  const dir = await folder(PASSING);
  const ran = await millrace("test", dir);
  assert.equal(ran.code, 0, ran.stdout + ran.stderr);
  assert.match(ran.stdout, /^ok +\S*small\.test\.yaml:2 › one item per url \(/m);
  assert.match(ran.stdout, /^1 passed, 0 failed \(1 file\)$/m);
});

Deno.test("a failing case prints expected and actual per field path, and exits 1", async () => {
  const dir = await folder(
    PASSING.replace("domain: a.example", "domain: b.example")
      .replace("duplicate: 1", "duplicate: 2") +
      `  - name: nothing expected but something published
    input: [ { title: Second news, url: "https://a.example/3" } ]
`,
  );
  const ran = await millrace("test", join(dir, "small.test.yaml"));
  assert.equal(ran.code, 1, ran.stdout + ran.stderr);
  assert.ok(!ran.stdout.includes("\x1b["), "no colour with NO_COLOR");
  const lines = ran.stdout.trim().split("\n").map((l) => l.replace(/\(\d+\.\ds\)/, "(T)"));
  const file = lines[0].split(" ").find((w) => w.includes("small.test.yaml"))!.split(":")[0];
  assert.deepEqual(lines, [
    `FAIL ${file}:2 › one item per url (T)`,
    "  published.jsonl[0].domain",
    '    expected: "b.example"',
    '    actual:   "a.example"',
    "  dropped.dedupe.duplicate",
    "    expected: 2",
    "    actual:   1",
    `FAIL ${file}:12 › nothing expected but something published (T)`,
    "  published.jsonl: not expected",
    '    actual:   {"title":"Second news","url":"https://a.example/3","domain":"a.example"}',
    "0 passed, 2 failed (1 file)",
  ]);
});

Deno.test("a bad test file is reported with file:line:field, the other files still run, exit 2", async () => {
  const dir = await folder(PASSING);
  await Deno.mkdir(join(dir, "more"));
  await Deno.writeTextFile(
    join(dir, "more", "other.test.yaml"),
    `flow: ../small.yaml
cases:
  - name: typos
    inptu: []
    expect:
      published: { jsnl: [] }
      deadLetters: [ { stage: validate, reason: "{strnig}" } ]
`,
  );
  const ran = await millrace("test", dir);
  assert.equal(ran.code, 2, ran.stdout + ran.stderr);
  assert.match(ran.stdout, /^ok +\S*small\.test\.yaml:2 › one item per url/m);
  assert.match(ran.stdout, /^1 passed, 0 failed, 1 bad test file \(2 files\)$/m);
  assert.match(
    ran.stderr,
    /other\.test\.yaml:4:5: cases\[0\]\.inptu: unknown field "inptu"; did you mean "input"\?/,
  );
  assert.match(
    ran.stderr,
    /other\.test\.yaml:7:49: cases\[0\]\.expect\.deadLetters\[0\]\.reason: unknown placeholder \{strnig\}/,
  );

  // Once the file is well-formed, names the flow lacks are reported at their lines.
  await Deno.writeTextFile(
    join(dir, "more", "other.test.yaml"),
    `flow: ../small.yaml
cases:
  - name: names
    expect:
      published: { jsnl: [] }
      dropped: { dedup: { duplicate: 1 } }
`,
  );
  const again = await millrace("test", join(dir, "more", "other.test.yaml"));
  assert.equal(again.code, 2);
  assert.match(
    again.stderr,
    /other\.test\.yaml:5:20: cases\[0\]\.expect\.published\.jsnl: flow small has no sink "jsnl"; its sinks: jsonl; did you mean "jsonl"\?/,
  );
  assert.match(
    again.stderr,
    /other\.test\.yaml:6:18: cases\[0\]\.expect\.dropped\.dedup: flow small has no stage "dedup"/,
  );
});

Deno.test("a test file naming a flow that is not there is reported at its flow: line", async () => {
  const dir = await folder(PASSING);
  const file = join(dir, "other.test.yaml");
  await Deno.writeTextFile(file, `flow: ../nope.yaml\ncases:\n  - name: x\n`);
  const ran = await millrace("test", file);
  assert.equal(ran.code, 2);
  assert.match(ran.stderr, /other\.test\.yaml:1:7: flow: no flow file "\.\.\/nope\.yaml"/);
});

Deno.test("a flow file given to test says so in one line, naming where its tests go", async () => {
  const ran = await millrace("test", join(ROOT, "flows", "demo.yaml"));
  assert.equal(ran.code, 2);
  assert.match(
    ran.stderr,
    /demo\.yaml: this is a flow file, not a test file: its tests go in demo\.test\.yaml/,
  );
  assert.doesNotMatch(ran.stderr, /unknown field/, "not one line per field of the flow");
});

Deno.test("the flow tests in flows/ pass", async () => {
  const ran = await millrace("test", "flows/");
  assert.equal(ran.code, 0, ran.stdout + ran.stderr);
  assert.match(ran.stdout, /demo\.test\.yaml/);
  assert.match(ran.stdout, /feeds\.test\.yaml/);
});
