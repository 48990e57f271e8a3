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
import type { Redis } from "ioredis";
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

/**
 * A durable flow named acl, with a dedupe stage, on Redis as `user`; returns its file.
 * `source` and `sinks` replace the generator and the jsonl sink; `extra` lines are added.
 */
async function aclFlow(
  dir: string,
  port: number,
  user: string,
  opts: { source?: string; sinks?: string[]; extra?: string[] } = {},
): Promise<string> {
  const file = join(dir, "acl.yaml");
  await Deno.writeTextFile(
    file,
    [
      "name: acl",
      "durability: redis",
      `redis: redis://${user}:pw@127.0.0.1:${port}`,
      `output: ${join(dir, "out")}`,
      ...opts.extra ?? [],
      "sources:",
      `  news: ${opts.source ?? "{ kind: generator, count: 200, seed: 1 }"}`,
      "pipeline:",
      "  - validate: { require: [title, url] }",
      "  - dedupe: { key: [url] }",
      "  - publish:",
      ...(opts.sinks ?? ["jsonl: { path: items.jsonl }"]).map((s) => `      - ${s}`),
      "",
    ].join("\n"),
  );
  return file;
}

/** The stages the dead letters of the flow acl name, once each. */
async function letterStages(admin: Redis): Promise<string[]> {
  const letters = await admin.xrange(flowKeys("acl").dlq, "-", "+");
  return [...new Set(letters.map(([, fields]) => fields[fields.indexOf("stage") + 1]))];
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
        assert.deepEqual(await letterStages(admin), ["validate"]);
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

redisTest(
  "a right refused inside a script, by a sink, to the claim check or to the politeness buckets ends the run too",
  async () => {
    await withRedis(async (server) => {
      const admin = await connectRedis(server.url);
      const dir = await Deno.makeTempDir({ prefix: "millrace-acl-" });
      const feed = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen: () => {} },
        () =>
          new Response(
            `<rss version="2.0"><channel><title>t</title><item><title>One story here</title>` +
              `<link>https://example.com/1</link></item></channel></rss>`,
            { headers: { "content-type": "application/rss+xml" } },
          ),
      );
      const refused = async (user: string, what: RegExp, opts = {}) => {
        const run = await cli([await aclFlow(dir, server.port, user, opts)]);
        assert.equal(run.code, 2, run.stderr);
        assert.match(run.stderr, what);
        assert.doesNotMatch(run.stderr, /\n\s+at /);
        // Nothing dead-lettered for it (the generator's bad items are validate's own).
        assert.ok((await letterStages(admin)).every((s) => s === "validate"), user);
        await admin.call("FLUSHALL");
      };
      try {
        const user = (name: string, ...rules: string[]) =>
          admin.call("ACL", "SETUSER", name, "on", ">pw", ...rules);
        // A command refused inside a script is an ERR of its own words.
        await user("noxadd", "~*", "+@all", "-xadd");
        await refused(
          "noxadd",
          /Redis refused this flow's user emit \(ERR [^)]*can't run this command/,
        );
        // The flow's keys only: a redis-stream sink's stream is out of reach.
        await user("flowonly", "~millrace:{acl}:*", "+@all");
        await refused("flowonly", /Redis refused this flow's user the redis-stream sink's append/, {
          sinks: ["redis-stream: { stream: published }"],
        });
        // Entries a dead consumer left, idle past claimAfter, and no XCLAIM to take them.
        const input = flowKeys("acl").input("validate", "normal");
        await admin.xgroup("CREATE", input, "validate", "0", "MKSTREAM");
        await admin.xadd(input, "*", "b", "[]", "n", "0");
        await admin.xreadgroup("GROUP", "validate", "ghost", "COUNT", 1, "STREAMS", input, ">");
        await user("noclaim", "~*", "+@all", "-xclaim", "-xautoclaim");
        await refused("noclaim", /acl\/validate: Redis refused this flow's user the claim check/, {
          source: "{ kind: generator, count: 200, seed: 1, every: 1h }",
          extra: ["durable: { claimAfter: 1s }"],
        });
        // The politeness buckets' keys out of reach: every poll of a polled feed failed.
        const p = "millrace:{acl}";
        await user(
          "nohost",
          "+@all",
          ...["in", "lease", "fence", "pos", "done", "tick", "emitted", "history", "dedupe"]
            .map((k) => `~${p}:${k}:*`),
          ...["dlq", "stages", "pipeline", "configs", "keyed", "passed", "orders", "steps", "tries"]
            .map((k) => `~${p}:${k}`),
        );
        for (const kind of ["rss", "html"]) {
          await refused("nohost", /Redis refused this flow's user a script \(NOPERM/, {
            source: `{ kind: ${kind}, url: "http://127.0.0.1:${feed.addr.port}/feed", every: 2s }`,
            extra: ["http: { allow: [127.0.0.1], robots: false }"],
          });
        }
      } finally {
        await feed.shutdown();
        await closeRedis(admin);
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
