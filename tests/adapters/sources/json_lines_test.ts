import assert from "node:assert/strict";
import { join } from "node:path";
import { type LinesAt, readJsonLines } from "../../../adapters/sources/_json_lines.ts";
import type { RawItem } from "../../../engine/item.ts";

const enc = new TextEncoder();

/** 1,000 items, with blank lines, lines that are no item, a CRLF and a BOM among them. */
function mixedFile(): { bytes: Uint8Array; ids: number[] } {
  const parts: Uint8Array[] = [new Uint8Array([0xef, 0xbb, 0xbf])];
  const ids: number[] = [];
  for (let i = 0; i < 1000; i++) {
    parts.push(enc.encode(JSON.stringify({ n: i, title: `é ${i}` }) + (i % 7 ? "\n" : "\r\n")));
    ids.push(i);
    if (i === 10) parts.push(enc.encode("\n   \n")); // blank: passed over
    if (i === 20) parts.push(enc.encode("{not json\n")); // line 24
    if (i === 30) parts.push(enc.encode("[1,2]\n42\n")); // not objects
    if (i === 40) parts.push(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d, 0x0a])); // not UTF-8
    if (i === 50) parts.push(enc.encode(`{"big":"${"x".repeat(5000)}"}\n`)); // over maxLine
  }
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) bytes.set(p, at), at += p.length;
  return { bytes, ids };
}

async function tempFile(bytes: Uint8Array): Promise<string> {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  await Deno.writeFile(path, bytes);
  return path;
}

function read(path: string, from: LinesAt | undefined, complete = true, batch = 100) {
  return readJsonLines(path, from, {
    batch,
    maxLine: 4096,
    complete,
    signal: new AbortController().signal,
    toItem: (o) => o as RawItem,
  });
}

Deno.test("a JSON Lines file is read in bounded batches, and what is no item is tallied with its line", async () => {
  const { bytes, ids } = mixedFile();
  const path = await tempFile(bytes);
  const got: number[] = [];
  let last;
  for await (const b of read(path, undefined)) {
    assert.ok(b.items.length <= 100, `a batch of ${b.items.length}`);
    got.push(...b.items.map((i) => i.n as number));
    last = b;
  }
  assert.deepEqual(got, ids);
  assert.equal(last!.at.offset, bytes.length);
  assert.equal(last!.skipped.count, 5);
  assert.equal(last!.skipped.first!.line, 24);
  assert.match(last!.skipped.first!.why, /^not valid JSON/);
});

Deno.test("resuming at any batch's position reads the rest: no line lost or read twice", async () => {
  const { bytes, ids } = mixedFile();
  const path = await tempFile(bytes);
  const positions: LinesAt[] = [];
  for await (const b of read(path, undefined, true, 37)) positions.push(b.at);
  assert.ok(positions.length > 20);
  for (const [k, at] of positions.entries()) {
    const before: number[] = [];
    for await (const b of read(path, undefined, true, 37)) {
      before.push(...b.items.map((i) => i.n as number));
      if (b.at.offset === at.offset) break;
    }
    const after: number[] = [];
    for await (const b of read(path, at, true, 37)) {
      after.push(...b.items.map((i) => i.n as number));
    }
    assert.deepEqual([...before, ...after], ids, `resumed after batch ${k}`);
  }
});

Deno.test("a polled file's last line waits for its newline; appended lines are read from where it stood", async () => {
  const path = await tempFile(enc.encode('{"n":1}\n{"n":2}\n{"n":3'));
  const take = async (from: LinesAt | undefined) => {
    const items: unknown[] = [];
    let at = from;
    for await (const b of read(path, from, false)) {
      items.push(...b.items.map((i) => i.n)), at = b.at;
    }
    return { items, at };
  };
  const first = await take(undefined);
  assert.deepEqual(first.items, [1, 2]); // line 3 is being written
  assert.equal(first.at!.line, 2);
  await Deno.writeTextFile(path, '}\n{"n":4}\n', { append: true });
  const second = await take(first.at);
  assert.deepEqual(second.items, [3, 4]);
  assert.deepEqual(await take(second.at), { items: [], at: second.at }); // nothing new
});

Deno.test("a file truncated or replaced at its path is read from its start, and said", async () => {
  const path = await tempFile(enc.encode('{"n":1}\n{"n":2}\n'));
  let at: LinesAt | undefined;
  for await (const b of read(path, undefined)) at = b.at;
  const restarts: LinesAt[] = [];
  const again = async () => {
    const items: unknown[] = [];
    const lines = readJsonLines(path, at, {
      batch: 100,
      maxLine: 4096,
      complete: true,
      signal: new AbortController().signal,
      toItem: (o) => o as RawItem,
      restarted: (was) => restarts.push(was),
    });
    for await (const b of lines) items.push(...b.items.map((i) => i.n)), at = b.at;
    return items;
  };
  await Deno.writeTextFile(path, '{"n":9}\n'); // truncated: shorter than where it stood
  assert.deepEqual(await again(), [9]);
  // Truncated and written again past where it stood, between two reads: it holds other bytes there.
  await Deno.writeTextFile(path, '{"n":10}\n{"n":11}\n{"n":12}\n');
  assert.deepEqual(await again(), [10, 11, 12]);
  // Rotated: a new file at the path, longer than the old position.
  await Deno.rename(path, path + ".1");
  await Deno.writeTextFile(path, '{"n":7}\n{"n":8}\n{"n":9}\n');
  assert.deepEqual(await again(), [7, 8, 9]);
  assert.equal(restarts.length, 3);
});

Deno.test("a gzip file read as lines is refused, saying so, not read as lines that are not UTF-8", async () => {
  const gz = new Uint8Array(
    await new Response(
      new Blob(['{"n":1}\n']).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  const path = await tempFile(gz);
  await assert.rejects(
    async () => {
      for await (const _ of read(path, undefined)) { /* reading */ }
    },
    /gzip-compressed \(it starts with bytes 1f 8b\)/,
  );
});
