import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { parse as parseYaml } from "yaml";
import {
  POINT_ID_NAMESPACE,
  pointId,
  qdrantBase,
  QdrantSink,
  qdrantSink,
  type QdrantSinkConfig,
  qdrantSinkSchema,
} from "../../../adapters/sinks/qdrant_sink.ts";
import { type Envelope, envelope, itemId, type RawItem } from "../../../engine/item.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { embedStage } from "../../../actors/embedder.ts";
import { publishStage } from "../../../actors/publisher.ts";
import { validateStage } from "../../../actors/validator.ts";
import { defineFlow } from "../../../config/define_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { Registry, type SourceSpec } from "../../../engine/registry.ts";
import { FlowStartError, runFlow } from "../../../engine/run_flow.ts";
import { z } from "zod";
import { type FakeQdrant, startFakeQdrant } from "./_fake_qdrant.ts";
import { endingError, isAway, isRetryable } from "../../../engine/errors.ts";
import { Flood, withServer } from "../../_http_server.ts";
import { MAX_REPLY_BYTES } from "../../../adapters/sinks/_qdrant_rest.ts";

const KEY = "s3cret-qdrant-key";
const SEEN = 1_700_000_000_000;

/** A sink on the fake, from a config as a flow file would give it. */
function sinkOn(fake: FakeQdrant, config: Record<string, unknown> = {}) {
  const log = memoryLogger();
  const parsed: QdrantSinkConfig = qdrantSinkSchema.parse({
    url: fake.url,
    collection: "trends",
    ...config,
  });
  return { sink: new QdrantSink({ ...parsed, log }), log };
}

/** n items with `dims`-long vectors; item i has title "Title i". */
function items(n: number, dims = 4, from = 0): Envelope<RawItem>[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    const item = envelope(
      { title: `Title ${i}`, url: `https://example.com/${i}`, domain: "example.com" },
      "hn",
      SEEN,
    );
    item.vector = Array.from({ length: dims }, (_, d) => (i + 1) / (d + 1));
    return item;
  });
}

function deleted(item: Envelope<RawItem>): Envelope<RawItem> {
  return { ...item, vector: undefined, payload: { url: item.payload.url, deleted: true } };
}

const signal = () => new AbortController().signal;

/** Runs `fn` with a fresh fake Qdrant, closed afterwards. */
async function withQdrant(
  fn: (fake: FakeQdrant) => Promise<void>,
  opts: { apiKey?: string } = {},
): Promise<void> {
  const fake = await startFakeQdrant(opts);
  try {
    await fn(fake);
    assert.deepEqual(fake.unexpected, [], "the sink called only known endpoints");
  } finally {
    await fake.close();
  }
}

/** UUIDv5 by the letter of RFC 9562, from node:crypto, to check the package's. */
function uuidv5(name: string, namespace: string): string {
  const ns = Uint8Array.from(namespace.replace(/-/g, "").match(/../g)!, (h) => parseInt(h, 16));
  const b = createHash("sha1").update(ns).update(new TextEncoder().encode(name)).digest()
    .subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x50;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = b.toString("hex");
  return [0, 8, 12, 16, 20, 32].slice(1).map((end, i, a) => hex.slice(i ? a[i - 1] : 0, end))
    .join("-");
}

Deno.test("point ids are UUIDv5 of item ids under the fixed namespace", () => {
  const id = itemId({ url: "https://example.com/a" });
  assert.equal(id, "29a40ccedafd00ee6c075466c47563fc");
  assert.equal(pointId(id), "d542a4b1-aa94-5d25-9763-436bbf918f6c", "a known value, forever");
  assert.equal(pointId(id), uuidv5(id, POINT_ID_NAMESPACE), "matches RFC 9562 computed by hand");
  assert.equal(pointId(id), pointId(envelope({ url: "https://example.com/a" }, "x").id));
  assert.notEqual(pointId(id), pointId(itemId({ url: "https://example.com/b" })));
});

Deno.test("with dimensions set, open creates the collection with that size and distance, and its payload indexes", async () => {
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake, {
      dimensions: 4,
      distance: "Dot",
      payloadIndexes: ["domain", "publishedAt", { field: "wordCount", type: "float" }],
    });
    await sink.open();
    const c = fake.collections.get("trends");
    assert.ok(c, "created at open, before any write");
    assert.equal(c.size, 4);
    assert.equal(c.distance, "Dot");
    assert.deepEqual(
      Object.fromEntries(c.indexes),
      { domain: "keyword", publishedAt: "datetime", wordCount: "float" },
      "bare names are typed by the known item fields, else keyword",
    );
    assert.deepEqual(fake.refused, []);
  });
});

Deno.test("N items become N points with their vectors and payloads, in one wait=true upsert", async () => {
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake);
    await sink.open();
    assert.equal(fake.collections.size, 0, "no dimensions: the collection waits for vectors");
    const batch = items(25);
    await sink.write(batch, signal());

    const c = fake.collections.get("trends")!;
    assert.equal(c.size, 4, "created from the first vectors");
    assert.equal(c.distance, "Cosine", "the default distance");
    assert.equal(c.points.size, 25);
    const point = c.points.get(pointId(batch[3].id))!;
    assert.deepEqual(point.vector, batch[3].vector);
    assert.deepEqual(point.payload, {
      title: "Title 3",
      url: "https://example.com/3",
      domain: "example.com",
      millrace_id: batch[3].id,
      millrace_source: "hn",
      millrace_seen_at: SEEN,
    });
    const upserts = fake.requests.filter((r) =>
      r.path === "/collections/trends/points" && r.method === "PUT"
    );
    assert.equal(upserts.length, 1, "one request per batch");
    assert.equal(upserts[0].query.wait, "true");
    assert.deepEqual(fake.refused, []);
  });
});

Deno.test("a replay, a redelivery or a re-run leaves the point count unchanged", async () => {
  await withQdrant(async (fake) => {
    const batch = items(10);
    const first = sinkOn(fake).sink;
    await first.write(batch, signal());
    await first.write(batch, signal());
    await first.write([...batch.slice(0, 5), batch[0]], signal());
    const rerun = sinkOn(fake).sink;
    await rerun.open();
    await rerun.write(items(10), signal());
    assert.equal(fake.collections.get("trends")!.points.size, 10);
    assert.equal(
      fake.requests.filter((r) => r.method === "PUT" && r.path === "/collections/trends").length,
      1,
      "created once",
    );
  });
});

Deno.test("deleted items remove their points in the same batch; deleting from no collection is a no-op", async () => {
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake);
    await sink.write([deleted(items(1)[0])], signal());
    assert.equal(fake.requests.filter((r) => r.path.endsWith("/points/delete")).length, 0);

    const batch = items(6);
    await sink.write(batch, signal());
    await sink.write([deleted(batch[0]), deleted(batch[1]), ...items(2, 4, 6)], signal());
    const points = fake.collections.get("trends")!.points;
    assert.equal(points.size, 6, "6 - 2 deleted + 2 new");
    assert.ok(!points.has(pointId(batch[0].id)) && !points.has(pointId(batch[1].id)));
    const deletes = fake.requests.filter((r) => r.path === "/collections/trends/points/delete");
    assert.equal(deletes.length, 1);
    assert.deepEqual(deletes[0].body, { points: [pointId(batch[0].id), pointId(batch[1].id)] });

    // The last copy of an id in a batch wins: written then deleted is deleted.
    await sink.write([batch[2], deleted(batch[2])], signal());
    assert.ok(!points.has(pointId(batch[2].id)));
    assert.deepEqual(fake.refused, []);
  });
});

Deno.test("a delete that reaches the sink before its item keeps the point out; the item seen after it comes back", async () => {
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake);
    const [story] = items(1);
    const gone = (at: number) => ({ ...deleted(story), seenAt: at });
    await sink.write([gone(story.seenAt + 60_000)], signal());
    await sink.write([story, ...items(1, 4, 1)], signal());
    const points = fake.collections.get("trends")!.points;
    // Before: the point was upserted after its delete and stayed.
    assert.ok(!points.has(pointId(story.id)), "the deleted story stays deleted");
    assert.equal(points.size, 1, "the other item is written");
    await sink.write([{ ...story, seenAt: story.seenAt + 120_000 }], signal());
    assert.ok(points.has(pointId(story.id)), "seen again after its delete, it is back");
    assert.deepEqual(fake.refused, []);
  });
});

Deno.test("a late, older delete leaves the record at the latest delete, so no copy before it comes back", async () => {
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake);
    const [story] = items(1);
    const gone = (at: number) => ({ ...deleted(story), seenAt: at });
    await sink.write([story], signal());
    await sink.write([gone(story.seenAt + 10_000)], signal());
    // A redelivered or another process's delete, older: it took the record back to +5 s,
    // and a copy seen at +7 s, before the latest delete, brought the point back.
    await sink.write([gone(story.seenAt + 5_000)], signal());
    await sink.write([{ ...story, seenAt: story.seenAt + 7_000 }], signal());
    const record = fake.collections.get("trends_millrace_deleted")!.points.get(pointId(story.id));
    assert.equal(record?.payload.seen_at, story.seenAt + 10_000);
    assert.ok(!fake.collections.get("trends")!.points.has(pointId(story.id)));
  });
});

Deno.test("expire removes the points first seen before the cutoff and keeps the rest", async () => {
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake);
    assert.equal(await sink.expire(SEEN, signal()), 0, "no collection yet: nothing to do");
    const old = items(3).map((item) => ({ ...item, seenAt: SEEN - 10_000 }));
    const fresh = items(2, 4, 3).map((item) => ({ ...item, seenAt: SEEN + 10_000 }));
    const edge = items(1, 4, 5).map((item) => ({ ...item, seenAt: SEEN }));
    await sink.write([...old, ...fresh, ...edge], signal());

    // Said how many (before: undefined, which the publish stage logged at info at every
    // sweep as "removed what qdrant held … (it does not say how many)", none or not).
    assert.equal(await sink.expire(SEEN, signal()), 3);
    const points = fake.collections.get("trends")!.points;
    assert.deepEqual(
      [...points.keys()].sort(),
      [...fresh, ...edge].map((item) => pointId(item.id)).sort(),
      "the old points are gone; one seen exactly at the cutoff stays",
    );
    const deletes = fake.requests.filter((r) => r.path === "/collections/trends/points/delete");
    assert.deepEqual(deletes.at(-1)!.body, {
      filter: { must: [{ key: "millrace_seen_at", range: { lt: SEEN } }] },
    });
    // A sweep with nothing to remove sends no delete of points, and says none.
    const sent = fake.requests.filter((r) => r.path === "/collections/trends/points/delete").length;
    assert.equal(await sink.expire(SEEN, signal()), 0);
    assert.equal(
      fake.requests.filter((r) => r.path === "/collections/trends/points/delete").length,
      sent,
    );
    assert.deepEqual(fake.refused, []);
  });
});

Deno.test("a dimension mismatch fails at start with a clear message when dimensions is set", async () => {
  await withQdrant(async (fake) => {
    fake.addCollection("trends", 1536, "Cosine");
    const { sink } = sinkOn(fake, { dimensions: 256 });
    await assert.rejects(
      sink.open(),
      {
        message: "qdrant sink: collection trends has 1536-dim Cosine vectors, the flow embeds " +
          "256-dim: set the embedder's (and the sink's) dimensions to 1536, or publish to another " +
          "collection",
      },
    );
    const dot = sinkOn(fake, { distance: "Dot" }).sink;
    await assert.rejects(
      dot.open(),
      /has 1536-dim Cosine vectors, the sink's distance is Dot: set the sink's distance to Cosine/,
      "a distance mismatch fails at start even without dimensions",
    );
  });
});

Deno.test("without dimensions, a mismatch fails the first write with the same message", async () => {
  await withQdrant(async (fake) => {
    fake.addCollection("trends", 8, "Cosine");
    const { sink } = sinkOn(fake);
    await sink.open();
    const batch = items(2);
    await assert.rejects(
      sink.write(batch, signal()),
      new RegExp(
        `collection trends has 8-dim Cosine vectors, the flow embeds 4-dim: .* \\(item ${
          batch[0].id
        }\\)`,
      ),
    );
    assert.equal(fake.requests.filter((r) => r.path.endsWith("/points")).length, 0);
  });
});

Deno.test("an existing collection that fits is used as it is", async () => {
  await withQdrant(async (fake) => {
    const c = fake.addCollection("trends", 4, "Cosine");
    const { sink } = sinkOn(fake, { dimensions: 4, payloadIndexes: ["language"] });
    await sink.open();
    await sink.write(items(3), signal());
    assert.equal(c.points.size, 3);
    assert.deepEqual([...c.indexes], [["language", "keyword"]]);
    assert.ok(!fake.requests.some((r) => r.method === "PUT" && r.path === "/collections/trends"));
  });
});

Deno.test("two writes at once create a missing collection once", async () => {
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake);
    await Promise.all([sink.write(items(3), signal()), sink.write(items(3, 4, 3), signal())]);
    assert.equal(fake.collections.get("trends")!.points.size, 6);
    assert.equal(
      fake.requests.filter((r) => r.path === "/collections/trends" && r.method === "PUT")
        .length,
      1,
    );
  });
});

Deno.test("an item without a vector fails its batch, naming the item", async () => {
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake, { dimensions: 4 });
    const batch = items(2);
    batch[1].vector = undefined;
    const error = await sink.write(batch, signal()).catch((e) => e);
    assert.match(
      error.message,
      new RegExp(`item ${batch[1].id} has no vector; put an embed stage before the publish stage`),
    );
    assert.equal(error.retryable, false);
    assert.equal(fake.collections.get("trends")!.points.size, 0);
  });
});

Deno.test("the api key is sent on every request and never logged nor put in an error", async () => {
  await withQdrant(async (fake) => {
    const { sink, log } = sinkOn(fake, { apiKey: KEY, payloadIndexes: ["domain"] });
    await sink.write(items(3), signal());
    await sink.write([deleted(items(1)[0])], signal());
    assert.ok(fake.requests.length >= 4);
    assert.ok(fake.requests.every((r) => r.apiKey === KEY));
    assert.match(
      log.lines.join("\n"),
      /api key of trends at http:\/\/127\.0\.0\.1:\d+ is sent over plain http/,
    );

    const wrong = sinkOn(fake, { apiKey: "wrong-key-123" });
    const error = await sink.open().then(() => wrong.sink.open()).catch((e: Error) => e);
    assert.ok(error instanceof Error);
    assert.match(
      error.message,
      /cannot fetch collection trends at .*: 401 Must provide an API key/,
    );
    const said = [...log.lines, ...wrong.log.lines, error.message, String(error.cause)].join("\n");
    assert.ok(!said.includes(KEY) && !said.includes("wrong-key-123"), said);
  }, { apiKey: KEY });
});

Deno.test("a proxy that quotes the api key in its refusal does not put it in the error", async () => {
  // Qdrant does not quote the key it refuses; a proxy in front of it may.
  await withServer((req) =>
    Response.json(
      { status: { error: `Unauthorized: invalid api-key ${req.headers.get("api-key")}` } },
      { status: 401 },
    ), async (origin) => {
    const parsed = qdrantSinkSchema.parse({ url: origin, collection: "trends", apiKey: KEY });
    const error = await new QdrantSink({ ...parsed, log: memoryLogger() }).open()
      .then(() => undefined, (e: Error) => e);
    assert.ok(error instanceof Error);
    assert.match(error.message, /401 Unauthorized: invalid api-key \[redacted\]/);
    assert.ok(!error.message.includes(KEY), error.message);
    assert.equal(error.cause, undefined, "the client's raw error, reply and all, is not kept");
    assert.ok(!Deno.inspect(error, { depth: 10 }).includes(KEY));
  });
});

Deno.test("a URL without a port reaches Qdrant's 6333, path prefix kept", () => {
  assert.equal(qdrantBase(new URL("https://qdrant.example/")), "https://qdrant.example:6333");
  assert.equal(qdrantBase(new URL("http://127.0.0.1:7000/q/")), "http://127.0.0.1:7000/q");
  assert.equal(qdrantBase(new URL("http://[::1]/qdrant")), "http://[::1]:6333/qdrant");
});

/** The error of opening a sink on a collection "trends" at `origin`; fails if it opens. */
async function openFailure(origin: string): Promise<Error> {
  const parsed = qdrantSinkSchema.parse({ url: origin, collection: "trends" });
  const error = await new QdrantSink({ ...parsed, log: memoryLogger() }).open()
    .then(() => undefined, (e: Error) => e);
  assert.ok(error instanceof Error, "the sink does not open");
  return error;
}

Deno.test("a reply larger than any the sink asks for is refused before it fills memory", async () => {
  const flood = new Flood();
  await withServer(() => flood.response(), async (origin) => {
    const error = await openFailure(origin);
    assert.match(
      error.message,
      new RegExp(
        `cannot fetch collection trends at .*: reply is larger than the limit of ${MAX_REPLY_BYTES} bytes`,
      ),
    );
    // What the server made past the cap sat in socket buffers: a few MiB, not all of it.
    assert.ok(
      flood.sent < 64 * 1024 * 1024,
      `read no further than the cap (${flood.sent} bytes sent)`,
    );
  });
});

Deno.test("a slow Qdrant fails the write after the timeout, and a stopping flow does not wait", async () => {
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake, { dimensions: 4, timeout: "50ms" });
    await sink.open();
    fake.delay = 300;
    const error = await sink.write(items(2), signal()).catch((e) => e);
    // The first call of a write asks which of its ids were deleted (see the delete tests).
    assert.match(
      error.message,
      /cannot read the deletes recorded for 2 points of trends at .*: no answer within 50ms/,
    );
    assert.equal(error.retryable, undefined, "a timeout is worth a retry");
    assert.equal(isAway(error), false, "and no outage: a large batch can be what is slow");
    const stop = new AbortController();
    const write = sink.write(items(2), stop.signal);
    setTimeout(() => stop.abort(new Error("stopping")), 10);
    // The abort's reason, not the 50ms timeout nor the answer: the stop ended it.
    await assert.rejects(write, /stopping/);
    await new Promise((r) => setTimeout(r, 350)); // let the fake answer before it closes
  });
});

Deno.test("an item JSON cannot hold fails its write as not worth a retry, not as an outage", async () => {
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake, { dimensions: 4 });
    await sink.open();
    const [a] = items(1);
    const big = { ...a, payload: { ...a.payload, views: 12n } };
    const error = await sink.write([big], signal()).catch((e) => e);
    // Before: a TypeError taken for Qdrant being away, waited on for ever.
    assert.match(error.message, /cannot be written as JSON: .*BigInt/);
    assert.equal(isAway(error), false);
    assert.equal(isRetryable(error), false);
  });
});

Deno.test("a Qdrant that is gone fails a write as an outage, which the runner waits out", async () => {
  const fake = await startFakeQdrant();
  const { sink } = sinkOn(fake, { dimensions: 4 });
  await sink.open();
  await fake.close(); // its port now refuses connections
  const error = await sink.write(items(1), signal()).catch((e) => e);
  assert.match(error.message, /cannot read the deletes recorded for 1 point of trends at /);
  assert.equal(isAway(error), true);
});

/**
 * The sink opened on a fake Qdrant, whose port then answers with `answer`
 * (a raw connection: what is read of the request, then what to do).
 */
async function afterOpen(answer: (conn: Deno.Conn) => Promise<void>) {
  const fake = await startFakeQdrant();
  const { sink } = sinkOn(fake, { dimensions: 4 });
  await sink.open();
  await fake.close();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: Number(new URL(fake.url).port) });
  const serving = (async () => {
    for await (const conn of listener) answer(conn).catch(() => {}).finally(() => conn.close());
  })().catch(() => {});
  const write = () => sink.write(items(1), signal()).catch((e) => e);
  const close = async () => {
    listener.close();
    await serving;
  };
  return { write, close };
}

Deno.test("a connection closed before Qdrant answers is waited out as away; one dropped mid-reply is retried and split", async () => {
  // A forwarder (docker-proxy, a port-forward) accepts and closes while Qdrant restarts behind
  // it: waited out. A reply cut short was taken for that too, and a batch Qdrant failed on was
  // sent again twice a second for 10 minutes.
  const closed = await afterOpen(() => Promise.resolve());
  try {
    assert.equal(isAway(await closed.write()), true, "closed before an answer: away");
  } finally {
    await closed.close();
  }
  const cut = await afterOpen(async (conn) => {
    await conn.read(new Uint8Array(65536));
    await conn.write(
      new TextEncoder().encode(
        'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{"status":',
      ),
    );
  });
  try {
    const error = await cut.write();
    assert.equal(isAway(error), false, "Qdrant answered: not away");
    assert.equal(isRetryable(error), true);
  } finally {
    await cut.close();
  }
});

Deno.test("a redirect mid-run ends the run, saying where to, with no key in the message", async () => {
  const moved = await afterOpen(async (conn) => {
    await conn.read(new Uint8Array(65536));
    const to = "http://127.0.0.1:9/qdrant/collections?api-key=SECRETKEY123";
    await conn.write(
      new TextEncoder().encode(
        `HTTP/1.1 308 Permanent Redirect\r\nlocation: ${to}\r\ncontent-length: 0\r\n\r\n`,
      ),
    );
  });
  try {
    const error = await moved.write();
    assert.ok(endingError(error), "the run ends");
    assert.equal(isRetryable(error), false);
    assert.match(error.message, /answered 308, redirecting to http:\/\/127\.0\.0\.1:9\/qdrant/);
    assert.doesNotMatch(error.message, /SECRETKEY123/);
  } finally {
    await moved.close();
  }
});

Deno.test("Qdrant's refusal is in the error, with what was asked", async () => {
  await withQdrant(async (fake) => {
    fake.addCollection("trends", 4, "Cosine");
    const { sink } = sinkOn(fake);
    await sink.open();
    // Behind the sink's back, the collection is replaced with another size.
    fake.addCollection("trends", 5, "Cosine");
    const error = await sink.write(items(1), signal()).catch((e) => e);
    assert.match(
      error.message,
      /cannot upsert 1 points into trends at .*: 400 .*expected dim: 5, got 4/,
    );
    assert.equal(error.retryable, false, "a 400 tells the runner not to retry the same request");
  });
});

Deno.test("a URL path is kept as the API prefix", async () => {
  const fake = await startFakeQdrant({ prefix: "/qdrant" });
  try {
    const config = qdrantSinkSchema.parse({ url: `${fake.url}/qdrant/`, collection: "c" });
    await new QdrantSink({ ...config, dimensions: 4 }).open();
    assert.equal(fake.collections.get("c")?.size, 4);
    assert.deepEqual(fake.unexpected, []);
  } finally {
    await fake.close();
  }
});

Deno.test("the sink needs vectors, and the documented YAML example loads", () => {
  assert.deepEqual(qdrantSink.needs, ["embedded"]);
  const registry = new Registry().sink(qdrantSink);
  assert.equal(registry.sinks.get("qdrant"), qdrantSink);
  const [block] = parseYaml(`
- qdrant:
    url: http://127.0.0.1:6333
    apiKey: abc
    collection: trends
    distance: Cosine
    dimensions: 256
    payloadIndexes: [domain, language, publishedAt, { field: keywords, type: keyword }]
    timeout: 30s
    wait: true
`) as { qdrant: unknown }[];
  const config = qdrantSinkSchema.parse(block.qdrant);
  assert.equal(config.timeout, 30_000);
  assert.deepEqual(config.payloadIndexes.map((i) => `${i.field}:${i.type}`), [
    "domain:keyword",
    "language:keyword",
    "publishedAt:datetime",
    "keywords:keyword",
  ]);
  assert.deepEqual(qdrantSinkSchema.parse({ url: "https://q.example", collection: "c" }), {
    url: "https://q.example",
    collection: "c",
    distance: "Cosine",
    payloadIndexes: [],
    timeout: 30_000,
    wait: true,
  });
  for (
    const bad of [
      { url: "q.example:6333", collection: "c" },
      { url: "http://q", collection: "a/b" },
      { url: "http://q", collection: "c", distance: "cosine" },
      { url: "http://q", collection: "c", payloadIndexes: [{ field: "x", type: "geo" }] },
      { url: "http://q", collection: "c", colection: "typo" },
    ]
  ) assert.ok(!qdrantSinkSchema.safeParse(bad).success, JSON.stringify(bad));
});

/** A source of the items its config lists, to run whole flows against the fake. */
const listSource: SourceSpec<{ items: RawItem[] }> = {
  kind: "list",
  summary: "test source",
  schema: z.strictObject({ items: z.array(z.record(z.string(), z.unknown())) }),
  create: ({ items }) => ({
    async *read() {
      yield items;
    },
  }),
};

const flowRegistry = new Registry().source(listSource).stage(validateStage).stage(embedStage)
  .stage(publishStage).sink(qdrantSink);

function flowOf(
  fake: FakeQdrant,
  list: RawItem[],
  embed = true,
  sink: Record<string, unknown> = { dimensions: 16 },
) {
  return defineFlow({
    name: "vectors",
    output: Deno.makeTempDirSync(),
    sources: { s: { kind: "list", items: list } },
    pipeline: [
      "validate",
      ...(embed ? [{ embed: { dimensions: 16 } }] : []),
      { publish: [{ qdrant: { url: fake.url, collection: "trends", ...sink } }] },
    ],
  }, flowRegistry);
}

Deno.test("a flow validates, embeds and publishes to Qdrant; a re-run adds nothing; a delete removes the point", async () => {
  await withQdrant(async (fake) => {
    const list = Array.from({ length: 30 }, (_, i) => ({
      title: `Story number ${i}`,
      url: `https://example.com/${i}`,
    }));
    const run = async (items: RawItem[]) => {
      const deadLetters = new MemoryDeadLetters();
      const report = await runFlow(flowOf(fake, items), {
        registry: flowRegistry,
        deadLetters,
        log: memoryLogger(),
      });
      assert.deepEqual(deadLetters.entries, []);
      return report;
    };
    assert.equal((await run(list)).published, 30);
    const points = fake.collections.get("trends")!.points;
    assert.equal(points.size, 30);
    assert.ok([...points.values()].every((p) => p.vector.length === 16));

    await run(list);
    assert.equal(points.size, 30, "a re-run leaves the count unchanged");

    await run([{ url: "https://example.com/3", deleted: true }]);
    assert.equal(points.size, 29, "the deleted item passed the validator and left Qdrant");
    assert.ok(!points.has(pointId(itemId({ url: "https://example.com/3" }))));
    assert.deepEqual(fake.refused, []);
  });
});

Deno.test("in a flow the sink learns the embed stage's dimension at start, and a collection of another size stops the flow before any item moves", async () => {
  const story = [{ title: "Story number 1", url: "https://example.com/1" }];
  const run = (fake: FakeQdrant, sink: Record<string, unknown>) =>
    runFlow(flowOf(fake, story, true, sink), {
      registry: flowRegistry,
      deadLetters: new MemoryDeadLetters(),
      log: memoryLogger(),
    });
  await withQdrant(async (fake) => {
    await run(fake, {});
    assert.equal(fake.collections.get("trends")?.size, 16, "created with the embedder's length");
  });
  await withQdrant(async (fake) => {
    fake.addCollection("trends", 8, "Cosine");
    const started = await run(fake, {}).then(() => undefined, (e: Error) => e);
    assert.ok(started instanceof FlowStartError, "the flow does not start");
    assert.match(
      started.message,
      /collection trends has 8-dim Cosine vectors, the flow embeds 16-dim/,
    );
    assert.equal(fake.requests.filter((r) => r.path.includes("/points")).length, 0, "no write");
  });
  // A sink's dimensions that disagree with the embed stage's is refused when the flow is checked,
  // at the sink's field (it passed check and the run refused it at start).
  await withQdrant((fake) => {
    assert.throws(
      () => flowOf(fake, story, true, { dimensions: 32 }),
      /pipeline\[2\]\.publish\[0\]\.qdrant\.dimensions: dimensions is 32 but the embed stage makes vectors of 16/,
    );
    assert.equal(fake.requests.length, 0, "nothing asked of Qdrant");
    // A later embed stage whose length is not known till its vectors come is the one that counts.
    defineFlow({
      name: "two-embeds",
      output: Deno.makeTempDirSync(),
      sources: { s: { kind: "list", items: story } },
      pipeline: [
        "validate",
        { embed: { dimensions: 16 } },
        {
          embed: {
            provider: "openai",
            model: "m",
            apiKey: "k",
            baseUrl: "http://127.0.0.1:9/v1",
          },
        },
        { publish: [{ qdrant: { url: fake.url, collection: "trends", dimensions: 1536 } }] },
      ],
    }, flowRegistry);
    return Promise.resolve();
  });
});

Deno.test("a Qdrant sink with no embed stage before it is refused when the flow loads", async () => {
  await withQdrant((fake) => {
    assert.throws(() => flowOf(fake, [], false), /publish needs embedded items/);
    assert.equal(fake.requests.length, 0);
    return Promise.resolve();
  });
});

Deno.test("a merge update sets the point's merged payload fields, never its vector, and only to a higher revision", async () => {
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake);
    await sink.open();
    const [a, b] = items(2);
    a.payload = { ...a.payload, engagement: { score: 1, comments: 7 }, revision: 1 };
    await sink.write([a], signal());
    const update = (revision: number, score: number, sources: string[]): Envelope<RawItem> => ({
      ...a,
      vector: undefined,
      update: true,
      payload: {
        sources: sources.map((source) => ({ source, url: a.payload.url, seenAt: "x" })),
        engagement: { score },
        lastSeenAt: "2024-01-01T00:00:00.000Z",
        revision,
      },
    });
    await sink.write([update(3, 9, ["hn", "rss"]), {
      ...b,
      update: true,
      payload: { revision: 2 },
    }], signal());
    await sink.write([update(2, 4, ["hn"])], signal()); // late and stale
    assert.deepEqual(fake.refused, []);
    const c = fake.collections.get("trends")!;
    assert.equal(c.points.size, 1, "an update makes no point");
    const point = c.points.get(pointId(a.id))!;
    assert.deepEqual(point.vector, a.vector);
    assert.equal(point.payload.title, "Title 0");
    assert.equal(point.payload.revision, 3);
    assert.deepEqual(point.payload.engagement, { score: 9, comments: 7 });
    assert.deepEqual((point.payload.sources as { source: string }[]).map((s) => s.source), [
      "hn",
      "rss",
    ]);
    assert.equal(
      fake.requests.filter((r) => r.path === "/collections/trends/points" && r.method === "PUT")
        .length,
      1,
      "one upsert",
    );
  });
});

Deno.test("a story's first copy sent again (a re-run) takes its new content and vector, and keeps the point's merged fields and first sighting", async () => {
  // The point was left as it was: a corrected re-scrape reached Postgres and not Qdrant.
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake);
    await sink.open();
    const [a, b] = items(2);
    const merged = {
      ...a.payload,
      sources: [{ source: "hn", url: a.payload.url!, seenAt: "x" }, {
        source: "rss",
        url: a.payload.url!,
        seenAt: "y",
      }],
      revision: 2,
    };
    await sink.write([{ ...a, payload: merged }, b], signal());
    // A run after a restart: its Deduper remembers nothing, so both go out as first copies.
    const later = SEEN + 60_000;
    const again = (item: Envelope<RawItem>, payload: RawItem) => ({
      ...item,
      seenAt: later,
      payload,
    });
    const corrected = {
      ...again(a, {
        ...a.payload,
        title: "Title 0, corrected",
        sources: [merged.sources[0]],
        revision: 1,
      }),
      vector: [9, 9, 9, 9],
    };
    await sink.write([corrected, again(b, { ...b.payload, title: "Title 1, edited" })], signal());
    const c = fake.collections.get("trends")!;
    const pa = c.points.get(pointId(a.id))!.payload;
    assert.deepEqual(
      [pa.revision, (pa.sources as unknown[]).length],
      [2, 2],
      "the merged story stays",
    );
    assert.equal(pa.title, "Title 0, corrected", "with the copy's content");
    assert.deepEqual(c.points.get(pointId(a.id))!.vector, [9, 9, 9, 9], "and its vector");
    const pb = c.points.get(pointId(b.id))!.payload;
    assert.equal(pb.title, "Title 1, edited", "a copy at no lower revision is written");
    assert.equal(pb.millrace_seen_at, SEEN, "with its first sighting, which retention counts from");
    await sink.expire(SEEN + 1, signal());
    assert.equal(c.points.size, 0, "both were first seen before the cutoff");
  });
});

Deno.test("a re-run's first copy at the revision the point holds keeps the point's sightings; engagement by maximum", async () => {
  // A memory flow run again sends each story's first copy at revision 1, stamped now, perhaps
  // from another source: it replaced the point's sightings with its own.
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake);
    await sink.open();
    const [a] = items(1);
    const copy = (source: string, seenAt: number, score: number): Envelope<RawItem> => ({
      ...a,
      source,
      seenAt,
      payload: {
        ...a.payload,
        sources: [{ source, url: a.payload.url!, seenAt: new Date(seenAt).toISOString() }],
        engagement: { score },
        lastSeenAt: new Date(seenAt).toISOString(),
        revision: 1,
      },
    });
    await sink.write([copy("wire", SEEN, 5)], signal());
    await sink.write([copy("mirror", SEEN + 60_000, 8)], signal());
    await sink.write([copy("wire", SEEN + 120_000, 6)], signal());
    const p = fake.collections.get("trends")!.points.get(pointId(a.id))!.payload;
    assert.deepEqual(p.sources, copy("wire", SEEN, 5).payload.sources, "the first sighting");
    assert.equal(p.lastSeenAt, new Date(SEEN).toISOString());
    assert.deepEqual(p.engagement, { score: 8 }, "the highest count seen, never lowered");
    assert.equal(p.millrace_seen_at, SEEN);
    // An item's own field named revision, with no sightings, is content: its latest copy wins.
    const [, b] = items(2);
    const own = (score: number) => ({
      ...b,
      payload: { ...b.payload, revision: 7, engagement: { score } },
    });
    await sink.write([own(50)], signal());
    await sink.write([own(40)], signal());
    const pb = fake.collections.get("trends")!.points.get(pointId(b.id))!.payload;
    assert.deepEqual(pb.engagement, { score: 40 });
    assert.ok(!("sources" in pb), "no sightings added");
  });
});

Deno.test("an answer about the collection that is not Qdrant's JSON fails open with what to check", async () => {
  // It failed with "Cannot read properties of undefined (reading 'result')".
  await withServer(() => new Response("<html>a proxy's page</html>"), async (origin) => {
    const error = await openFailure(origin);
    assert.match(
      error.message,
      /cannot fetch collection trends at .*: 200 answered with a body that is not Qdrant's JSON \("<html>a proxy's page<\/html>"\): is the url Qdrant's REST port, 6333/,
    );
  });
});

/** A sink on collection trends at `url` (a proxy's, say), for 4-d vectors. */
function sinkAt(url: string): QdrantSink {
  const parsed = qdrantSinkSchema.parse({ url, collection: "trends" });
  return new QdrantSink({ ...parsed, dimensions: 4, log: memoryLogger() });
}

/**
 * The fake behind a proxy that answers for it once `answer` returns a
 * Response: what stands between a sink and its Qdrant (a load balancer, a key
 * rotated mid-run).
 */
async function withProxy(
  fn: (fake: FakeQdrant, url: string) => Promise<void>,
  answer: () => Response | undefined,
): Promise<void> {
  await withQdrant(async (fake) => {
    await withServer(async (req) => {
      const mine = answer();
      if (mine) return mine;
      const u = new URL(req.url);
      const body = req.method === "GET" ? undefined : await req.arrayBuffer();
      return await fetch(fake.url + u.pathname + u.search, {
        method: req.method,
        headers: req.headers,
        body,
      });
    }, (origin) => fn(fake, origin));
  });
}

Deno.test("a 2xx answer that is not Qdrant's JSON is not taken as written: the write fails as away", async () => {
  // A proxy's maintenance page while Qdrant restarts: the items were counted published
  // (and a durable flow acknowledged them) while Qdrant held none of them.
  let page = false;
  const html = () => new Response("<html>Service temporarily unavailable</html>", { status: 200 });
  await withProxy(async (fake, url) => {
    const sink = sinkAt(url);
    await sink.open();
    page = true;
    const error = await sink.write(items(3), signal()).then(() => undefined, (e) => e);
    assert.ok(error instanceof Error, "the write fails");
    assert.match(error.message, /: 200 answered with a body that is not Qdrant's JSON/);
    assert.equal(isAway(error), true, "waited out as a service that is away");
    assert.equal(fake.collections.get("trends")?.points.size, 0);
    page = false;
    await sink.write(items(3), signal());
    assert.equal(fake.collections.get("trends")?.points.size, 3);
  }, () => page ? html() : undefined);
});

Deno.test("a key refused or a collection gone mid-run ends the run rather than fail each item", async () => {
  for (const status of [401, 403, 404]) {
    let refuse = false;
    const refusal = () => Response.json({ status: { error: `refused ${status}` } }, { status });
    await withProxy(async (_fake, url) => {
      const sink = sinkAt(url);
      await sink.open();
      refuse = true;
      const error = await sink.write(items(2), signal()).then(() => undefined, (e) => e);
      assert.ok(error instanceof Error, `${status}: the write fails`);
      assert.ok(endingError(error), `${status}: the run ends (${error.message})`);
      assert.match(error.message, new RegExp(`${status} refused ${status}`));
    }, () => refuse ? refusal() : undefined);
  }
});

/**
 * A proxy to the fake that holds the first request matching `held` until
 * the test calls `release`: the request itself (not sent yet), or with
 * `answered`, its answer (the request applied). A writer behind it and one
 * straight to the fake let the second's writes land between the first's steps.
 */
async function withHeldRequest(
  fake: FakeQdrant,
  held: { method: string; path: string; answered?: boolean },
  fn: (origin: string, hold: { arrived: Promise<void>; release: () => void }) => Promise<void>,
): Promise<void> {
  let arrive!: () => void, release!: () => void;
  const arrived = new Promise<void>((r) => arrive = r);
  const released = new Promise<void>((r) => release = r);
  let holding = true;
  await withServer(async (req) => {
    const u = new URL(req.url);
    const body = req.method === "GET" ? undefined : await req.arrayBuffer();
    const pass = () =>
      fetch(fake.url + u.pathname + u.search, { method: req.method, headers: req.headers, body });
    if (!holding || req.method !== held.method || u.pathname !== held.path) return await pass();
    holding = false;
    const answer = held.answered ? await pass() : undefined;
    arrive();
    await released;
    return answer ?? await pass();
  }, (origin) => fn(origin, { arrived, release }));
}

Deno.test("a delete written while another writer's upsert of its item is on its way keeps the point out", async () => {
  await withQdrant(async (fake) => {
    // Writer A's upsert is held until writer B has written the item's delete:
    // A read no delete, B recorded it and removed the point, then A's upsert landed.
    const upsert = { method: "PUT", path: "/collections/trends/points" };
    await withHeldRequest(fake, upsert, async (origin, hold) => {
      const a = sinkAt(origin), b = sinkAt(fake.url);
      await b.open();
      const [story] = items(1);
      const writing = a.write([story], signal());
      await hold.arrived;
      await b.write([{ ...deleted(story), seenAt: story.seenAt + 1000 }], signal());
      hold.release();
      await writing;
      assert.ok(!fake.collections.get("trends")!.points.has(pointId(story.id)));
    });
  });
});

/** A merge update of `item`'s story at `revision`, seen by `sources`. */
function storyUpdate(
  item: Envelope<RawItem>,
  revision: number,
  sources: string[],
): Envelope<RawItem> {
  return {
    ...item,
    vector: undefined,
    update: true,
    payload: {
      sources: sources.map((source) => ({ source, url: item.payload.url, seenAt: "x" })),
      engagement: { score: revision },
      lastSeenAt: "2024-01-01T00:00:00.000Z",
      revision,
    },
  };
}

Deno.test("a merge update that comes before its story's first copy is laid over that copy when it comes", async () => {
  // Dropped for want of a point, it left Qdrant at the first copy's revision for good, where
  // Postgres and JSONL held the whole story (two processes; dlq replay sending both back).
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake);
    await sink.open();
    const [a, b] = items(2);
    a.payload = { ...a.payload, engagement: { comments: 7 }, revision: 1 };
    b.payload = { ...b.payload, revision: 2 };
    await sink.write([storyUpdate(a, 3, ["hn", "rss"]), storyUpdate(b, 2, ["hn"])], signal());
    await sink.write([storyUpdate(a, 2, ["hn"])], signal()); // older, and late: changes nothing
    assert.equal(fake.collections.get("trends")?.points.size ?? 0, 0, "an update makes no point");
    await sink.write([a, b], signal());
    const c = fake.collections.get("trends")!;
    const pa = c.points.get(pointId(a.id))!;
    assert.deepEqual(pa.vector, a.vector);
    assert.equal(pa.payload.title, "Title 0");
    assert.equal(pa.payload.revision, 3);
    assert.deepEqual(pa.payload.engagement, { score: 3, comments: 7 });
    assert.equal((pa.payload.sources as unknown[]).length, 2);
    const pb = c.points.get(pointId(b.id))!;
    assert.equal(pb.payload.revision, 2, "an update no newer than the copy leaves the copy");
    assert.equal(pb.payload.sources, undefined);
    // Retention takes the records too.
    await sink.expire(SEEN + 1, signal());
    assert.equal(fake.collections.get("trends_millrace_updates")!.points.size, 0);
  });
});

Deno.test("a merge update of a deleted story is not kept for it: the story back after its delete starts afresh", async () => {
  // Kept as an early update, it was laid over the story's copy seen after the delete, and then
  // held the story's own later updates off (revision 2 already), where Postgres skipped it.
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake);
    await sink.open();
    const [a] = items(1);
    await sink.write([a], signal());
    await sink.write([{ ...deleted(a), seenAt: SEEN + 1000 }], signal());
    await sink.write([{ ...storyUpdate(a, 2, ["hn", "rss"]), seenAt: SEEN + 2000 }], signal());
    const back = { ...a, seenAt: SEEN + 3000, payload: { ...a.payload, revision: 1 } };
    await sink.write([back], signal());
    const c = fake.collections.get("trends")!;
    assert.equal(c.points.get(pointId(a.id))!.payload.revision, 1, "no stale update laid over it");
    await sink.write([{ ...storyUpdate(a, 2, ["hn", "blog"]), seenAt: SEEN + 4000 }], signal());
    const sources = c.points.get(pointId(a.id))!.payload.sources as { source: string }[];
    assert.deepEqual(sources.map((x) => x.source), ["hn", "blog"], "its own update applies");
  });
});

Deno.test("an update recorded before its story's first copy, then deleted with it, is not laid over a copy back after", async () => {
  await withQdrant(async (fake) => {
    const { sink } = sinkOn(fake);
    await sink.open();
    const [a, b] = items(2);
    await sink.write([b], signal()); // the collection exists
    await sink.write([{ ...storyUpdate(a, 3, ["hn", "rss"]), seenAt: SEEN + 1000 }], signal());
    await sink.write([{ ...deleted(a), seenAt: SEEN + 2000 }], signal());
    await sink.write([{ ...a, seenAt: SEEN + 3000 }], signal());
    const pa = fake.collections.get("trends")!.points.get(pointId(a.id))!;
    assert.equal(pa.payload.revision, undefined, "the copy as it came");
  });
});

Deno.test("a merge update written while another writer's first copy of its story is on its way is not lost", async () => {
  await withQdrant(async (fake) => {
    // Writer A's upsert of the first copy is held until writer B has written the story's
    // update: B found no point, and the copy landed after.
    const upsert = { method: "PUT", path: "/collections/trends/points" };
    await withHeldRequest(fake, upsert, async (origin, hold) => {
      const a = sinkAt(origin), b = sinkAt(fake.url);
      await b.open();
      const [story] = items(1);
      story.payload = { ...story.payload, revision: 1 };
      const writing = a.write([story], signal());
      await hold.arrived;
      await b.write([storyUpdate(story, 2, ["hn", "rss"])], signal());
      hold.release();
      await writing;
      const point = fake.collections.get("trends")!.points.get(pointId(story.id))!;
      assert.equal(point.payload.revision, 2);
      assert.equal((point.payload.sources as unknown[]).length, 2);
    });
  });
});

Deno.test("a 429 or a 5xx for a moment is tried again by the sink, as long as Retry-After asks; one that lasts is waited out as away", async () => {
  // Failed at once, each batch was retried by the runner, then split: a review's 8 s of 429s
  // with Retry-After: 2 dead-lettered 1,381 items and updates.
  const refusals: Response[] = [];
  await withProxy(async (fake, url) => {
    const sink = sinkAt(url);
    await sink.open();
    refusals.push(
      new Response('{"status":{"error":"too many"}}', {
        status: 429,
        headers: { "retry-after": "0" },
      }),
      new Response("oops", { status: 500 }),
      new Response("", { status: 503 }),
    );
    await sink.write(items(3), signal());
    assert.equal(fake.collections.get("trends")?.points.size, 3);
    assert.equal(refusals.length, 0, "each refusal was met, and the write still went through");
    // Every call that is refused every time fails, marked away, after its tries.
    for (let i = 0; i < 4; i++) {
      refusals.push(new Response("{}", { status: 429, headers: { "retry-after": "0" } }));
    }
    const error = await sink.write(items(4), signal()).then(() => undefined, (e) => e);
    assert.ok(error instanceof Error);
    assert.match(error.message, /: 429 /);
    assert.equal(isAway(error), true);
    assert.equal(refusals.length, 0, "four tries");
  }, () => refusals.shift());
});

Deno.test("a merge update whose set-payload finds no point, and whose story's first copy lands just after, is not lost", async () => {
  // The update's merge found no point; the first copy was written whole (reading no record);
  // then the update saw the point there and took itself for applied: revision 1 for good.
  await withQdrant(async (fake) => {
    const merge = { method: "POST", path: "/collections/trends/points/batch", answered: true };
    await withHeldRequest(fake, merge, async (origin, hold) => {
      const updater = sinkAt(origin), writer = sinkAt(fake.url);
      await writer.open();
      const [story] = items(1);
      story.payload = { ...story.payload, revision: 1 };
      const updating = updater.write([storyUpdate(story, 2, ["hn", "rss"])], signal());
      await hold.arrived;
      await writer.write([story], signal());
      hold.release();
      await updating;
      const point = fake.collections.get("trends")!.points.get(pointId(story.id))!;
      assert.equal(point.payload.revision, 2);
    });
  });
});
