import assert from "node:assert/strict";
import {
  concurrently,
  HostTurns,
  TICK,
  ticking,
  type Turn,
} from "../../../adapters/sources/_concurrently.ts";

const tick = () => new Promise((r) => setTimeout(r, 1));

const a = "https://a.example", b = "https://b.example", c = "http://c.example:8080";

/** Takes every URL it may, admitting all, and gives none back. */
function takeAll(turns: HostTurns): string[] {
  const out: string[] = [];
  for (let t = turns.take(() => true); t; t = turns.take(() => true)) out.push(t.url);
  return out;
}

Deno.test("HostTurns hands out the hosts in turn, each host's URLs in their order", () => {
  const turns = new HostTurns([`${a}/1`, `${a}/2`, `${a}/3`, `${b}/1`, `${c}/1`, `${b}/2`, "x"]);
  assert.deepEqual(takeAll(turns), [
    `${a}/1`,
    `${b}/1`,
    `${c}/1`,
    "x",
    `${a}/2`,
    `${b}/2`,
    `${a}/3`,
  ]);
  assert.deepEqual(turns.rest(), []);
  assert.deepEqual(takeAll(new HostTurns([])), []);
});

Deno.test("HostTurns gives a host no more than perHost at once, and another when one is done", () => {
  const turns = new HostTurns([`${a}/1`, `${a}/2`, `${a}/3`, `${b}/1`], 2);
  const out: Turn[] = [];
  for (let t = turns.take(() => true); t; t = turns.take(() => true)) out.push(t);
  assert.deepEqual(out.map((t) => t.url), [`${a}/1`, `${b}/1`, `${a}/2`]);
  assert.deepEqual(turns.rest(), [`${a}/3`]);
  turns.done(out[1]); // b's: a still has 2 out
  assert.equal(turns.take(() => true), undefined);
  turns.done(out[0]);
  assert.equal(turns.take(() => true)?.url, `${a}/3`);
});

Deno.test("HostTurns: admit false drops a URL, undefined leaves it and the rest in place", () => {
  const turns = new HostTurns([`${a}/1`, `${a}/2`, `${b}/1`, `${b}/2`]);
  assert.equal(turns.take((url) => url !== `${a}/1`)?.url, `${a}/2`, "a/1 dropped");
  assert.equal(turns.take(() => undefined), undefined);
  assert.deepEqual(turns.rest(), [`${b}/1`, `${b}/2`]);
  assert.equal(turns.take(() => true)?.url, `${b}/1`);
});

Deno.test("concurrently runs at most `limit` at once and yields every result", async () => {
  const queue = Array.from({ length: 20 }, (_, i) => i);
  let running = 0, most = 0;
  const results: number[] = [];
  for await (
    const r of concurrently(3, () => queue.shift(), async (i) => {
      most = Math.max(most, ++running);
      for (let k = 0; k < i % 4; k++) await tick();
      running--;
      return i * 10;
    })
  ) results.push(r);
  assert.equal(most, 3);
  assert.deepEqual(results.sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i * 10));
});

Deno.test("concurrently asks `next` again when a place frees, until it has nothing", async () => {
  // `next` holds back while a gate is shut, and is asked again after each result.
  let given = 0, open = false;
  const next = () => (given < 4 && (open || given < 1) ? given++ : undefined);
  const seen: number[] = [];
  for await (const r of concurrently(2, next, async (i) => (await tick(), i))) {
    seen.push(r);
    open = true;
  }
  assert.deepEqual(seen.sort(), [0, 1, 2, 3]);
});

Deno.test("a task that throws ends the loop with its error, after the others settled", async () => {
  const settled: number[] = [];
  const queue = [0, 1, 2];
  await assert.rejects(
    async () => {
      for await (
        const _ of concurrently(3, () => queue.shift(), async (i) => {
          await tick();
          if (i === 0) throw new Error("page 0 failed");
          for (let k = 0; k < 5; k++) await tick();
          settled.push(i);
          return i;
        })
      ) { /* none yields before page 0 fails */ }
    },
    /page 0 failed/,
  );
  assert.deepEqual(settled.sort(), [1, 2]);
});

Deno.test("a caller that stops reading waits for the tasks still running", async () => {
  const settled: number[] = [];
  const queue = [0, 1, 2, 3];
  for await (
    const _ of concurrently(4, () => queue.shift(), async (i) => {
      for (let k = 0; k < i * 3; k++) await tick();
      settled.push(i);
      return i;
    })
  ) break;
  assert.deepEqual(settled.sort(), [0, 1, 2, 3]);
  assert.deepEqual(queue, [], "all four had started");
});

Deno.test("ticking yields TICK while its source is slow, and asks for more only when read", async () => {
  let asked = 0, stopped = false;
  async function* source() {
    try {
      for (let i = 0; i < 3; i++) {
        asked++;
        await new Promise((r) => setTimeout(r, 30));
        yield i;
      }
    } finally {
      stopped = true;
    }
  }
  const seen: unknown[] = [];
  let due: number | undefined = Date.now() + 5;
  for await (const v of ticking(source(), () => due)) {
    seen.push(v);
    if (v === TICK) due = undefined; // once: the reader acted on time
    assert.equal(asked, seen.filter((s) => s !== TICK).length + (v === TICK ? 1 : 0));
    if (v === 1) break;
  }
  assert.deepEqual(seen, [TICK, 0, 1]);
  assert.ok(stopped, "stopping the loop stopped the source");
});
