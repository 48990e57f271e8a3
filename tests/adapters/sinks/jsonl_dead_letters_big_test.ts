/**
 * The dead-letter file of a memory flow grows for good: it is read line by
 * line, in a process whose heap is smaller than the file (a subprocess, so
 * not among `deno task test:unit`'s tests).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

Deno.test("a dead-letter file larger than the process's heap is read line by line, and appended to", async () => {
  // Read whole into one string, a file past about 512 MB ended the run (and every item in
  // flight with it); here the heap is held to 48 MB and the file holds 80.
  const dir = await Deno.makeTempDir({ prefix: "millrace-dlq-big-" });
  try {
    const path = join(dir, "dead_letters.jsonl");
    const file = await Deno.open(path, { write: true, create: true });
    const pad = "x".repeat(1_900);
    const lines = Array.from({ length: 1_000 }, (_, i) =>
      JSON.stringify({
        stage: "validate",
        reason: `bad ${i}`,
        attempts: 0,
        item: { id: `i${i}`, payload: { pad } },
      }))
      .join("\n") + "\n";
    const bytes = new TextEncoder().encode(lines);
    for (let k = 0; k < 40; k++) {
      await file.write(bytes);
    }
    // A line longer than a read's chunk, cut short by a crash.
    await file.write(new TextEncoder().encode(`{"stage":"x","reason":"cut ${"y".repeat(200_000)}`));
    file.close();
    const module = fileURLToPath(
      new URL("../../../adapters/sinks/jsonl_dead_letters.ts", import.meta.url),
    );
    const script = `
      const { JsonlDeadLetters } = await import(${JSON.stringify(module)});
      const letters = new JsonlDeadLetters(${JSON.stringify(path)});
      const item = (id) => ({ id, event: "e", source: "s", seenAt: 0, attempts: 0, payload: {} });
      // One already there (not written again), one new.
      await letters.write([
        { stage: "validate", reason: "bad 7", attempts: 0, item: item("i7") },
        { stage: "validate", reason: "new", attempts: 0, item: item("n1") },
      ]);
      await letters.close();
    `;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--v8-flags=--max-old-space-size=48", script],
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr).slice(0, 500));
    const tail = await Deno.open(path);
    const size = (await tail.stat()).size;
    await tail.seek(size - 300, Deno.SeekMode.Start);
    const end = new Uint8Array(300);
    await tail.read(end);
    tail.close();
    const last = new TextDecoder().decode(end).split("\n").filter(Boolean).at(-1)!;
    assert.equal(JSON.parse(last).item.id, "n1");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
