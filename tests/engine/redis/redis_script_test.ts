import assert from "node:assert/strict";
import { closeRedis, connectRedis } from "../../../engine/redis/connection.ts";
import { isScriptFault, RedisAwayError, RedisScript } from "../../../engine/redis/redis_script.ts";
import { RedisServer, redisTest } from "./_harness.ts";
import { isOutage } from "../../../engine/errors.ts";

const SET = "redis.call('SET', KEYS[1], ARGV[1]) return 1";

/** "ran", "not sent" (RedisAwayError), or how else the call failed. */
function howItEnded(call: Promise<unknown>): Promise<string> {
  return call.then(
    () => "ran",
    (e: Error) => e instanceof RedisAwayError ? "not sent" : `failed: ${e.message}`,
  );
}

/**
 * Calls `script` while its Redis is down, then brings Redis back (empty, as
 * after a crash that lost the last writes); returns how the call ended and
 * whether its write is there.
 */
async function callWhileAway(script: RedisScript): Promise<{ ended: string; written: unknown }> {
  let server = await RedisServer.start();
  const redis = await connectRedis(server.url);
  try {
    await server.stop();
    while (redis.status === "ready") await new Promise((r) => setTimeout(r, 10));
    const call = howItEnded(script.run(redis, ["written"], ["by the call"]));
    server = await RedisServer.start({ port: server.port });
    const ended = await call;
    return { ended, written: await redis.get("written") };
  } finally {
    await closeRedis(redis);
    await server.stop();
  }
}

redisTest(
  "a script made with offlineQueue: false is not sent after a reconnect; it fails unsent",
  async () => {
    assert.deepEqual(await callWhileAway(new RedisScript(SET, { offlineQueue: false })), {
      ended: "not sent",
      written: null,
    });
  },
);

redisTest("by default a script called while Redis is away runs once it is back", async () => {
  assert.deepEqual(await callWhileAway(new RedisScript(SET)), {
    ended: "ran",
    written: "by the call",
  });
});

/**
 * Calls `script` on a connection whose socket is closing while the client
 * still says "ready" (Redis closed it a moment ago, and the close is not
 * handled yet): played by ending the client's own side of the socket.
 */
async function callWhileClosing(script: RedisScript): Promise<{ ended: string; written: unknown }> {
  const server = await RedisServer.start();
  const redis = await connectRedis(server.url);
  try {
    (redis as unknown as { stream: { end(): void } }).stream.end();
    assert.equal(redis.status, "ready", "the client has not seen the close yet");
    const ended = await howItEnded(script.run(redis, ["written"], ["by the call"]));
    return { ended, written: await redis.get("written") };
  } finally {
    await closeRedis(redis);
    await server.stop();
  }
}

redisTest(
  "offlineQueue: false also holds while the client still says ready on a closing socket",
  async () => {
    // ioredis would queue the call (the socket is not writable) and send it
    // once reconnected: after a restart that lost writes, unchecked.
    assert.deepEqual(await callWhileClosing(new RedisScript(SET, { offlineQueue: false })), {
      ended: "not sent",
      written: null,
    });
    assert.deepEqual(await callWhileClosing(new RedisScript(SET)), {
      ended: "ran",
      written: "by the call",
    });
  },
);

redisTest(
  "a script that fails on its own is a fault; one Redis could not run yet is not",
  async () => {
    const server = await RedisServer.start();
    const redis = await connectRedis(server.url);
    try {
      // Lua's unpack refuses about 8,000 values: every try would fail the same way.
      const wide = new RedisScript("return redis.call('XACK', KEYS[1], 'g', unpack(ARGV))");
      const ids = Array.from({ length: 9000 }, (_, i) => `${i + 1}-0`);
      const unpacked = await wide.run(redis, ["s"], ids).then(() => undefined, (e) => e);
      assert.match(String(unpacked?.message), /too many results to unpack/);
      assert.equal(isScriptFault(unpacked), true);
      // A command inside the script refused for the key's type.
      await redis.set("text", "x");
      const typed = await new RedisScript("return redis.call('XADD', KEYS[1], '*', 'a', 'b')")
        .run(redis, ["text"], []).then(() => undefined, (e) => e);
      assert.equal(isScriptFault(typed), true, String(typed?.message));
      // Memory full or a busy server: refused before any write, worth another try.
      const oom = new Error(
        "OOM command not allowed when used memory > 'maxmemory'. script: 1f, on @user_script:1.",
      );
      assert.equal(isScriptFault(oom), false);
      const misconf = new Error(
        "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. script: 1f, on @user_script:1.",
      );
      assert.equal(isScriptFault(misconf), false);
      assert.equal(isScriptFault(new RedisAwayError("EVALSHA")), false);
      assert.equal(isScriptFault(new Error("Connection is closed.")), false);
    } finally {
      await closeRedis(redis);
      await server.stop();
    }
  },
);

redisTest(
  "a script Redis refuses for now (memory full) is an outage to wait out, not the batch's failure",
  async () => {
    // The Deduper's scripts take this path: a moment of OOM sent good items to dead letters.
    const server = await RedisServer.start();
    const redis = await connectRedis(server.url);
    try {
      const script = new RedisScript(SET, { offlineQueue: false });
      await redis.config("SET", "maxmemory", "1");
      const refused = await script.run(redis, ["k"], ["v"]).then(() => undefined, (e) => e);
      assert.match(String(refused?.message), /^OOM command not allowed/);
      assert.equal(isOutage(refused), true);
      assert.equal(isScriptFault(refused), false);
      await redis.config("SET", "maxmemory", "0");
      assert.equal(await script.run(redis, ["k"], ["v"]), 1);
      // A script's own fault stays the batch's.
      await redis.set("text", "x");
      const typed = await new RedisScript("return redis.call('XADD', KEYS[1], '*', 'a', 'b')")
        .run(redis, ["text"], []).then(() => undefined, (e) => e);
      assert.equal(isOutage(typed), false);
    } finally {
      await closeRedis(redis);
      await server.stop();
    }
  },
);
