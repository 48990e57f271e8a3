/**
 * The heap watch of `deno task run` (cli/heap_watch.ts): one warning, once
 * old space holds more than 85% of its limit, naming both and how to raise
 * the limit; on its own timer until closed; and, in a process started with
 * a small limit, V8's real figures reach it before V8 ends the process.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type HeapUse, watchHeap } from "../../cli/heap_watch.ts";

const MiB = 2 ** 20;

Deno.test("heap watch: warns once above 85% of the limit, with both figures and the fix", () => {
  let heap: HeapUse = { used: 1000 * MiB, limit: 2000 * MiB };
  const warnings: [string, Record<string, unknown>][] = [];
  const watch = watchHeap((m, f) => warnings.push([m, f]), {
    read: () => heap,
    everyMs: 3_600_000,
  });
  try {
    watch.check();
    heap = { used: 1700 * MiB, limit: 2000 * MiB }; // 85%: not yet
    watch.check();
    assert.equal(warnings.length, 0);
    heap = { used: 1750 * MiB, limit: 2000 * MiB };
    watch.check();
    watch.check();
    assert.equal(warnings.length, 1, "said once");
    const [message, fields] = warnings[0];
    assert.match(message, /^old space holds 1,750 MiB of its 2,000 MiB limit/);
    assert.match(message, /--v8-flags=--max-old-space-size=/);
    assert.deepEqual(fields, { oldSpaceMiB: 1750, limitMiB: 2000 });
  } finally {
    watch.close();
  }
});

Deno.test("heap watch: checks on its own timer, and not after close", async () => {
  let reads = 0;
  let told!: () => void;
  const warned = new Promise<void>((resolve) => told = resolve);
  const watch = watchHeap(() => told(), {
    everyMs: 5,
    read: () => ({ used: ++reads < 3 ? 0 : 1900 * MiB, limit: 2000 * MiB }),
  });
  // Holds the process (the watch's own timer does not) and, should that
  // timer never check, ends the wait with a failure rather than a hang.
  let guard!: ReturnType<typeof setTimeout>;
  const never = new Promise<never>((_, reject) => {
    guard = setTimeout(() => reject(new Error("the watch's timer never checked")), 10_000);
  });
  try {
    await Promise.race([warned, never]); // the third timed read is above the share
  } finally {
    clearTimeout(guard);
  }
  watch.close();
  const after = reads;
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(reads, after, "no read once closed");
});

// V8 keeps 96 MiB of young generation beside the old-space limit (3 semi-
// spaces of 32): at a limit of 256 MiB, 85% of their sum would be more than
// old space can hold, and the process would end before a warning. (Arrays
// reach old space up to 32 MiB at a time, so a limit this low still leaves
// the watch a step to see it in.)
Deno.test("heap watch: reads V8's own old space and limit (a process with --max-old-space-size=256)", async () => {
  const module = fileURLToPath(new URL("../../cli/heap_watch.ts", import.meta.url));
  // Keeps 1 MiB arrays live, checking after each, then prints what it was told.
  const script = `
    const { watchHeap } = await import(${JSON.stringify(module)});
    const told = [];
    const watch = watchHeap((m) => told.push(m), { everyMs: 3_600_000 });
    const kept = [];
    for (let i = 0; i < 300 && told.length === 0; i++) {
      kept.push(new Array(128 * 1024).fill(i + 0.5));
      watch.check();
    }
    watch.close();
    console.log(JSON.stringify({ told, kept: kept.length }));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--max-old-space-size=256", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr).slice(0, 2000));
  const { told, kept } = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(told.length, 1, `no warning after ${kept} MiB kept live`);
  const [, used, limit] = told[0].match(/holds ([\d,]+) MiB of its ([\d,]+) MiB limit/);
  const n = (s: string) => Number(s.replace(/,/g, ""));
  assert.equal(n(limit), 256, "the flag's limit, young space apart");
  assert.ok(n(used) > 0.85 * 256, `${used} of ${limit}`);
});

// The wiring in cli/run_command.ts: the run task's own command, its V8
// limit lowered, on a flow whose dedupe keeps every item it has seen. The
// enrich steps slow the flow, so old space takes seconds, not one check's
// interval, to cross the last 15% of the limit on a faster machine too.
Deno.test("deno task run warns, naming the flow, before V8 ends a flow that fills its heap", async () => {
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const task: string = JSON.parse(await Deno.readTextFile(`${root}deno.json`)).tasks.run;
  const [, , ...flags] = task.split(" ").map((a) =>
    a.startsWith("--v8-flags=") ? "--v8-flags=--max-old-space-size=80" : a
  );
  assert.ok(flags.includes("--v8-flags=--max-old-space-size=80"), task);
  const dir = await Deno.makeTempDir({ prefix: "millrace-heap-" });
  try {
    await Deno.writeTextFile(
      `${dir}/fill.yaml`,
      `name: heap-fill
output: ${JSON.stringify(dir)}
sources:
  gen: { kind: generator, count: 3000000, seed: 1 }
pipeline:
  - validate: { require: [title, url] }
  - dedupe: { key: [url], maxItems: 3000000, near: { maxItems: 3000000 } }
  - enrich: { steps: [language, keywords] }
  - publish: [ { jsonl: { path: items.jsonl, vectors: false } } ]
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...flags.map((a) => a === "main.ts" ? `${root}main.ts` : a),
        "run",
        "fill.yaml",
      ],
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.success, false, "V8 ends the process");
    const warnings = [...stderr.matchAll(/heap-fill: old space holds ([\d,]+) MiB of its 80 MiB/g)];
    assert.equal(warnings.length, 1, stderr.slice(0, 2000));
    // The message rounds to whole MiB: 68.3 MiB, above 85% of 80, reads 68.
    assert.ok(Number(warnings[0][1]) >= Math.round(0.85 * 80), warnings[0][0]);
    const fatal = stderr.indexOf("out of memory");
    assert.ok(fatal < 0 || warnings[0].index! < fatal, "the warning comes first");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
