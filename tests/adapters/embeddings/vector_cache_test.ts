import assert from "node:assert/strict";
import { join } from "node:path";
import { Redis } from "ioredis";
import {
  FileVectorCache,
  openVectorCache,
  RedisVectorCache,
  redisVectorKey,
  textKey,
} from "../../../adapters/embeddings/vector_cache.ts";
import { flowKeys } from "../../../engine/redis/keys.ts";
import type { BuildEnv } from "../../../engine/registry.ts";
import { testEnv } from "../../_outcome.ts";
import { redisTest, withRedis } from "../../_redis_server.ts";

const v = (...xs: number[]) => Float32Array.from(xs);

Deno.test("a text's key is 32 hex chars of its SHA-256, the same every time", () => {
  assert.equal(textKey("hello"), "2cf24dba5fb0a30e26e83b2ac5b9e29e");
  assert.equal(textKey("hello"), textKey("hello"));
  assert.notEqual(textKey("hello"), textKey("hello "));
});

Deno.test("the file cache finds on reopen what an earlier run stored, bit for bit", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "m.3.f32");
  const first = await FileVectorCache.open(path, 3);
  const a = v(0.1, -0.2, 1 / 3);
  await first.setMany([[textKey("a"), a], [textKey("b"), v(1, 2, 3)]]);
  assert.deepEqual(await first.getMany([textKey("a"), textKey("zzz")]), [a, undefined]);
  await first.close();
  assert.equal((await Deno.stat(path)).size, 2 * (16 + 12), "16 key bytes + 3 floats each");

  const again = await FileVectorCache.open(path, 3);
  assert.equal(again.size, 2);
  const [got, other, none] = await again.getMany([textKey("a"), textKey("b"), textKey("c")]);
  assert.deepEqual(got, a);
  assert.deepEqual(other, v(1, 2, 3));
  assert.equal(none, undefined);
  await again.close();
});

Deno.test("the file cache cuts off a record cut short by a crash, and what it appends next is found", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "m.2.f32");
  const cache = await FileVectorCache.open(path, 2);
  await cache.setMany([[textKey("a"), v(1, 2)]]);
  await cache.close();
  await Deno.writeFile(path, new Uint8Array(10), { append: true });
  const reopened = await FileVectorCache.open(path, 2);
  assert.equal(reopened.size, 1);
  assert.deepEqual((await reopened.getMany([textKey("a")]))[0], v(1, 2));
  // Appended after the cut record, b's record stood at the wrong offset: the next run read a
  // vector made of leftover bytes, and never found b.
  await reopened.setMany([[textKey("b"), v(3, 4)]]);
  await reopened.close();
  const third = await FileVectorCache.open(path, 2);
  assert.equal(third.size, 2);
  assert.deepEqual(await third.getMany([textKey("a"), textKey("b")]), [v(1, 2), v(3, 4)]);
  assert.equal((await Deno.stat(path)).size, 2 * (16 + 8), "the cut bytes are gone");
  await third.close();
});

Deno.test("a store cut short (a full disk) leaves no torn record for later ones to follow", async () => {
  // The records after a cut one stood at the wrong offset: the next run served a vector of one
  // record's tail and the next one's key (-2.52e+25 in a published vector), with no warning.
  const dir = await Deno.makeTempDir();
  const path = join(dir, "m.2.f32");
  const cache = await FileVectorCache.open(path, 2);
  await cache.setMany([[textKey("a"), v(1, 2)]]);
  const write = Deno.FsFile.prototype.write;
  Deno.FsFile.prototype.write = async function (this: Deno.FsFile, bytes: Uint8Array) {
    Deno.FsFile.prototype.write = () => Promise.reject(new Error("No space left on device"));
    return await write.call(this, bytes.subarray(0, 10)); // part of the record, then no room
  };
  try {
    await assert.rejects(cache.setMany([[textKey("b"), v(3, 4)]]), /No space left/);
  } finally {
    Deno.FsFile.prototype.write = write;
  }
  await cache.setMany([[textKey("c"), v(5, 6)]]);
  await cache.close();
  const reopened = await FileVectorCache.open(path, 2);
  assert.deepEqual(await reopened.getMany([textKey("a"), textKey("b"), textKey("c")]), [
    v(1, 2),
    undefined,
    v(5, 6),
  ]);
  assert.equal((await Deno.stat(path)).size, 2 * (16 + 8), "whole records only");
  await reopened.close();
});

Deno.test("concurrent stores to one file never interleave their records", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "m.4.f32");
  const cache = await FileVectorCache.open(path, 4);
  await Promise.all(
    Array.from({ length: 20 }, (_, b) =>
      cache.setMany(
        Array.from({ length: 50 }, (_, i) => [textKey(`${b}/${i}`), v(b, i, b + i, -1)] as const),
      )),
  );
  await cache.close();
  const reopened = await FileVectorCache.open(path, 4);
  assert.equal(reopened.size, 1000);
  assert.deepEqual((await reopened.getMany([textKey("7/31")]))[0], v(7, 31, 38, -1));
  await reopened.close();
});

Deno.test("in memory mode the cache is a file per model and dimension under the output directory", async () => {
  const env = testEnv();
  const small = await openVectorCache(env, "org/model:v1", 2);
  assert.ok(small instanceof FileVectorCache);
  assert.equal(small.path, join(env.outDir, "vectors", "org%2Fmodel%3Av1.2.f32"));
  await small.setMany([[textKey("x"), v(1, 2)]]);
  const wider = await openVectorCache(env, "org/model:v1", 3);
  assert.deepEqual(await wider.getMany([textKey("x")]), [undefined], "another dimension misses");
  await small.close?.();
  await wider.close?.();
});

redisTest(
  "in a durable flow the cache is one Redis hash per model and dimension under the flow's tag",
  async () => {
    await withRedis(async (server) => {
      const redis = new Redis(server.url, { lazyConnect: true });
      await redis.connect();
      try {
        const keys = flowKeys("news");
        const env: BuildEnv = { ...testEnv(), durable: { redis, keys } };
        const cache = await openVectorCache(env, "text-embedding-3-small", 3);
        assert.ok(cache instanceof RedisVectorCache);
        const key = "millrace:{news}:vectors:text-embedding-3-small:3";
        assert.equal(redisVectorKey(keys, "text-embedding-3-small", 3), key);

        const sent: string[] = [];
        const send = redis.sendCommand.bind(redis);
        redis.sendCommand = (command, stream) => (sent.push(command.name), send(command, stream));
        const a = v(0.5, -0.25, 1e-7);
        await cache.setMany([[textKey("a"), a], [textKey("b"), v(1, 2, 3)]]);
        const got = await cache.getMany([textKey("a"), textKey("b"), textKey("c")]);
        assert.deepEqual(sent, ["hset", "hmget"], "one round trip to store, one to look up");
        assert.deepEqual(got, [a, v(1, 2, 3), undefined]);

        assert.equal(await redis.hlen(key), 2);
        const raw = await redis.hgetBuffer(key, textKey("a"));
        assert.equal(raw?.length, 12, "float32 bytes, not JSON");
        await redis.hset(key, textKey("short"), "abc");
        assert.deepEqual(
          await cache.getMany([textKey("short")]),
          [undefined],
          "a foreign value misses",
        );
      } finally {
        redis.disconnect();
      }
    });
  },
);
