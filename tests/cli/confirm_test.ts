import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";
import { closeRedis, connectRedis } from "../../engine/redis/connection.ts";
import { flowKeys } from "../../engine/redis/keys.ts";
import { deadLetterFields } from "../../engine/redis/redis_dead_letters.ts";
import { redisTest, withRedis } from "../_redis_server.ts";
import { item, writeFlow } from "../engine/redis/_fixtures.ts";
import { haveScript, inTerminal } from "./_terminal.ts";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const MAIN = join(ROOT, "main.ts");
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"];
const keys = flowKeys("ops");

/** main.ts with stdin not a terminal (as from a script or cron). */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, MAIN, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** Three dead letters (two of validate) and a source position: two keys. */
async function seed(redis: Redis): Promise<void> {
  await redis.set(keys.position("newsroom"), "{}");
  for (const [stage, i] of [["validate", 1], ["enrich", 2], ["validate", 3]] as const) {
    await redis.xadd(
      keys.dlq,
      "*",
      ...deadLetterFields({ stage, reason: "bad", attempts: 5, item: item(i) }),
    );
  }
}

async function withSeeded(
  fn: (redis: Redis, file: string, url: string) => Promise<void>,
): Promise<void> {
  await withRedis(async (server) => {
    const { file } = await writeFlow(server.url);
    const redis = await connectRedis(server.url);
    try {
      await seed(redis);
      await fn(redis, file, server.url);
    } finally {
      await closeRedis(redis);
    }
  });
}

redisTest(
  "without a terminal, reset and dlq purge refuse unless given --yes, and delete nothing",
  async () => {
    await withSeeded(async (redis, file) => {
      for (
        const args of [["reset", file], ["dlq", "purge", file], [
          "dlq",
          "purge",
          file,
          "--stage",
          "validate",
        ]]
      ) {
        const out = await cli(args);
        assert.equal(out.code, 2, out.stderr);
        assert.match(
          out.stderr,
          /^error: (reset|dlq purge) deletes .*flow ops, and there is no terminal to ask on \(stdin is not one\): add --yes to delete without asking$/m,
        );
        assert.equal(await redis.xlen(keys.dlq), 3, "nothing purged");
        assert.equal(await redis.exists(keys.position("newsroom")), 1, "nothing reset");
      }
      const purge = await cli(["dlq", "purge", file, "--stage", "validate", "--yes"]);
      assert.equal(purge.code, 0, purge.stderr);
      assert.equal(purge.stdout.trim(), "purged 2 dead letters of stage validate");
      const reset = await cli(["reset", file, "-y"]);
      assert.equal(reset.code, 0, reset.stderr);
      assert.equal(reset.stdout.trim(), "ops: deleted 2 keys");
      assert.equal((await redis.keys("millrace:{ops}:*")).length, 0);
    });
  },
);

Deno.test({
  name: "on a terminal, reset and dlq purge ask first: only a yes deletes, a no exits 1",
  ignore: !haveScript,
  fn: async () => {
    await withSeeded(async (redis, file, url) => {
      const run = async (args: string, answer: string) => {
        const term = inTerminal(`"${Deno.execPath()}" run ${PERMS.join(" ")} "${MAIN}" ${args}`);
        await term.type(answer);
        return await term.done;
      };
      const port = new URL(url).port;
      const no = await run(`dlq purge "${file}"`, "n\n");
      assert.equal(no.code, 1, no.text);
      assert.match(
        no.text,
        new RegExp(
          `purge 3 dead letters of flow ops from redis://127\\.0\\.0\\.1:${port}\\? \\[y/N\\]`,
        ),
      );
      assert.match(no.text, /nothing deleted/);
      assert.equal(await redis.xlen(keys.dlq), 3);

      const empty = await run(`reset "${file}"`, "\n");
      assert.equal(empty.code, 1, empty.text);
      assert.match(empty.text, /delete all 2 keys of flow ops .* in redis:.*\? \[y\/N\]/);
      assert.equal(await redis.exists(keys.position("newsroom")), 1);

      const yes = await run(`dlq purge "${file}" --stage enrich`, "y\n");
      assert.equal(yes.code, 0, yes.text);
      assert.match(yes.text, /purge 1 dead letter of stage enrich of flow ops from/);
      assert.match(yes.text, /purged 1 dead letter of stage enrich/);
      assert.equal(await redis.xlen(keys.dlq), 2);

      const reset = await run(`reset "${file}"`, "YES\n");
      assert.equal(reset.code, 0, reset.text);
      assert.match(reset.text, /ops: deleted 2 keys/);
      assert.equal((await redis.keys("millrace:{ops}:*")).length, 0);
    });
  },
});

Deno.test("reset on a memory flow says it keeps nothing in Redis, without asking for --yes first", async () => {
  const out = await cli(["reset", join(ROOT, "flows", "demo.yaml")]);
  assert.equal(out.code, 2);
  assert.match(out.stderr, /flow demo has durability: memory and keeps nothing in Redis/);
  assert.doesNotMatch(out.stderr, /--yes/);
});
