/**
 * The heap watch of `deno task run` (cli/heap_watch.ts): one warning, once
 * the heap holds more than 85% of its limit, naming both and how to raise
 * the limit; and, in a process started with a small limit as the run task
 * starts millrace with its own, V8's real figures reach it.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type HeapUse, watchHeap } from "../../cli/heap_watch.ts";

const MiB = 2 ** 20;

Deno.test("heap watch: warns once above 85% of the limit, with both figures and the fix", () => {
  let heap: HeapUse = { used: 1000 * MiB, limit: 2048 * MiB };
  const warnings: [string, Record<string, unknown>][] = [];
  const watch = watchHeap((m, f) => warnings.push([m, f]), {
    read: () => heap,
    everyMs: 3_600_000,
  });
  try {
    watch.check();
    heap = { used: 1740 * MiB, limit: 2048 * MiB }; // 84.96%: not yet
    watch.check();
    assert.equal(warnings.length, 0);
    heap = { used: 1800 * MiB, limit: 2048 * MiB };
    watch.check();
    watch.check();
    assert.equal(warnings.length, 1, "said once");
    const [message, fields] = warnings[0];
    assert.match(message, /^the heap holds 1,800 MiB of its 2,048 MiB limit/);
    assert.match(message, /--v8-flags=--max-old-space-size=/);
    assert.deepEqual(fields, { heapUsedMiB: 1800, heapLimitMiB: 2048 });
  } finally {
    watch.close();
  }
});

// Young space is held apart from the limit's old space (96 MiB here by
// default): at a limit this small it is kept to 3 MiB, as at 2,000 MiB its
// 96 are a small part of what the share is taken of.
Deno.test("heap watch: reads V8's own heap and limit (a process with --max-old-space-size=64)", async () => {
  const module = fileURLToPath(new URL("../../cli/heap_watch.ts", import.meta.url));
  // Keeps about 70 MiB of arrays live, checking as it goes, then prints what it was told.
  const script = `
    const { watchHeap } = await import(${JSON.stringify(module)});
    const told = [];
    const watch = watchHeap((m) => told.push(m), { everyMs: 3_600_000 });
    const kept = [];
    for (let i = 0; i < 70 && told.length === 0; i++) {
      kept.push(new Array(128 * 1024).fill(i + 0.5));
      watch.check();
    }
    watch.close();
    console.log(JSON.stringify({ told, kept: kept.length }));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--max-old-space-size=64,--max-semi-space-size=1", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const { told, kept } = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(told.length, 1, `no warning after ${kept} MiB kept live`);
  const [, used, limit] = told[0].match(/holds ([\d,]+) MiB of its ([\d,]+) MiB limit/);
  const n = (s: string) => Number(s.replace(/,/g, ""));
  assert.ok(n(limit) >= 64 && n(limit) < 80, `limit ${limit} MiB: the flag's 64 plus young space`);
  assert.ok(n(used) > 0.85 * n(limit), `${used} of ${limit}`);
  assert.ok(kept < 70, "warned before the heap was full");
});
