import assert from "node:assert/strict";
import {
  closeRedis,
  connectRedis,
  maskUrl,
  RedisConnectionLostError,
  type RedisEvent,
  redisOptions,
  RedisUnreachableError,
} from "../../../engine/redis/connection.ts";
import { freePort, RedisServer, redisTest, withRedis } from "../../_redis_server.ts";

/** An ACL user "app" with password "s3cret" and every permission. */
const APP_USER = ["app", "on", ">s3cret", "~*", "&*", "+@all"];

Deno.test("maskUrl hides the password and keeps everything else", () => {
  assert.equal(
    maskUrl("redis://app:s3cret@10.0.0.5:6379/2"),
    "redis://app:***@10.0.0.5:6379/2",
  );
  assert.equal(maskUrl("rediss://:p%40ss@cache.example.com"), "rediss://:***@cache.example.com");
  assert.equal(maskUrl("redis://u:p@ss@host:1"), "redis://u:***@host:1");
  assert.equal(maskUrl("redis://lonesecret@host:6379"), "redis://***@host:6379");
  assert.equal(maskUrl("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
});

Deno.test("redisOptions reads user, password, db and TLS from the URL", () => {
  const o = redisOptions("rediss://app:p%40ss@cache.example.com:6380/3", { name: "millrace:x" });
  assert.equal(o.username, "app");
  assert.equal(o.password, "p@ss");
  assert.equal(o.host, "cache.example.com");
  assert.equal(o.port, 6380);
  assert.equal(o.db, 3);
  assert.deepEqual(o.tls, {});
  assert.equal(o.connectionName, "millrace:x");
  assert.equal(o.maxRetriesPerRequest, null);
  assert.equal(o.autoResendUnfulfilledCommands, false);

  const plain = redisOptions("redis://:pw@localhost");
  assert.equal(plain.username, undefined);
  assert.equal(plain.password, "pw");
  assert.equal(plain.port, 6379);
  assert.equal(plain.tls, undefined);
  assert.equal(plain.db, undefined);

  assert.equal(redisOptions("unix:///run/redis.sock").path, "/run/redis.sock");
  assert.throws(() => redisOptions("http://localhost:6379"), /unsupported scheme "http:"/);
  assert.throws(() => redisOptions("redis://localhost/cache"), /database number/);
});

redisTest("connects, pings, names the connection and selects the db of the URL path", async () => {
  await withRedis(async (server) => {
    const redis = await connectRedis(`${server.url}/2`, { name: "millrace:test" });
    const other = await connectRedis(server.url);
    try {
      assert.equal(await redis.ping(), "PONG");
      assert.equal(await redis.client("GETNAME"), "millrace:test");
      await redis.set("where", "db2");
      assert.equal(await other.get("where"), null, "db 0 does not see db 2's key");
      await other.select(2);
      assert.equal(await other.get("where"), "db2");
    } finally {
      await closeRedis(redis);
      await closeRedis(other);
    }
    assert.equal(redis.status, "end");
  });
});

redisTest("an ACL user and password from the URL authenticate", async () => {
  await withRedis(async (server) => {
    const url = `redis://app:s3cret@127.0.0.1:${server.port}`;
    const redis = await connectRedis(url);
    try {
      assert.equal(await redis.call("ACL", "WHOAMI"), "app");
    } finally {
      await closeRedis(redis);
    }
  }, { args: ["--user", ...APP_USER, "--user", "default", "off"] });
});

redisTest("requirepass with an empty user (redis://:password@) authenticates", async () => {
  await withRedis(async (server) => {
    const redis = await connectRedis(`redis://:hunter2@127.0.0.1:${server.port}`);
    try {
      assert.equal(await redis.call("ACL", "WHOAMI"), "default");
    } finally {
      await closeRedis(redis);
    }
  }, { args: ["--requirepass", "hunter2"] });
});

redisTest("a wrong password fails at once with the URL masked", async () => {
  await withRedis(async (server) => {
    const url = `redis://app:wrong-pass@127.0.0.1:${server.port}`;
    const error = await connectRedis(url, { timeout: 5000 }).then(
      () => assert.fail("connected with a wrong password"),
      (e) => e,
    );
    assert.ok(error instanceof RedisUnreachableError);
    // Reached, and refused: the message does not say "cannot reach".
    assert.match(error.message, /^Redis refused us at redis:\/\/app:\*\*\*@127\.0\.0\.1:\d+: /);
    assert.match(error.message, /WRONGPASS/);
    assert.ok(!error.message.includes("wrong-pass"), error.message);
    assert.doesNotMatch(error.message, /no answer within/, "refused, not timed out");
  }, { args: ["--user", ...APP_USER] });
});

Deno.test("a URL whose password holds an unencoded / is refused as a bad URL, password masked", async () => {
  // Base64 passwords hold "/": unencoded, it ends the authority and no parser reads the URL.
  const error = await connectRedis("redis://:hun/ter2@127.0.0.1:1", { timeout: 1000 }).then(
    () => assert.fail("connected"),
    (e) => e,
  );
  assert.ok(error instanceof RedisUnreachableError);
  assert.match(error.message, /^bad Redis URL redis:\/\/:\*\*\*@127\.0\.0\.1:1: not a URL/);
  assert.match(error.message, /percent-encoded: \/ as %2F/);
  assert.ok(!error.message.includes("ter2"), error.message);
  assert.ok(!error.url.includes("ter2"), error.url);
});

redisTest("no password where one is required fails at once, saying NOAUTH", async () => {
  await withRedis(async (server) => {
    await assert.rejects(connectRedis(server.url, { timeout: 5000 }), (e: Error) => {
      assert.ok(e instanceof RedisUnreachableError);
      assert.match(e.message, /NOAUTH/);
      assert.doesNotMatch(e.message, /no answer within/, "refused, not timed out");
      return true;
    });
  }, { args: ["--requirepass", "hunter2"] });
});

redisTest("a db number the server does not have is refused", async () => {
  await withRedis(async (server) => {
    await assert.rejects(connectRedis(`${server.url}/99`, { timeout: 2000 }), /DB index/);
  });
});

redisTest("an unreachable port fails within the timeout, naming the masked URL", async () => {
  const port = freePort();
  const error = await connectRedis(`redis://app:s3cret@127.0.0.1:${port}`, { timeout: 700 })
    .then(() => assert.fail("connected to nothing"), (e) => e);
  assert.ok(error instanceof RedisUnreachableError);
  assert.equal(error.url, `redis://app:***@127.0.0.1:${port}`);
  assert.match(
    error.message,
    new RegExp(`redis://app:\\*\\*\\*@127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`),
  );
  assert.ok(!error.message.includes("s3cret"));
});

redisTest("a command issued while Redis is down waits and succeeds once it is back", async () => {
  let server = await RedisServer.start();
  const events: RedisEvent[] = [];
  const redis = await connectRedis(server.url, { onEvent: (e) => events.push(e) });
  try {
    await server.stop();
    await until(() => redis.status === "reconnecting");
    const pending = redis.set("key", "written while down");
    let settled = false;
    pending.finally(() => settled = true).catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(settled, false, "the command waits instead of failing");

    server = await RedisServer.start({ port: server.port });
    assert.equal(await pending, "OK");
    assert.equal(await redis.get("key"), "written while down");
    assert.ok(events.includes("reconnecting"));
    assert.ok(events.includes("ready"));
  } finally {
    await closeRedis(redis);
    await server.stop();
  }
});

redisTest(
  "a command in flight when the connection drops fails instead of being resent",
  async () => {
    let server = await RedisServer.start();
    const redis = await connectRedis(server.url, { blocking: true });
    try {
      // Settled into a value at once, so the rejection is never briefly unhandled.
      const blocked = redis.xread("BLOCK", 0, "STREAMS", "nothing", "$").then(
        () => "resolved",
        (e: Error) => e,
      );
      await until(async () => {
        const probe = await connectRedis(server.url);
        const clients = String(await probe.client("LIST"));
        await closeRedis(probe);
        return clients.includes("cmd=xread");
      });
      await server.stop();
      const error = await blocked;
      assert.ok(error instanceof RedisConnectionLostError, String(error));
      assert.match(error.message, /XREAD was in flight/);
      server = await RedisServer.start({ port: server.port });
      assert.equal(await redis.ping(), "PONG");
    } finally {
      await closeRedis(redis);
      await server.stop();
    }
  },
);

redisTest("a MULTI in flight when the connection drops rejects its exec", async () => {
  const debug = { args: ["--enable-debug-command", "yes"] };
  let server = await RedisServer.start(debug);
  const redis = await connectRedis(server.url);
  try {
    // DEBUG SLEEP holds the server so the transaction is surely in flight when it dies.
    const slow = redis.multi().set("a", "1").call("DEBUG", "SLEEP", "2").exec();
    const outcome = slow.then(() => "resolved", (e: Error) => e);
    await new Promise((r) => setTimeout(r, 200));
    await server.stop();
    const result = await outcome;
    assert.ok(result instanceof RedisConnectionLostError, `exec settled as ${String(result)}`);
    server = await RedisServer.start({ port: server.port });
    assert.equal(await redis.get("a"), null, "the transaction never ran");
    assert.equal(await redis.ping(), "PONG");
  } finally {
    await closeRedis(redis);
    await server.stop();
  }
});

redisTest(
  "closing while Redis is down fails what was queued and leaves nothing running",
  async () => {
    const server = await RedisServer.start();
    const redis = await connectRedis(server.url);
    await server.stop();
    await until(() => redis.status === "reconnecting");
    const queued = redis.get("anything").then(() => "resolved", (e: Error) => e.message);
    await closeRedis(redis);
    assert.equal(await queued, "Connection is closed.");
    assert.equal(redis.status, "end");
  },
);

redisTest(
  "the reply timeout of a dropped connection does not fail the connection that replaces it",
  async () => {
    // Longer than a restart of redis-server, so the new connection is up before it runs out.
    const replyTimeout = 2000;
    const debug = { args: ["--enable-debug-command", "yes"] };
    let server = await RedisServer.start(debug);
    const events: RedisEvent[] = [];
    const redis = await connectRedis(server.url, { replyTimeout, onEvent: (e) => events.push(e) });
    try {
      // A command the server can never answer: it is frozen when the command is sent, then killed.
      server.pause();
      const lost = redis.get("key").then(() => "answered", (e: Error) => e);
      await server.stop();
      assert.ok(await lost instanceof RedisConnectionLostError);
      server = await RedisServer.start({ ...debug, port: server.port });
      await until(() => redis.status === "ready");
      events.length = 0;

      // A command in flight on the new connection (each one answered within 100ms) at every
      // moment until well past the moment the lost GET's timeout ran out.
      const failures: string[] = [];
      for (const end = Date.now() + 2 * replyTimeout; Date.now() < end;) {
        await redis.call("DEBUG", "SLEEP", "0.1").catch((e: Error) => failures.push(e.message));
      }
      assert.deepEqual({ failures, events }, { failures: [], events: [] });
    } finally {
      await closeRedis(redis);
      await server.stop();
    }
  },
);

redisTest(
  "a frozen server is reported once while a reply is owed, and again when it answers",
  async () => {
    const server = await RedisServer.start();
    const events: RedisEvent[] = [];
    const redis = await connectRedis(server.url, {
      stallAfter: 200,
      onEvent: (e) => events.push(e),
    });
    try {
      server.pause();
      let answer: Promise<string | null> | undefined;
      try {
        await new Promise((r) => setTimeout(r, 500));
        assert.deepEqual(events, [], "nothing owed, nothing to report");
        answer = redis.set("key", "sent to a frozen server");
        await until(() => events.length > 0);
        await new Promise((r) => setTimeout(r, 500));
        assert.deepEqual(events, ["unresponsive"], "once, and the connection is kept");
      } finally {
        server.resume();
      }
      assert.equal(await answer, "OK");
      await until(() => events.length > 1);
      assert.deepEqual(events, ["unresponsive", "ready"]);
    } finally {
      await closeRedis(redis);
      await server.stop();
    }
  },
);

redisTest(
  "a server frozen past the reply timeout fails the command in flight and is reconnected to",
  async () => {
    const server = await RedisServer.start();
    const events: string[] = [];
    const redis = await connectRedis(server.url, {
      stallAfter: 100,
      replyTimeout: 500,
      onEvent: (e, d) => events.push(e === "error" ? `error: ${d.error}` : e),
    });
    try {
      server.pause();
      try {
        const lost = await redis.get("key").then(() => "answered", (e: Error) => e);
        assert.ok(lost instanceof RedisConnectionLostError, String(lost));
      } finally {
        server.resume();
      }
      assert.equal(await redis.ping(), "PONG");
      await until(() => events.at(-1) === "ready");
      assert.deepEqual(events.slice(0, 4), [
        "unresponsive",
        "error: no reply from Redis within 500ms",
        "dropped",
        "reconnecting",
      ]);
      assert.equal(events.filter((e) => e === "unresponsive").length, 1);
    } finally {
      await closeRedis(redis);
      await server.stop();
    }
  },
);

/** Polls `check` until it holds (at most 5s). */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  for (const deadline = Date.now() + 5000; Date.now() < deadline;) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("condition not met within 5s");
}

Deno.test("a server whose refusal repeats the AUTH it was sent shows the password masked", async () => {
  // A server (or a proxy in front of Redis) that answers every command by quoting it back.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(4096);
        try {
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            const sent = new TextDecoder().decode(buf.subarray(0, n)).replace(/\r\n/g, " ");
            await conn.write(new TextEncoder().encode(`-WRONGPASS you sent: ${sent}\r\n`));
          }
        } catch {
          // the client hung up
        } finally {
          conn.close();
        }
      })();
    }
  })();
  try {
    const { port } = listener.addr as Deno.NetAddr;
    const url = `redis://:REDISPASSWORD123@127.0.0.1:${port}/0`;
    const error = await connectRedis(url, { timeout: 3000 }).then(
      () => assert.fail("connected to a server that refuses everything"),
      (e) => e,
    );
    assert.ok(error instanceof RedisUnreachableError);
    assert.match(error.message, /WRONGPASS you sent: .*auth/i);
    assert.ok(!error.message.includes("REDISPASSWORD123"), error.message);
  } finally {
    listener.close();
    await serving.catch(() => {});
  }
});
