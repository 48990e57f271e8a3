/**
 * What a story the in-process Deduper remembers costs: measured in a
 * process of its own started with --expose-gc, heap after a full
 * collection, 30,000 stories with the demo's url length and two engagement
 * fields, minus the same run holding one.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const store = fileURLToPath(new URL("../../actors/_dedupe_store.ts", import.meta.url));

/** Heap bytes per story held by a MemoryDedupeStore that merged `n` first copies. */
async function bytesPerStory(n: number): Promise<number> {
  const script = `
    const { MemoryDedupeStore } = await import(${JSON.stringify(store)});
    const run = (count) => {
      const s = new MemoryDedupeStore({ maxItems: Math.max(1, count) });
      for (let from = 0; from < ${n}; from += 500) {
        const copies = [];
        for (let i = from; i < from + 500; i++) {
          const id = (i * 2654435761 >>> 0).toString(16).padStart(8, "0").repeat(4);
          copies.push({
            story: id, own: id, mode: "first", source: "newsroom", seenAt: 1764000000000 + i,
            url: "https://techpulse.io/2024/how-brightloop-cut-deploy-times-by-half-" + i,
            engagement: { points: i % 500, comments: i % 70 },
          });
        }
        s.mergeMany(copies, 1764000000000, 86_400_000);
      }
      return s;
    };
    const heap = () => { gc(); gc(); return Deno.memoryUsage().heapUsed; };
    const base = heap();
    const none = run(0);
    const empty = heap() - base;
    const full = run(${n});
    const used = heap() - base - empty;
    // What was kept is the stories: a copy of the first one joins it.
    const first = (0).toString(16).padStart(8, "0").repeat(4);
    const [joined] = full.mergeMany([{
      story: first, own: first, mode: "duplicate", source: "other", seenAt: 1764000000001,
      url: "https://techpulse.io/2024/how-brightloop-cut-deploy-times-by-half-0", engagement: {},
    }], 1764000000001, 86_400_000);
    console.log(JSON.stringify({
      perStory: used / ${n}, held: full.stories + none.stories - 1, joined: joined?.s.length,
    }));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--expose-gc", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const { perStory, held, joined } = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(held, n);
  assert.equal(joined, 2, "a copy of a story held joins it: the first sighting and its own");
  return perStory;
}

Deno.test("a story the in-process Deduper holds takes under 400 bytes of heap", async () => {
  const bytes = await bytesPerStory(30_000);
  // Objects per story (its sightings, engagement and numbers) took about 520.
  assert.ok(bytes < 400, `${bytes.toFixed(0)} bytes per story`);
  assert.ok(bytes > 100, `${bytes.toFixed(0)} bytes per story: the stories were not kept?`);
});
