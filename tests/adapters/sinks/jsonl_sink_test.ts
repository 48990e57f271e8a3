import { parseFlow } from "../../../config/load_flow.ts";
import { builtinRegistry } from "../../../builtins.ts";
import { isRetryable } from "../../../engine/errors.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { JsonlSink, jsonlSink } from "../../../adapters/sinks/jsonl_sink.ts";
import { type Envelope, envelope, type RawItem } from "../../../engine/item.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { type BuildEnv, Registry, schemaOf } from "../../../engine/registry.ts";

const signal = new AbortController().signal;

function item(n: number, vector?: number[]): Envelope<RawItem> {
  const e = envelope(
    { title: `Title ${n}`, url: `https://example.com/${n}`, text: `body ${n}` },
    "test",
    1_700_000_000_000 + n,
  );
  return vector ? { ...e, vector } : e;
}

async function lines(path: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(path);
  assert.ok(text === "" || text.endsWith("\n"), "the file ends with a complete line");
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

/** Counts calls to FsFile.write while `fn` runs. */
async function countWrites(fn: () => Promise<void>): Promise<number> {
  const proto = Deno.FsFile.prototype;
  const original = proto.write;
  let calls = 0;
  proto.write = function (this: Deno.FsFile, p: Uint8Array) {
    calls++;
    return original.call(this, p);
  };
  try {
    await fn();
  } finally {
    proto.write = original;
  }
  return calls;
}

Deno.test("writes one JSON line per item with id, source, seenAt, payload and vector", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "nested", "deeper", "items.jsonl");
  const sink = new JsonlSink(path);
  await sink.open();
  const a = item(1, [0.6, 0.8]);
  const b = item(2);
  await sink.write([a, b], signal);
  await sink.close();
  assert.deepEqual(await lines(path), [
    { id: a.id, source: "test", seenAt: a.seenAt, payload: a.payload, vector: [0.6, 0.8] },
    { id: b.id, source: "test", seenAt: b.seenAt, payload: b.payload },
  ]);
});

Deno.test("a file rotated by rename or removed is noticed: the next batch starts a new file at the path", async () => {
  // logrotate renames by default: the lines after it went on into the rotated file.
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const sink = new JsonlSink(path);
  await sink.write([item(1), item(2)], signal);
  await Deno.rename(path, `${path}.1`);
  await sink.write([item(3), item(1)], signal);
  assert.deepEqual(
    (await lines(`${path}.1`)).map((l) => l.payload),
    [1, 2].map((n) => item(n).payload),
  );
  assert.deepEqual((await lines(path)).map((l) => l.payload), [3, 1].map((n) => item(n).payload));
  await Deno.remove(path);
  await sink.write([item(4)], signal);
  await sink.close();
  assert.deepEqual((await lines(path)).map((l) => l.payload), [item(4).payload]);
});

Deno.test("a batch is appended with one write call", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const sink = new JsonlSink(path);
  await sink.open();
  const batch = Array.from({ length: 300 }, (_, i) => item(i));
  const calls = await countWrites(() => sink.write(batch, signal));
  await sink.close();
  assert.equal(calls, 1);
  assert.equal((await lines(path)).length, 300);
});

Deno.test("lines are UTF-8 whatever their script, batch after batch, large ones too", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const sink = new JsonlSink(path);
  await sink.open();
  const texts = ["für Straße", "東京都は今日", "emoji 😀 and a lone \ud800", "x".repeat(200_000)];
  const batches = texts.map((text, i) =>
    Array.from({ length: 3 }, (_, j) => ({ ...item(10 * i + j), payload: { text } }))
  );
  for (const batch of batches) await sink.write(batch, signal);
  await sink.close();
  const written = (await lines(path)).map((l) => (l.payload as { text: string }).text);
  // JSON escapes a lone surrogate, so it comes back as it went.
  const expected = texts.flatMap((t) => Array(3).fill(t));
  assert.ok(written.every((t, i) => t === expected[i]), "every text comes back as written");
  assert.equal(written.length, expected.length);
});

Deno.test("an item is written once, however often it arrives", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const sink = new JsonlSink(path);
  await sink.write([item(1), item(2), item(1)], signal);
  await sink.write([item(2), item(3)], signal);
  const calls = await countWrites(() => sink.write([item(1), item(3)], signal));
  await sink.close();
  assert.equal(calls, 0, "a batch of known items writes nothing");
  assert.deepEqual(
    (await lines(path)).map((l) => l.payload),
    [1, 2, 3].map((n) => item(n).payload),
  );
});

Deno.test("a second sink on the same file skips the ids already in it", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const first = new JsonlSink(path);
  await first.write([item(1), item(2)], signal);
  await first.close();

  const second = new JsonlSink(path);
  await second.open();
  await second.write([item(2), item(3), item(1), item(4)], signal);
  await second.close();
  const ids = (await lines(path)).map((l) => l.id);
  assert.deepEqual(ids, [1, 2, 3, 4].map((n) => item(n).id));
});

Deno.test("concurrent writes of overlapping batches never write an id twice", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const sink = new JsonlSink(path);
  const batches = Array.from(
    { length: 8 },
    (_, b) => Array.from({ length: 20 }, (_, i) => item(b * 10 + i)),
  );
  await Promise.all(batches.map((batch) => sink.write(batch, signal)));
  await sink.close();
  const ids = (await lines(path)).map((l) => l.id as string);
  assert.equal(ids.length, 90);
  assert.equal(new Set(ids).size, 90);
});

Deno.test("two sinks on one file, writing overlapping batches at once, write every id once", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const sinks = [new JsonlSink(path), new JsonlSink(path)];
  // Batches that overlap each other, within a sink and across the two.
  const batches = sinks.map((_, s) =>
    Array.from(
      { length: 10 },
      (_, b) => Array.from({ length: 50 }, (_, i) => item((b * 25 + i + s * 7) % 300)),
    )
  );
  await Promise.all(sinks.flatMap((sink, s) => batches[s].map((b) => sink.write(b, signal))));
  await Promise.all(sinks.map((s) => s.close()));
  const ids = (await lines(path)).map((l) => l.id as string);
  const expected = new Set(batches.flat(2).map((e) => e.id));
  assert.equal(expected.size, 282);
  assert.equal(ids.length, expected.size);
  assert.deepEqual(new Set(ids), expected);
});

Deno.test("processes writing one file at once write every id exactly once", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const script = join(dir, "writer.ts");
  const here = (p: string) => new URL(p, import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { JsonlSink } from "${here("../../../adapters/sinks/jsonl_sink.ts")}";
import { envelope } from "${here("../../../engine/item.ts")}";
const [path, p, start] = [Deno.args[0], Number(Deno.args[1]), Number(Deno.args[2])];
const sink = new JsonlSink(path);
await sink.open();
await new Promise((r) => setTimeout(r, start - Date.now())); // all start at once
const signal = new AbortController().signal;
for (let b = 0; b < 60; b++) {
  const batch = Array.from({ length: 20 }, (_, i) => {
    const n = (b * 10 + i + p * 101) % 600;
    return envelope({ title: "Title " + n, url: "https://example.com/" + n }, "p" + p);
  });
  await sink.write(batch, signal);
}
await sink.close();
`,
  );
  const config = new URL("../../../deno.json", import.meta.url).pathname;
  const start = String(Date.now() + 1500);
  const children = [0, 1, 2, 3].map((p) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--config", config, "-RW", script, path, String(p), start],
      stdout: "null",
      stderr: "piped",
    }).output()
  );
  for (const out of await Promise.all(children)) {
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
  }
  const ids = (await lines(path)).map((l) => l.id as string);
  assert.equal(ids.length, 600);
  assert.equal(new Set(ids).size, 600);
});

Deno.test("a sink reads only what others appended since it last looked", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const a = new JsonlSink(path), b = new JsonlSink(path);
  await a.write(Array.from({ length: 200 }, (_, i) => item(i)), signal);
  await b.write([item(1000)], signal); // b reads a's 200 lines once
  const before = (await Deno.stat(path)).size;
  await a.write([item(1001)], signal); // a reads b's one line, not its own 200
  const afterA = (await Deno.stat(path)).size;
  const read = await countReadBytes(() => b.write([item(1002), item(1)], signal));
  await a.close();
  await b.close();
  assert.equal(read, afterA - before, "b read exactly the line a appended since");
  assert.equal((await lines(path)).length, 203);
});

/** Sums the bytes FsFile.read returned while `fn` runs. */
async function countReadBytes(fn: () => Promise<void>): Promise<number> {
  const proto = Deno.FsFile.prototype;
  const original = proto.read;
  let bytes = 0;
  proto.read = async function (this: Deno.FsFile, p: Uint8Array) {
    const n = await original.call(this, p);
    bytes += n ?? 0;
    return n;
  };
  try {
    await fn();
  } finally {
    proto.read = original;
  }
  return bytes;
}

Deno.test("a write waits while another holder has the file locked", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  await Deno.writeTextFile(path, "");
  const other = await Deno.open(path, { read: true, append: true });
  await other.lock(true);
  const sink = new JsonlSink(path);
  let done = false;
  const writing = sink.write([item(1)], signal).then(() => done = true);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(done, false);
  assert.equal(await Deno.readTextFile(path), "", "nothing appended while locked out");
  // The holder appends a line meanwhile: the sink must see it and not write that id again.
  await other.write(new TextEncoder().encode(JSON.stringify(pick(item(1))) + "\n"));
  await other.unlock();
  other.close();
  await writing;
  await sink.write([item(2)], signal);
  await sink.close();
  assert.deepEqual((await lines(path)).map((l) => l.id), [item(1).id, item(2).id]);
});

Deno.test("a line torn by a crash is closed off and its item written again", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const whole = JSON.stringify({ id: item(1).id, source: "test", seenAt: 1, payload: {} });
  const torn = JSON.stringify({ id: item(2).id, source: "test", seenAt: 2, payload: {} }).slice(
    0,
    50,
  );
  await Deno.writeTextFile(path, whole + "\n" + torn);

  const sink = new JsonlSink(path);
  await sink.write([item(1), item(2)], signal);
  await sink.close();
  const text = await Deno.readTextFile(path);
  assert.equal(text, whole + "\n" + torn + " \n" + JSON.stringify({ ...pick(item(2)) }) + "\n");
});

Deno.test("a torn line that happens to end in a brace is not taken for its item by a later process", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const x = item(2, [0.5, 0.25]);
  const full = JSON.stringify({
    id: x.id,
    source: "test",
    seenAt: x.seenAt,
    payload: x.payload,
    vector: x.vector,
  });
  // A crash cut X's line just after its payload's closing brace, before `,"vector"`.
  const torn = full.slice(0, full.indexOf(',"vector"'));
  assert.ok(torn.endsWith("}"));
  await Deno.writeTextFile(path, JSON.stringify(pick(item(1))) + "\n" + torn);
  // The next process closes the torn line off as it appends its own batch.
  const next = new JsonlSink(path);
  await next.write([item(3)], signal);
  await next.close();
  // A process started later reads the file afresh, then X is redelivered to it.
  const later = new JsonlSink(path);
  await later.write([x], signal);
  await later.close();
  const parsed = (await Deno.readTextFile(path)).split("\n").flatMap((l) => {
    try {
      return [JSON.parse(l).id as string];
    } catch {
      return [];
    }
  });
  assert.deepEqual(parsed, [item(1).id, item(3).id, x.id], "X is written whole once");
});

function pick(e: Envelope<RawItem>) {
  return { id: e.id, source: e.source, seenAt: e.seenAt, payload: e.payload };
}

Deno.test("fields keeps only the named payload fields and vectors: false drops vectors", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const sink = new JsonlSink(path, { fields: ["title", "missing"], vectors: false });
  const a = item(1, [1, 0]);
  await sink.write([a], signal);
  await sink.close();
  assert.deepEqual(await lines(path), [
    { id: a.id, source: "test", seenAt: a.seenAt, payload: { title: "Title 1" } },
  ]);
});

Deno.test("the jsonl spec puts a relative path under the flow's outDir and checks its config", async () => {
  const outDir = await Deno.makeTempDir();
  const registry = new Registry().sink(jsonlSink);
  const env: BuildEnv = { flow: "t", baseDir: "/nowhere", outDir, log: memoryLogger(), registry };
  const schema = schemaOf(jsonlSink, registry);
  const sink = await jsonlSink.create(schema.parse({ path: "a/items.jsonl" }), env);
  await sink.write([item(1)], signal);
  await sink.close?.();
  assert.equal((await lines(join(outDir, "a", "items.jsonl"))).length, 1);

  const bad = schema.safeParse({ pth: "x.jsonl" });
  assert.ok(!bad.success);
  assert.deepEqual(bad.error.issues.map((i) => [i.code, i.path]), [
    ["invalid_type", ["path"]],
    ["unrecognized_keys", []],
  ]);
});

function gone(n: number): Envelope<RawItem> {
  const e = item(n);
  return { ...e, payload: { url: e.payload.url, deleted: true } };
}

Deno.test("a deleted item is written as a tombstone line, once, after its item's line", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const sink = new JsonlSink(path);
  await sink.write([item(1), item(2)], signal);
  await sink.write([gone(1), gone(1)], signal);
  await sink.write([gone(1), item(1)], signal);
  await sink.close();
  const rerun = new JsonlSink(path);
  await rerun.write([gone(1), gone(2), item(2)], signal);
  await rerun.close();
  const got = await lines(path);
  assert.deepEqual(got.map((l) => [l.id, l.deleted ?? false]), [
    [item(1).id, false],
    [item(2).id, false],
    [item(1).id, true],
    [item(2).id, true],
  ], "one tombstone per id, recognised again by a sink reading the file");
  assert.deepEqual(got[2], {
    id: item(1).id,
    deleted: true,
    source: "test",
    seenAt: item(1).seenAt,
  });
});

Deno.test("an item whose tombstone came first is not written after it: the delete stands", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const sink = new JsonlSink(path);
  await sink.write([gone(1)], signal);
  await sink.write([item(1), item(2)], signal);
  await sink.close();
  // So does a sink that reads the tombstone from the file, and so does news of the story (a
  // merge update of a later copy): a reader laid its merged fields over nothing.
  const rerun = new JsonlSink(path);
  const update: Envelope<RawItem> = {
    ...item(1),
    update: true,
    payload: { sources: [], engagement: { score: 9 }, lastSeenAt: "x", revision: 2 },
  };
  await rerun.write([item(1), update], signal);
  await rerun.close();
  // Before: the item's line came after its tombstone, and a reader (last line wins) kept it.
  assert.deepEqual((await lines(path)).map((l) => [l.id, l.deleted ?? false]), [
    [item(1).id, true],
    [item(2).id, false],
  ]);
});

Deno.test("an item seen after its delete comes back, and a delete seen after that removes it again, as in Postgres", async () => {
  // The file kept the delete whatever came after: a story republished after its delete (or
  // seen a moment after a delete that raced ahead of it) was in Postgres and Qdrant, not here.
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const at = (e: Envelope<RawItem>, ms: number) => ({ ...e, seenAt: 1_700_000_000_000 + ms });
  const folded = async () => {
    const last = new Map<unknown, boolean>();
    for (const l of await lines(path)) if (l.update !== true) last.set(l.id, l.deleted !== true);
    return [...last].filter(([, present]) => present).map(([id]) => id);
  };
  const sink = new JsonlSink(path);
  await sink.write([at(item(1), 100), at(gone(2), 100)], signal);
  await sink.write([at(gone(1), 200), at(item(2), 200)], signal);
  assert.deepEqual(await folded(), [item(2).id], "1 deleted; 2 seen after its delete");
  await sink.write([at(item(1), 150), at(gone(2), 150)], signal);
  assert.deepEqual(await folded(), [item(2).id], "a copy or a delete older than the last: nothing");
  await sink.write([at(item(1), 300)], signal);
  assert.deepEqual(await folded(), [item(1).id, item(2).id], "1 seen after its delete: back");
  await sink.close();
  // A sink reading the file knows where each id stands, and so adds nothing twice.
  const rerun = new JsonlSink(path);
  const before = (await lines(path)).length;
  await rerun.write([at(item(1), 400), at(gone(1), 250), at(item(2), 500)], signal);
  assert.equal((await lines(path)).length, before, "nothing new");
  await rerun.write([at(gone(1), 600)], signal);
  assert.deepEqual(await folded(), [item(2).id], "a delete seen after it came back removes it");
  // A second delete, later: a copy seen between the two stays out (Postgres keeps the latest),
  // for another process writing the file too, which learns the time from the file.
  const other = new JsonlSink(path);
  await other.write([], signal);
  await rerun.write([at(gone(1), 800)], signal);
  await other.write([at(item(1), 700)], signal);
  assert.deepEqual(await folded(), [item(2).id], "a copy seen before the latest delete");
  await rerun.close();
  await other.close();
});

Deno.test("a batch holding an item JSON cannot encode writes nothing, and its other items are written when retried without it", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "items.jsonl");
  const sink = new JsonlSink(path);
  const big = { ...item(2), payload: { ...item(2).payload, views: 10n ** 30n } };
  // Named, and not to be retried: the stage runner splits the batch at once.
  await assert.rejects(sink.write([item(1), big, item(3)], signal), (error) => {
    assert.match(String(error), new RegExp(`item ${big.id} cannot be written as JSON: .*BigInt`));
    assert.equal(isRetryable(error), false);
    return true;
  });
  // What the stage runner does next: the batch split down to the bad item.
  await sink.write([item(1)], signal);
  await assert.rejects(sink.write([big], signal), /BigInt/);
  await sink.write([item(3)], signal);
  await sink.close();
  assert.deepEqual((await lines(path)).map((l) => l.id), [item(1).id, item(3).id]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name:
    "a write the disk refuses says why (a full disk), in the error a log line and a dead letter quote",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // /dev/full takes any open and refuses every write with ENOSPC; Deno lets only a process
    // with every permission write to a device, so the write runs in one of its own.
    const at = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
    const script = `
      import { JsonlSink } from ${at("../../../adapters/sinks/jsonl_sink.ts")};
      import { isRetryable } from ${at("../../../engine/errors.ts")};
      import { envelope } from ${at("../../../engine/item.ts")};
      const error = await new JsonlSink("/dev/full")
        .write([envelope({ title: "t", url: "https://a.test/1" }, "s")], new AbortController().signal)
        .catch((e) => e);
      console.log(JSON.stringify({ message: String(error?.message), retryable: isRetryable(error) }));
    `;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const said = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.match(
      said.message,
      /^jsonl sink: cannot append to \/dev\/full: No space left on device \(os error 28\)$/,
    );
    assert.equal(said.retryable, true, "a disk may get room: the batch is retried");
  },
});

Deno.test("a memory flow's jsonl sink may not write to the file its dead letters go to", async () => {
  // Items written there were read back by `dlq list` as malformed letters.
  const outDir = await Deno.makeTempDir();
  const registry = new Registry().sink(jsonlSink);
  const env: BuildEnv = { flow: "t", baseDir: "/nowhere", outDir, log: memoryLogger(), registry };
  const schema = schemaOf(jsonlSink, registry);
  assert.throws(
    () => jsonlSink.create(schema.parse({ path: "dead_letters.jsonl" }), env),
    /path dead_letters\.jsonl is the file this flow's dead letters go to; give the items another/,
  );
  await Deno.remove(outDir, { recursive: true });
});

Deno.test("the dead letters' file is refused when the flow is checked, by any spelling or link", async () => {
  // `./dead_letters.jsonl`, an absolute path or a link to it passed check and failed the run (or,
  // through a link, were written to).
  const dir = await Deno.makeTempDir();
  const out = join(dir, "out");
  await Deno.mkdir(out);
  await Deno.writeTextFile(join(out, "dead_letters.jsonl"), "");
  await Deno.symlink(join(out, "dead_letters.jsonl"), join(out, "link.jsonl"));
  for (
    const path of [
      "./dead_letters.jsonl",
      join(out, "dead_letters.jsonl"),
      "sub/../dead_letters.jsonl",
      "link.jsonl",
    ]
  ) {
    const text = `name: t\noutput: ${out}\nsources:\n  g: { kind: generator, count: 1 }\n` +
      `pipeline:\n  - publish:\n      - jsonl: { path: "${path}" }\n`;
    const error = (() => {
      try {
        parseFlow(text, "flows/t.yaml", builtinRegistry(), {});
      } catch (e) {
        return String(e);
      }
    })();
    assert.match(String(error), /is the file this flow's dead letters go to/, path);
  }
  // A durable flow's dead letters are in Redis: the name is free.
  parseFlow(
    `name: t\ndurability: redis\nredis: redis://127.0.0.1:6379\noutput: ${out}\nsources:\n` +
      `  g: { kind: generator, count: 1 }\npipeline:\n  - publish:\n      - jsonl: { path: dead_letters.jsonl }\n`,
    "flows/t.yaml",
    builtinRegistry(),
    {},
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("an output folder or a jsonl path under a file is refused when the flow is checked", async () => {
  // It passed check; the run then failed at its first write (a memory flow's first dead letter).
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "afile"), "not a folder\n");
  const errorOf = (text: string) => {
    try {
      parseFlow(text, "flows/t.yaml", builtinRegistry(), {});
    } catch (e) {
      return String((e as Error).message);
    }
    return "ok";
  };
  const head = "name: t\nsources:\n  g: { kind: generator, count: 1 }\n";
  const underFile = join(dir, "afile", "sub");
  assert.equal(
    errorOf(`${head}output: ${underFile}\npipeline:\n  - publish: [{ stdout: {} }]\n`),
    `flows/t.yaml:4:9: output: ${underFile} cannot be made: ${join(dir, "afile")} is a file, ` +
      `not a folder; set output: to a folder`,
  );
  // Said once, at output, when the jsonl file would be under it too.
  assert.equal(
    errorOf(`${head}output: ${underFile}\npipeline:\n  - publish: [{ jsonl: { path: a.jsonl } }]\n`)
      .split("\n").length,
    1,
  );
  const durable = `name: t\ndurability: redis\nredis: redis://127.0.0.1:6379\noutput: ${dir}\n` +
    "sources:\n  g: { kind: generator, count: 1 }\n";
  assert.equal(
    errorOf(`${durable}pipeline:\n  - publish:\n      - jsonl: { path: afile/items.jsonl }\n`),
    `flows/t.yaml:9:24: pipeline[0].publish[0].jsonl.path: afile/items.jsonl cannot be made: ` +
      `${join(dir, "afile")} is a file, not a folder; give the items another path`,
  );
  // A durable flow writes nothing of its own to its output folder: a stdout sink needs none.
  assert.equal(
    errorOf(
      `${durable.replace(`output: ${dir}`, `output: ${underFile}`)}pipeline:\n` +
        "  - publish: [{ stdout: {} }]\n",
    ),
    "ok",
  );
  assert.equal(
    errorOf(`${durable}pipeline:\n  - publish: [{ jsonl: { path: items.jsonl } }]\n`),
    "ok",
  );
  await Deno.remove(dir, { recursive: true });
});
