/**
 * A Redis ACL user that lacks a right the flow needs: no wait mends it and
 * every item would meet it alike, so a run ends at once with exit 2 (an
 * answer of no, as a refused password), saying what Redis refused, its
 * items pending; `status` and `dlq` say it in a line. Before, a user
 * without scripting ran for ever doing nothing, and one without the dedupe
 * keys sent every item to dead letters and exited 0.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { closeRedis, connectRedis } from "../../engine/redis/connection.ts";
import { flowKeys } from "../../engine/redis/keys.ts";
import { redisTest, withRedis } from "../_redis_server.ts";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const MAIN = join(ROOT, "main.ts");

async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"]
      .concat(MAIN, args),
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    // Only so that a run that never ends fails the test instead of hanging it.
    signal: AbortSignal.timeout(90_000),
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** A durable flow named acl, with a dedupe stage, on Redis as `user`; returns its file. */
async function aclFlow(dir: string, port: number, user: string): Promise<string> {
  const file = join(dir, "acl.yaml");
  await Deno.writeTextFile(
    file,
    [
      "name: acl",
      "durability: redis",
      `redis: redis://${user}:pw@127.0.0.1:${port}`,
      `output: ${join(dir, "out")}`,
      "sources:",
      "  news: { kind: generator, count: 200, seed: 1 }",
      "pipeline:",
      "  - validate: { require: [title, url] }",
      "  - dedupe: { key: [url] }",
      "  - publish:",
      "      - jsonl: { path: items.jsonl }",
      "",
    ].join("\n"),
  );
  return file;
}

redisTest(
  "a Redis user that lacks a right ends the run with exit 2 and what Redis refused, and loses nothing",
  async () => {
    await withRedis(async (server) => {
      const admin = await connectRedis(server.url);
      const dir = await Deno.makeTempDir({ prefix: "millrace-acl-" });
      try {
        await admin.call("ACL", "SETUSER", "noscript", "on", ">pw", "~*", "+@all", "-@scripting");
        // Every key of the flow but its Deduper's.
        const p = "millrace:{acl}";
        const kinds = ["in", "lease", "fence", "pos", "done", "tick", "emitted", "host", "history"];
        const single = ["dlq", "stages", "pipeline", "configs", "keyed", "passed", "orders"];
        await admin.call(
          "ACL",
          ...["SETUSER", "nodedupe", "on", ">pw", "+@all"],
          ...kinds.map((k) => `~${p}:${k}:*`),
          ...single.concat("steps", "tries").map((k) => `~${p}:${k}`),
        );

        const noscript = await cli([await aclFlow(dir, server.port, "noscript")]);
        assert.equal(noscript.code, 2, noscript.stderr);
        assert.match(
          noscript.stderr,
          /error: acl: source news: Redis refused this flow's user a Redis call \(NOPERM [^)]*'eval' command\): no wait mends a missing right/,
        );
        await admin.call("FLUSHALL");

        const nodedupe = await cli([await aclFlow(dir, server.port, "nodedupe")]);
        assert.equal(nodedupe.code, 2, nodedupe.stderr);
        assert.match(
          nodedupe.stderr,
          /error: acl: Redis refused this flow's user a script \(ERR The user executing the script can't access at least one of the keys/,
        );
        // Not one item sent to dead letters for it (the generator's bad items are validate's):
        // they wait in Redis for a user with the right.
        const letters = await admin.xrange(flowKeys("acl").dlq, "-", "+");
        const stages = letters.map(([, fields]) => fields[fields.indexOf("stage") + 1]);
        assert.deepEqual([...new Set(stages)], ["validate"]);
        assert.match(nodedupe.stderr, /stay pending in Redis/);
        assert.doesNotMatch(nodedupe.stderr, /\n\s+at /);
      } finally {
        await closeRedis(admin);
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "status and dlq as a Redis user without the flow's keys say it in a line, exit 2",
  async () => {
    await withRedis(async (server) => {
      const admin = await connectRedis(server.url);
      const dir = await Deno.makeTempDir({ prefix: "millrace-acl-" });
      try {
        await admin.call("ACL", "SETUSER", "other", "on", ">pw", "~millrace:{other}:*", "+@all");
        const file = await aclFlow(dir, server.port, "other");
        for (const command of [["status"], ["dlq", "list"], ["dlq", "list", "--json"]]) {
          const { code, stderr } = await cli([...command, file]);
          assert.equal(code, 2, stderr);
          assert.match(stderr, /^error: Redis refused it: NOPERM .*keys/m);
          assert.match(stderr, /the Redis user needs the flow's keys/);
          assert.doesNotMatch(stderr, /\n\s+at /);
        }
      } finally {
        await closeRedis(admin);
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
