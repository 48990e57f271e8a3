import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import {
  RedisStreamSink,
  redisStreamSink,
  type RedisStreamSinkOptions,
  redisStreamSinkSchema,
} from "../../../adapters/sinks/redis_stream_sink.ts";
import { closeRedis, connectRedis } from "../../../engine/redis/connection.ts";
import { flowKeys } from "../../../engine/redis/keys.ts";
import { type Envelope, envelope, type RawItem } from "../../../engine/item.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { type BuildEnv, Registry } from "../../../engine/registry.ts";
import { RedisServer, redisTest, withRedis } from "../../_redis_server.ts";
import { isAway, isOutage } from "../../../engine/errors.ts";

const SEEN = 1_700_000_000_000;
const signal = () => new AbortController().signal;

function items(n: number, from = 0): Envelope<RawItem>[] {
  return Array.from({ length: n }, (_, k) =>
    envelope(
      { title: `Title ${from + k}`, url: `https://example.com/${from + k}`, score: from + k },
      "hn",
      SEEN,
    ));
}

function options(extra: Record<string, unknown> = {}): RedisStreamSinkOptions {
  return redisStreamSinkSchema.parse({ stream: "{t}:published", ...extra });
}

/** Every entry of the stream as a map of its fields. */
async function entries(url: string, stream = "{t}:published"): Promise<Record<string, string>[]> {
  const redis = await connectRedis(url);
  try {
    const raw = await redis.xrange(stream, "-", "+");
    return raw.map(([, flat]) => {
      const fields: Record<string, string> = {};
      for (let i = 0; i < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
      return fields;
    });
  } finally {
    await closeRedis(redis);
  }
}

redisTest("N items become N entries with id, source, seenAt and the payload as JSON", async () => {
  await withRedis(async (server) => {
    const sink = new RedisStreamSink({ url: server.url }, options());
    await sink.open();
    const batch = items(1200); // more than one script call, still one pipeline
    await sink.write(batch, signal());
    await sink.close();

    const got = await entries(server.url);
    assert.equal(got.length, 1200);
    assert.deepEqual(got.map((e) => e.id), batch.map((b) => b.id), "in batch order");
    assert.deepEqual(got[7], {
      id: batch[7].id,
      source: "hn",
      seenAt: String(SEEN),
      payload: JSON.stringify({ title: "Title 7", url: "https://example.com/7", score: 7 }),
    });
  });
});

redisTest("a replay, a repeat within a batch and a re-run append nothing twice", async () => {
  await withRedis(async (server) => {
    const batch = items(50);
    const sink = new RedisStreamSink({ url: server.url }, options());
    await sink.write(batch, signal());
    await sink.write(batch, signal());
    await sink.write([...items(5, 50), ...items(5, 50)], signal());
    await sink.close();
    const rerun = new RedisStreamSink({ url: server.url }, options());
    await rerun.write(items(55), signal());
    await rerun.close();
    assert.equal((await entries(server.url)).length, 55);
  });
});

redisTest("a deleted item appends one tombstone, once", async () => {
  await withRedis(async (server) => {
    const sink = new RedisStreamSink({ url: server.url }, options());
    const [a, b] = items(2);
    const gone = { ...a, payload: { url: a.payload.url, deleted: true } };
    await sink.write([a, b], signal());
    await sink.write([gone], signal());
    await sink.write([gone, a], signal());
    await sink.close();
    const got = await entries(server.url);
    assert.equal(got.length, 3);
    assert.deepEqual(got[2], { id: a.id, source: "hn", seenAt: String(SEEN), deleted: "true" });
  });
});

redisTest(
  "an item whose tombstone came first is not appended after it: the delete stands",
  async () => {
    await withRedis(async (server) => {
      const sink = new RedisStreamSink({ url: server.url }, options());
      const [a, b] = items(2);
      await sink.write([{ ...a, payload: { url: a.payload.url, deleted: true } }], signal());
      // Nor is news of the story (a merge update of a later copy) after it.
      const update: Envelope<RawItem> = {
        ...a,
        update: true,
        payload: { sources: [], engagement: { score: 9 }, lastSeenAt: "x", revision: 2 },
      };
      await sink.write([a, b, update], signal());
      await sink.close();
      // Before: a's entry came after its tombstone, and a reader keeping the last entry kept it.
      assert.deepEqual((await entries(server.url)).map((e) => [e.id, e.deleted ?? "false"]), [
        [a.id, "true"],
        [b.id, "false"],
      ]);
    });
  },
);

redisTest(
  "an item seen after its delete comes back, and a delete seen after that removes it again, as in Postgres",
  async () => {
    // The stream kept the delete whatever came after: a story republished after its delete (or
    // seen a moment after a delete that raced ahead of it) was in Postgres and Qdrant, not here.
    await withRedis(async (server) => {
      const sink = new RedisStreamSink({ url: server.url }, options());
      const [a, b] = items(2);
      const at = (e: Envelope<RawItem>, ms: number, deleted = false) => ({
        ...e,
        seenAt: SEEN + ms,
        payload: deleted ? { url: e.payload.url, deleted: true } : e.payload,
      });
      const present = async () => {
        const last = new Map<string, boolean>();
        for (const e of await entries(server.url)) last.set(e.id, e.deleted !== "true");
        return [...last].filter(([, here]) => here).map(([id]) => id);
      };
      await sink.write([at(a, 100), at(b, 100, true)], signal());
      await sink.write([at(a, 200, true), at(b, 200)], signal());
      assert.deepEqual(await present(), [b.id], "a deleted; b seen after its delete");
      await sink.write([at(a, 150), at(b, 150, true)], signal());
      assert.deepEqual(await present(), [b.id], "a copy or a delete older than the last: nothing");
      await sink.write([at(a, 300)], signal());
      assert.deepEqual(await present(), [a.id, b.id], "a seen after its delete: back");
      const count = (await entries(server.url)).length;
      await sink.write([at(a, 400), at(a, 250, true), at(b, 500)], signal());
      assert.equal((await entries(server.url)).length, count, "nothing new");
      await sink.write([at(a, 600, true)], signal());
      assert.deepEqual(await present(), [b.id], "a delete seen after it came back removes it");
      // A second delete, later: a copy seen between the two stays out (Postgres keeps the latest).
      await sink.write([at(a, 800, true), at(a, 700)], signal());
      assert.deepEqual(await present(), [b.id], "a copy seen before the latest delete");
      await sink.close();
    });
  },
);

redisTest("fields keeps only the named payload fields", async () => {
  await withRedis(async (server) => {
    const sink = new RedisStreamSink({ url: server.url }, options({ fields: ["url", "nope"] }));
    await sink.write(items(1), signal());
    await sink.close();
    const [entry] = await entries(server.url);
    assert.deepEqual(JSON.parse(entry.payload), { url: "https://example.com/0" });
  });
});

redisTest(
  "fields applies to merge updates: only the merged fields it names, none when it names none",
  async () => {
    // An update entry carried the story's whole merged payload (its growing sources list) to a
    // consumer that asked for a few fields, where jsonl and stdout with the same fields write none.
    await withRedis(async (server) => {
      const [a] = items(1);
      const update: Envelope<RawItem> = {
        ...a,
        update: true,
        payload: {
          sources: [{ source: "x" }],
          engagement: { score: 9 },
          lastSeenAt: "x",
          revision: 2,
        },
      };
      const plain = new RedisStreamSink({ url: server.url }, options({ fields: ["title", "url"] }));
      assert.equal(plain.updates, false, "the publish stage sends it none");
      await plain.write([a, update], signal());
      await plain.close();
      assert.deepEqual((await entries(server.url)).map((e) => e.update ?? "item"), ["item"]);
      const some = new RedisStreamSink(
        { url: server.url },
        options({ stream: "{t}:some", fields: ["title", "engagement"] }),
      );
      assert.equal(some.updates, true);
      await some.write([a, update], signal());
      await some.close();
      const written = await entries(server.url, "{t}:some");
      assert.deepEqual(written.map((e) => JSON.parse(e.payload)), [
        { title: "Title 0" },
        { engagement: { score: 9 } },
      ]);
    });
  },
);

redisTest("ids are forgotten after idTtl, and the stream is trimmed near maxLen", async () => {
  await withRedis(async (server) => {
    let now = 1_000_000;
    const sink = new RedisStreamSink(
      { url: server.url },
      // An hour: the id set's expiry runs on Redis's clock, and a second of
      // it could pass on a loaded machine before the checks below read it.
      { ...options({ idTtl: "1h" }), now: () => now },
    );
    const batch = items(3);
    await sink.write(batch, signal());
    now += 3_599_999;
    await sink.write(batch, signal());
    assert.equal((await entries(server.url)).length, 3, "remembered within idTtl");
    now += 2;
    await sink.write(batch, signal());
    assert.equal((await entries(server.url)).length, 6, "appended again after idTtl");

    const redis = await connectRedis(server.url);
    try {
      assert.equal(await redis.zcard("{t}:published:ids"), 3, "older ids were dropped");
      const ttl = await redis.pttl("{t}:published:ids");
      assert.ok(ttl > 0 && ttl <= 3_600_000, `the id set expires with idTtl (pttl ${ttl})`);
    } finally {
      await closeRedis(redis);
    }

    const small = new RedisStreamSink({ url: server.url }, options({ stream: "s", maxLen: 100 }));
    await small.write(items(2000), signal());
    await small.close();
    const length = (await entries(server.url, "s")).length;
    assert.ok(length >= 100 && length < 1000, `trimmed to about 100 (${length})`);
    await sink.close();
  });
});

redisTest("a durable flow's sink borrows the flow's connection and leaves it open", async () => {
  await withRedis(async (server) => {
    const redis = await connectRedis(server.url);
    try {
      const env: BuildEnv = {
        flow: "t",
        baseDir: ".",
        outDir: ".",
        log: memoryLogger(),
        registry: new Registry(),
        durable: { redis, keys: flowKeys("t") },
      };
      const sink = await redisStreamSink.create(options(), env);
      await sink.open?.();
      await sink.write(items(4), signal());
      await sink.close?.();
      assert.equal(redis.status, "ready", "the flow's connection is not closed by the sink");
      assert.equal(await redis.xlen("{t}:published"), 4);
    } finally {
      await closeRedis(redis);
    }
  });
});

Deno.test("a memory flow must give a url; a bad one fails at open, its password masked", async () => {
  const env: BuildEnv = {
    flow: "t",
    baseDir: ".",
    outDir: ".",
    log: memoryLogger(),
    registry: new Registry(),
  };
  assert.throws(
    () => redisStreamSink.create(options(), env),
    /redis-stream sink of \{t\}:published: set `url`; only a durable flow has a Redis of its own/,
  );
  const sink = await redisStreamSink.create(
    { ...options(), url: "http://user:hunter2@127.0.0.1:1" },
    env,
  );
  const error = await Promise.resolve(sink.open?.()).catch((e: Error) => e);
  assert.ok(error instanceof Error);
  assert.match(
    error.message,
    /^redis-stream sink: bad Redis URL http:\/\/user:\*\*\*@.*unsupported scheme/,
  );
  assert.ok(!error.message.includes("hunter2"));
});

Deno.test("the documented YAML example loads", () => {
  const [block] = parseYaml(`
- redis-stream:
    url: redis://127.0.0.1:6379
    stream: "{trends}:published"
    maxLen: 1000000
    fields: [title, url, domain]
    idTtl: 7d
`) as Record<string, unknown>[];
  assert.deepEqual(redisStreamSinkSchema.parse(block["redis-stream"]), {
    url: "redis://127.0.0.1:6379",
    stream: "{trends}:published",
    maxLen: 1_000_000,
    fields: ["title", "url", "domain"],
    idTtl: 604_800_000,
  });
  assert.ok(!redisStreamSinkSchema.safeParse({ stream: "s", maxlen: 5 }).success, "typos caught");
});

redisTest(
  "expire removes the entries appended before the cutoff, and forgets their ids",
  async () => {
    await withRedis(async (server) => {
      const sink = new RedisStreamSink({ url: server.url }, options());
      const old = items(3);
      await sink.write(old, signal());
      await new Promise((r) => setTimeout(r, 5));
      const cutoff = Date.now();
      await new Promise((r) => setTimeout(r, 5));
      const fresh = items(2, 3);
      await sink.write(fresh, signal());

      assert.equal(await sink.expire(cutoff, signal()), 3, "the three old entries were removed");
      assert.deepEqual((await entries(server.url)).map((e) => e.id), fresh.map((f) => f.id));
      assert.equal(await sink.expire(cutoff, signal()), 0, "a second sweep removes nothing");

      // The old ids were forgotten with their entries, the fresh ones were not.
      await sink.write([...old.slice(0, 1), ...fresh], signal());
      assert.deepEqual(
        (await entries(server.url)).map((e) => e.id),
        [...fresh.map((f) => f.id), old[0].id],
      );
      await sink.close();
    });
  },
);

redisTest("a merge update appends one entry per story and revision", async () => {
  await withRedis(async (server) => {
    const sink = new RedisStreamSink({ url: server.url }, options());
    const [a] = items(1);
    const update = (revision: number): Envelope<RawItem> => ({
      ...a,
      update: true,
      payload: { sources: [], engagement: { score: revision }, lastSeenAt: "x", revision },
    });
    await sink.write([a, update(2)], signal());
    await sink.write([update(2), update(3)], signal());
    await sink.close();
    const got = await entries(server.url);
    assert.deepEqual(
      got.map((e) => [e.id, e.update, e.payload && JSON.parse(e.payload).revision]),
      [
        [a.id, undefined, undefined],
        [a.id, "true", 2],
        [a.id, "true", 3],
      ],
    );
  });
});

redisTest(
  "a Redis that goes away fails a write at once, as away, and the sink appends once it is back",
  async () => {
    // The write after a drop was held in the client's offline queue until Redis came back,
    // which may be never: the flow stalled with no warning and a hard stop did not end it.
    const server = await RedisServer.start();
    const sink = new RedisStreamSink({ url: server.url }, options());
    try {
      await sink.write(items(1), signal());
      await server.stop();
      const stop = new AbortController();
      const guard = setTimeout(() => stop.abort(new Error("the write was still pending")), 10_000);
      let away: Error | undefined;
      for (let tries = 0; tries < 50 && !away; tries++) {
        const error = await sink.write(items(1, 1), stop.signal).then(() => undefined, (e) => e);
        assert.ok(error instanceof Error, "no write succeeds while Redis is down");
        assert.ok(isOutage(error) || isAway(error), `waited out by the runner: ${error.message}`);
        if (isAway(error) && !isOutage(error)) away = error;
        else await new Promise((r) => setTimeout(r, 50));
      }
      clearTimeout(guard);
      assert.match(
        away!.message,
        /redis-stream sink: cannot append to \{t\}:published: Redis is not connected/,
      );
      const again = await RedisServer.start({ port: server.port });
      try {
        for (let tries = 0;; tries++) {
          const error = await sink.write(items(1, 1), signal()).then(() => undefined, (e) => e);
          if (!error) break;
          assert.ok(tries < 100 && isAway(error), `fails as away until it reconnects: ${error}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.deepEqual((await entries(again.url)).map((e) => e.id), [items(1, 1)[0].id]);
      } finally {
        await sink.close();
        await again.stop();
      }
    } finally {
      await server.stop();
    }
  },
);

redisTest("a hard stop ends a write that Redis does not answer", async () => {
  await withRedis(async (server) => {
    const sink = new RedisStreamSink({ url: server.url }, options());
    try {
      await sink.write(items(1), signal());
      server.pause(); // the connection stays up; nothing answers
      const stop = new AbortController();
      const writing = sink.write(items(1, 1), stop.signal);
      stop.abort(new Error("hard stop"));
      await assert.rejects(writing, /^Error: hard stop$/);
    } finally {
      server.resume();
      await sink.close();
    }
  });
});

redisTest(
  "a Redis that refuses writes for now (a replica during a failover: READONLY) fails a write as away",
  async () => {
    // Not the items' fault: retried, split and dead-lettered, every item of the run was lost
    // to dead letters in the seconds a failover takes.
    await withRedis(async (primary) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-sink-replica-" });
      const replica = await RedisServer.start({ args: ["--dir", dir] });
      const admin = await connectRedis(replica.url);
      const sink = new RedisStreamSink({ url: replica.url }, options());
      try {
        await admin.call("REPLICAOF", "127.0.0.1", String(primary.port));
        const error = await sink.write(items(1), signal()).then(() => undefined, (e) => e);
        assert.match(String(error?.message), /cannot append to \{t\}:published: READONLY/);
        assert.equal(isAway(error), true);
        const expired = await sink.expire(SEEN + 1, signal()).then(() => undefined, (e) => e);
        assert.match(String(expired?.message), /READONLY|EXECABORT/);
        assert.equal(isAway(expired), true);
        await admin.call("REPLICAOF", "NO", "ONE"); // promoted
        await sink.write(items(1), signal());
        assert.equal((await entries(replica.url)).length, 1);
      } finally {
        await sink.close();
        await closeRedis(admin);
        await replica.stop();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
