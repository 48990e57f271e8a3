import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { redisTest, withRedis } from "../_redis_server.ts";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"];

/**
 * The environment a shell gives, without the test's own INIT_CWD: `deno
 * task` sets INIT_CWD only when it is not set already, and this test may run
 * under `deno task test`.
 */
function shellEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1", ...extra };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

async function run(args: string[], cwd: string, env = shellEnv()) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env,
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** A small demo at <dir>/sub/flow.yaml writing to <dir>/out. */
async function smallDemo(): Promise<string> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "millrace-paths-" }));
  await Deno.mkdir(join(dir, "sub"));
  const text = (await Deno.readTextFile(join(ROOT, "flows", "demo.yaml")))
    .replace("output: out/demo", `output: ${join(dir, "out")}`)
    .replace("count: 5000", "count: 50");
  await Deno.writeTextFile(join(dir, "sub", "flow.yaml"), text);
  return dir;
}

Deno.test("`deno task run` reads a relative flow path from the directory it was typed in, and shows paths from there", async () => {
  const dir = await smallDemo();
  const task = ["task", "--config", join(ROOT, "deno.json"), "run"];
  const ran = await run([...task, "sub/flow.yaml"], dir);
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(ran.stderr, /^demo: running sub\/flow\.yaml \{.*"out":"out"/m);
  assert.match(ran.stderr, /^output in out\/ /m);
  assert.ok((await Deno.stat(join(dir, "out", "items.jsonl"))).size > 0);

  const checked = await run([...task, "check", "sub/flow.yaml"], dir);
  assert.equal(checked.code, 0, checked.stderr);
  assert.match(checked.stdout, /^sub\/flow\.yaml: ok: flow demo/);

  const missing = await run([...task, "sub/nope.yaml"], dir);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^error: sub\/nope\.yaml/m, missing.stderr);

  // Errors in a flow file name it as typed too.
  await Deno.writeTextFile(
    join(dir, "sub", "typo.yaml"),
    "name: t\nsources:\n  a: { kind: generator, count: 5, folow: 1 }\npipeline: [validate]\n",
  );
  for (const args of [["sub/typo.yaml"], ["check", "sub/typo.yaml"]]) {
    const typo = await run([...task, ...args], dir);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /^error: sub\/typo\.yaml:3:\d+: sources\.a\.folow/m, typo.stderr);
  }

  // So does a flow that fails to start: a sink that cannot open.
  await Deno.writeTextFile(
    join(dir, "sub", "pg.yaml"),
    "name: t\nsources:\n  a: { kind: generator, count: 5 }\npipeline:\n  - publish:\n" +
      "      - postgres: { url: 'postgres://app@127.0.0.1:1/x', table: t, timeout: 1s }\n",
  );
  const unopened = await run([...task, "sub/pg.yaml"], dir);
  assert.equal(unopened.code, 75, unopened.stderr); // refused: try again later
  assert.match(unopened.stderr, /^error: sub\/pg\.yaml:5:5: /m, unopened.stderr);
});

Deno.test("`deno run main.ts` started elsewhere reads flow paths from its own directory, INIT_CWD or not", async () => {
  const dir = await smallDemo();
  // An INIT_CWD left over from an npm script or an outer deno task.
  const ran = await run(
    ["run", ...PERMS, join(ROOT, "main.ts"), "check", "sub/flow.yaml"],
    dir,
    shellEnv({ INIT_CWD: ROOT }),
  );
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(ran.stdout, /^sub\/flow\.yaml: ok: flow demo/);
});

redisTest(
  "from outside the repository, a durable run's hints name it with --cwd, and run as pasted",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "millrace-paths-" }));
      await Deno.mkdir(join(dir, "sub"));
      // Some of the generator's items have no title or url: dead letters.
      await Deno.writeTextFile(
        join(dir, "sub", "flow.yaml"),
        `name: hints\ndurability: redis\nredis: ${server.url}\noutput: ${join(dir, "out")}\n` +
          "sources:\n  news: { kind: generator, count: 200, seed: 42 }\n" +
          "pipeline:\n  - validate: { require: [title, url] }\n" +
          "  - publish:\n      - jsonl: { path: items.jsonl }\n",
      );
      const task = ["task", "--config", join(ROOT, "deno.json"), "run"];
      const hint = (text: string, pattern: RegExp) => {
        const found = text.match(pattern);
        assert.ok(found, text);
        return found[1];
      };
      const first = await run([...task, "sub/flow.yaml"], dir);
      assert.equal(first.code, 0, first.stderr);
      const list = hint(first.stderr, /\(dead letters in Redis: (.*)\)$/m);
      assert.equal(list, `deno task --cwd ${ROOT} run dlq list sub/flow.yaml`);
      // Pasted where it was printed, it runs.
      const listed = await run(list.split(" ").slice(1), dir);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /validate/);

      // A rerun finds its one-shot source done, and says how to start over.
      const again = await run([...task, "sub/flow.yaml"], dir);
      assert.equal(again.code, 0, again.stderr);
      const reset = hint(again.stderr, /\(`(.*)` starts the flow over\)/);
      assert.equal(reset, `deno task --cwd ${ROOT} run reset sub/flow.yaml`);
      const resetDone = await run([...reset.split(" ").slice(1), "--yes"], dir);
      assert.equal(resetDone.code, 0, resetDone.stderr);
      await Deno.remove(dir, { recursive: true });
    });
  },
);
