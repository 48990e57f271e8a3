import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";
import { builtinRegistry } from "../../builtins.ts";
import { loadFlow } from "../../config/load_flow.ts";
import { closeRedis, connectRedis } from "../../engine/redis/connection.ts";
import { dlqCommand, NotDurableError, statusCommand } from "../../cli/admin.ts";
import { flowKeys } from "../../engine/redis/keys.ts";
import { deadLetterFields } from "../../engine/redis/redis_dead_letters.ts";
import { freePort, redisTest, withRedis } from "../_redis_server.ts";
import { addEntry, item, writeFlow } from "../engine/redis/_fixtures.ts";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const MAIN = join(ROOT, "main.ts");
const keys = flowKeys("ops");

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-net",
      "--allow-sys",
      MAIN,
      ...args,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** A stage stream with a group, one entry read and not acknowledged, and three dead letters. */
async function seed(redis: Redis): Promise<void> {
  const key = keys.input("validate");
  for (const stage of ["validate", "enrich", "publish"]) {
    await redis.xgroup("CREATE", keys.input(stage), stage, "0", "MKSTREAM");
  }
  await addEntry(redis, key, [item(1), item(2)]);
  await addEntry(redis, key, [item(3)]);
  await redis.xreadgroup("GROUP", "validate", "host-1", "COUNT", 1, "STREAMS", key, ">");
  for (const [stage, i] of [["validate", 10], ["enrich", 11], ["validate", 12]] as const) {
    await redis.xadd(
      keys.dlq,
      "*",
      ...deadLetterFields({ stage, reason: `${stage} failed ${i}`, attempts: 5, item: item(i) }),
    );
  }
}

async function withSeeded(fn: (redis: Redis, file: string) => Promise<void>): Promise<void> {
  await withRedis(async (server) => {
    const { file } = await writeFlow(server.url);
    const redis = await connectRedis(server.url);
    try {
      await seed(redis);
      await fn(redis, file);
    } finally {
      await closeRedis(redis);
    }
  });
}

redisTest("main.ts status prints the table, and --json the numbers", async () => {
  await withSeeded(async (_redis, file) => {
    const text = await cli(["status", file]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^flow ops \(prefix millrace\)/);
    assert.match(text.stdout, /^validate\s+normal\s+2\s+1\s+1\s+1\s/m);
    assert.match(text.stdout, /^ {2}validate: host-1, pending 1, idle/m);
    assert.match(text.stdout, /^dead letters: 3$/m);

    const json = await cli(["status", file, "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const status = JSON.parse(json.stdout);
    assert.equal(status.flow, "ops");
    assert.deepEqual(status.stages.map((s: { id: string }) => s.id), [
      "validate",
      "enrich",
      "publish",
    ]);
    const lane = status.stages[0].lanes[0];
    assert.deepEqual([lane.length, lane.lag, lane.pending], [2, 1, 1]);
    assert.deepEqual(status.deadLetters.byStage, { validate: 2, enrich: 1 });
  });
});

redisTest("main.ts dlq list shows dead letters, filtered by stage, as text or JSON", async () => {
  await withSeeded(async (_redis, file) => {
    const text = await cli(["dlq", "list", file]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^\d+-\d+ {2}\S+ {2}validate {2}attempts 5 {2}validate failed 10$/m);
    assert.match(
      text.stdout,
      /^ {4}item id10 from newsroom: Title number 10 https:\/\/example\.com\/10$/m,
    );
    assert.match(text.stdout, /^3 dead letters of flow ops$/m);

    const json = await cli(["dlq", "list", file, "--stage", "validate", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const list = JSON.parse(json.stdout);
    assert.deepEqual(list.map((e: { reason: string }) => e.reason), [
      "validate failed 10",
      "validate failed 12",
    ]);

    const limited = await cli(["dlq", "list", file, "--limit", "1"]);
    assert.match(limited.stdout, /first 1 dead letter of flow ops shown; more with --limit/);
  });
});

redisTest("main.ts dlq replay and purge act on one stage and report counts", async () => {
  await withSeeded(async (redis, file) => {
    const replay = await cli(["dlq", "replay", file, "--stage", "validate"]);
    assert.equal(replay.code, 0, replay.stderr);
    assert.deepEqual(replay.stdout.trim().split("\n"), [
      "replayed 2 dead letters: validate 2",
      `the flow's running processes take them up; if none is running: deno task run ${file}`,
    ]);
    assert.equal(await redis.xlen(keys.input("validate")), 4);

    const purge = await cli(["dlq", "purge", file, "--yes"]);
    assert.equal(purge.code, 0, purge.stderr);
    assert.equal(purge.stdout.trim(), "purged 1 dead letter");
    assert.equal(await redis.exists(keys.dlq), 0);
  });
});

redisTest(
  "a source's letters (items JSON could not hold) are named by replay, which says how to purge them",
  async () => {
    await withSeeded(async (redis, file) => {
      // Nothing of the source's yet: its name is still a --stage dlq takes.
      const none = await cli(["dlq", "purge", file, "--stage", "newsroom", "--yes"]);
      assert.equal(none.code, 0, none.stderr);
      assert.equal(none.stdout.trim(), "purged 0 dead letters of stage newsroom");

      const big = { ...item(20), payload: { views: 10n } };
      await redis.xadd(
        keys.dlq,
        "*",
        ...deadLetterFields({
          stage: "newsroom",
          reason: "cannot be passed on through Redis: Do not know how to serialize a BigInt",
          attempts: 1,
          item: big,
        }),
      );
      const replay = await cli(["dlq", "replay", file, "--stage", "newsroom"]);
      assert.equal(replay.code, 1, replay.stderr);
      const lines = replay.stdout.trim().split("\n");
      assert.equal(lines[0], "replayed 0 dead letters");
      assert.match(lines[1], /^skipped \S+ \(newsroom\): its item could not be stored as JSON/);
      assert.equal(
        lines[2],
        `fix what made them, then delete them: deno task run dlq purge ${file} --stage newsroom`,
      );
      const purge = await cli(["dlq", "purge", file, "--stage", "newsroom", "--yes"]);
      assert.equal(purge.stdout.trim(), "purged 1 dead letter of stage newsroom");
    });
  },
);

redisTest(
  "a --stage the flow does not have exits 2 with its stages, and deletes nothing",
  async () => {
    await withSeeded(async (redis, file) => {
      const purge = await cli(["dlq", "purge", file, "--stage", "valdate", "--yes"]);
      assert.equal(purge.code, 2, purge.stdout);
      assert.equal(
        purge.stderr.trim(),
        'error: flow ops has no stage "valdate"; its stages are validate, enrich, publish; ' +
          'did you mean "validate"?',
      );
      assert.equal(await redis.xlen(keys.dlq), 3, "nothing purged");
      // The letters of a stage since taken out of the flow can still be handled.
      await redis.xadd(
        keys.dlq,
        "*",
        ...deadLetterFields({ stage: "embed", reason: "old", attempts: 5, item: item(20) }),
      );
      const old = await cli(["dlq", "purge", file, "--stage", "embed", "--yes"]);
      assert.equal(old.code, 0, old.stderr);
      assert.equal(old.stdout.trim(), "purged 1 dead letter of stage embed");
    });
  },
);

redisTest(
  "main.ts status exits 75 (try again later) naming the Redis URL with its password masked",
  async () => {
    const { file } = await writeFlow(`redis://app:s3cret@127.0.0.1:${freePort()}`);
    const out = await cli(["status", file]);
    assert.equal(out.code, 75);
    assert.match(
      out.stderr,
      /^error: cannot reach Redis at redis:\/\/app:\*\*\*@127\.0\.0\.1:\d+: /,
    );
    assert.ok(!out.stderr.includes("s3cret"), out.stderr);
    assert.equal(out.stdout, "");
  },
);

Deno.test("main.ts status on a memory flow exits 2 saying it needs durability: redis", async () => {
  const { file } = await writeFlow("redis://127.0.0.1:1", { durability: "memory" });
  const out = await cli(["status", file]);
  assert.equal(out.code, 2);
  assert.match(out.stderr, /status needs durability: redis/);
});

Deno.test("main.ts dlq rejects an unknown action and a bad --limit with exit 2", async () => {
  const { file } = await writeFlow("redis://127.0.0.1:1", { durability: "memory" });
  const bad = await cli(["dlq", "frob", file]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /dlq takes list, replay or purge, got "frob"/);
  const none = await cli(["dlq"]);
  assert.equal(none.code, 2);
  assert.match(
    none.stderr,
    /dlq takes list, replay or purge and a flow file: deno task run dlq list FLOW/,
  );
  const limit = await cli(["dlq", "list", file, "--limit", "0"]);
  assert.equal(limit.code, 2);
  assert.match(limit.stderr, /--limit takes a positive whole number/);
});

Deno.test("dlq list on a memory flow reads its dead_letters.jsonl", async () => {
  const { flow } = await writeFlow("redis://127.0.0.1:1", { durability: "memory" });
  const empty = await dlqCommand(flow, "list");
  assert.match(empty.text, /^no dead letters in .*dead_letters\.jsonl$/);

  await Deno.mkdir(flow.outDir, { recursive: true });
  const lines = [
    {
      time: "2026-01-01T00:00:00.000Z",
      stage: "validate",
      reason: "no title",
      attempts: 0,
      item: item(1),
    },
    {
      time: "2026-01-01T00:00:01.000Z",
      stage: "embed",
      reason: "timeout",
      attempts: 5,
      item: item(2),
    },
    {
      time: "2026-01-01T00:00:02.000Z",
      stage: "validate",
      reason: "spam",
      attempts: 0,
      item: item(3),
    },
  ].map((l) => JSON.stringify(l));
  await Deno.writeTextFile(join(flow.outDir, "dead_letters.jsonl"), lines.join("\n") + "\n");

  const all = await dlqCommand(flow, "list", { json: true });
  const list = JSON.parse(all.text);
  assert.deepEqual(list.map((e: { id: string; reason: string }) => [e.id, e.reason]), [
    ["line 1", "no title"],
    ["line 2", "timeout"],
    ["line 3", "spam"],
  ]);
  assert.equal(all.text, JSON.stringify(list, null, 2), "indented, as JSON.stringify does");
  // A line separator inside a value is not a line to indent (it took two spaces into the text).
  const separated = { ...item(5), payload: { title: "one\u2028two\u2029three" } };
  await Deno.writeTextFile(
    join(flow.outDir, "dead_letters.jsonl"),
    JSON.stringify({ time: "t", stage: "validate", reason: "r", attempts: 0, item: separated }) +
      "\n",
  );
  const sepText = (await dlqCommand(flow, "list", { json: true })).text;
  assert.equal(JSON.parse(sepText)[0].item.payload.title, "one\u2028two\u2029three");
  // A letter whose item nests 12,000 levels deep (JSON.stringify ran out of stack indenting
  // it) is on one line of its own; the others are indented still.
  let deep: unknown = "leaf";
  for (let i = 0; i < 12_000; i++) deep = [deep];
  const hostile = { ...item(4), payload: { title: "deep", tags: deep } };
  const letter = { time: "2026-01-01T00:00:03.000Z", stage: "validate", reason: "deep" };
  await Deno.writeTextFile(
    join(flow.outDir, "dead_letters.jsonl"),
    lines.join("\n") + "\n" + JSON.stringify({ ...letter, attempts: 0, item: hostile }) + "\n",
  );
  const withDeep = (await dlqCommand(flow, "list", { json: true })).text;
  assert.equal(JSON.parse(withDeep).length, 4);
  assert.equal(withDeep.split("\n").length, all.text.split("\n").length + 1);
  // A stage with none says which stage it looked at.
  const enrich = await dlqCommand(flow, "list", { stage: "enrich" });
  assert.match(enrich.text, /^no dead letters of stage enrich in .*dead_letters\.jsonl$/);
  const validate = await dlqCommand(flow, "list", { stage: "validate", limit: 1 });
  assert.match(
    validate.text,
    /^line 1 {2}2026-01-01T00:00:00\.000Z {2}validate {2}attempts 0 {2}no title$/m,
  );
  assert.match(
    validate.text,
    /first 1 dead letter of stage validate in .* shown; more with --limit/,
  );
  assert.doesNotMatch(validate.text, /spam/);
  // A line that is no letter (an item a sink wrote here) says so, not "malformed: undefined".
  await Deno.writeTextFile(
    join(flow.outDir, "dead_letters.jsonl"),
    JSON.stringify({ id: "x", payload: { title: "an item" } }) + "\n",
  );
  const stray = await dlqCommand(flow, "list");
  assert.match(stray.text, /malformed: line has no item: not a dead letter/);
});

Deno.test("status, dlq replay and dlq purge on a memory flow say they need Redis", async () => {
  const { flow } = await writeFlow("redis://127.0.0.1:1", { durability: "memory" });
  await assert.rejects(statusCommand(flow), NotDurableError);
  await assert.rejects(
    dlqCommand(flow, "replay"),
    /dlq replay needs durability: redis; .* \(fix what refused them, then run the flow again: /,
  );
  await assert.rejects(dlqCommand(flow, "purge"), /delete the file to purge them/);
});

redisTest(
  "dlq replay --into puts letters back on an earlier stage's input, never a later one",
  async () => {
    // A letter of publish refused for want of a vector (an embed stage added while it was on its
    // way) could only go back to publish, where it was refused again.
    await withSeeded(async (redis, file) => {
      const flow = await loadFlow(file, builtinRegistry());
      await redis.xadd(
        keys.dlq,
        "*",
        "stage",
        "gone",
        "reason",
        "x",
        "item",
        JSON.stringify(item(9)),
      );
      const later = await dlqCommand(flow, "replay", { into: "enrich" });
      assert.equal(later.code, 1);
      assert.match(later.text, /^replayed 2 dead letters: enrich 1, gone 1 \(into enrich\)$/m);
      assert.match(
        later.text,
        /^skipped 2 dead letters \(validate\), \d+-\d+ to \d+-\d+: --into enrich comes after stage "validate", which gave up on it/m,
      );
      assert.equal(await redis.xlen(keys.input("enrich")), 2);
      const first = await dlqCommand(flow, "replay", { into: "validate" });
      assert.equal(first.code, 0, first.text);
      assert.match(first.text, /^replayed 2 dead letters: validate 2$/m);
      assert.equal(await redis.xlen(keys.dlq), 0);
      await assert.rejects(dlqCommand(flow, "replay", { into: "nope" }), /nope/);
      // A stage the flow has but no run has started yet: said once, with what to do.
      await redis.xadd(
        keys.dlq,
        "*",
        "stage",
        "gone",
        "reason",
        "x",
        "item",
        JSON.stringify(item(8)),
      );
      for (const stage of ["validate", "enrich"]) {
        await redis.xgroup("DESTROY", keys.input(stage), stage);
      }
      const unstarted = await dlqCommand(flow, "replay", { into: "enrich" });
      assert.match(unstarted.text, /the stage has not started$/m);
      assert.match(
        unstarted.text,
        /^a stage's consumer group is made when the flow first runs with it: run the flow once \(deno task run .*\), then replay$/m,
      );
    });
  },
);

redisTest(
  "dlq replay reports what it skipped, a line per stage and reason, and exits 1",
  async () => {
    await withSeeded(async (redis, file) => {
      const flow = await loadFlow(file, builtinRegistry());
      const gone = async (stage: string, n: number) => {
        for (let i = 0; i < n; i++) {
          await redis.xadd(
            keys.dlq,
            "*",
            "stage",
            stage,
            "reason",
            "x",
            "item",
            JSON.stringify(item(9 + i)),
          );
        }
      };
      await gone("gone", 1);
      const result = await dlqCommand(flow, "replay");
      assert.equal(result.code, 1);
      assert.match(result.text, /^replayed 3 dead letters: validate 2, enrich 1$/m);
      assert.match(
        result.text,
        /^skipped \d+-\d+ \(gone\): stage "gone" is not in the flow's pipeline$/m,
      );
      // Many letters of one stage skipped for one reason: one line, with their count and ids.
      await gone("gone", 250);
      await gone("renamed", 2);
      const many = await dlqCommand(flow, "replay");
      const skipped = many.text.split("\n").filter((line) => line.startsWith("skipped"));
      assert.equal(skipped.length, 2, many.text);
      assert.match(
        skipped[0],
        /^skipped 251 dead letters \(gone\), \d+-\d+ to \d+-\d+: stage "gone" is not in the flow's pipeline$/,
      );
      assert.match(skipped[1], /^skipped 2 dead letters \(renamed\), /);
      assert.match(
        result.text,
        /^put the letters of gone back on the input of a stage the flow has: deno task run .* --stage gone --into <stage>$/m,
      );
    });
  },
);

redisTest(
  "status, dlq and reset need none of the variables the flow's stages use; run and check do",
  async () => {
    await withSeeded(async (redis, file) => {
      const yaml = await Deno.readTextFile(file);
      await Deno.writeTextFile(
        file,
        yaml.replace(
          "      - jsonl: { path: items.jsonl }",
          "      - jsonl: { path: items.jsonl }\n" +
            '      - postgres: { url: "${MILLRACE_TEST_UNSET_URL}", table: items }',
        ),
      );
      const status = await cli(["status", file, "--json"]);
      assert.equal(status.code, 0, status.stderr);
      assert.equal(JSON.parse(status.stdout).deadLetters.total, 3);
      const list = await cli(["dlq", "list", file, "--stage", "enrich"]);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /enrich failed 11/);
      const check = await cli(["check", file]);
      assert.equal(check.code, 2);
      assert.match(
        check.stderr,
        /pipeline\[2\]\.publish\[1\]\.postgres\.url: environment variable MILLRACE_TEST_UNSET_URL is not set/,
      );
      const run = await cli(["run", file]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /MILLRACE_TEST_UNSET_URL is not set/);
      // What the variable's field does not explain is still refused.
      await Deno.writeTextFile(
        file,
        (await Deno.readTextFile(file)).replace("table: items", "tabel: items"),
      );
      const misspelt = await cli(["status", file]);
      assert.equal(misspelt.code, 2);
      assert.match(misspelt.stderr, /unknown field "tabel"; did you mean "table"\?/);
      // So is a misspelt field whose own value is the unset variable.
      await Deno.writeTextFile(
        file,
        (await Deno.readTextFile(file)).replace('url: "${MILLRACE', 'ulr: "${MILLRACE'),
      );
      const unknown = await cli(["status", file]);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /unknown field "ulr"; did you mean "url"\?/);
      await Deno.writeTextFile(
        file,
        (await Deno.readTextFile(file)).replace('ulr: "${MILLRACE', 'url: "${MILLRACE'),
      );
      assert.equal(await redis.xlen(keys.dlq), 3);
      await Deno.writeTextFile(file, (await Deno.readTextFile(file)).replace("tabel", "table"));
      const reset = await cli(["reset", file, "--yes", "--force"]);
      assert.equal(reset.code, 0, reset.stdout + reset.stderr);
      assert.equal(await redis.exists(keys.dlq), 0, "reset deleted the dead letters");
    });
  },
);
