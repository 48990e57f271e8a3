import assert from "node:assert/strict";
import { RedisProxy } from "./_redis_proxy.ts";
import { redisTest, withRedis } from "./_redis_server.ts";

/** Writes each command (as its words) on a new connection, then reads until it closes. */
async function session(port: number, ...commands: string[][]): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const enc = new TextEncoder();
  for (const words of commands) {
    const wire = `*${words.length}\r\n${words.map((w) => `$${w.length}\r\n${w}\r\n`).join("")}`;
    await conn.write(enc.encode(wire));
  }
  const got = await new Response(conn.readable).text().catch(() => "(reset)");
  return got;
}

redisTest(
  "the proxy loses a request before Redis, a reply after it, and follows a QUIT",
  async () => {
    await withRedis(async (server) => {
      const proxy = new RedisProxy(() => server.port);
      proxy.loseRequest(["set", "a", "1"]);
      proxy.loseReply(["SET", "B", "1"]);
      try {
        assert.equal(await session(proxy.port, ["SET", "a", "1"]), "");
        assert.equal(await session(proxy.port, ["SET", "b", "1"]), "");
        assert.equal(await session(proxy.port, ["SET", "b", "1"], ["QUIT"]), "+OK\r\n+OK\r\n");
        assert.equal(
          await session(server.port, ["GET", "a"], ["GET", "b"], ["QUIT"]),
          "$-1\r\n$1\r\n1\r\n+OK\r\n",
          "the lost request never ran, the lost reply's command did",
        );
        assert.deepEqual(proxy.lost, [
          { lose: "request", what: "set a 1" },
          { lose: "reply", what: "SET B 1" },
        ]);
        assert.equal(proxy.requestsLost + proxy.repliesLost, 2);
      } finally {
        await proxy.close();
      }
    });
  },
);
