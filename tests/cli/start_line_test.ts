import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { redisTest, withRedis } from "../_redis_server.ts";
import { flowYaml } from "../engine/redis/_fixtures.ts";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"];

/** main.ts with no REDIS_URL in its environment, whatever the test's own. */
async function run(args: string[]) {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, join(ROOT, "main.ts"), ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env,
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

redisTest(
  "a durable run's start line names the Redis it writes to, password masked, REDIS_URL set or not",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-start-" });
      const file = join(dir, "flow.yaml");
      const url = `redis://default:s3cret@127.0.0.1:${server.port}`;
      // The flow's own default, as in flows/demo-durable.yaml: used when REDIS_URL is unset.
      await Deno.writeTextFile(
        file,
        flowYaml(`\${REDIS_URL:-${url}}`, { output: join(dir, "out") }),
      );
      const text = await run([file]);
      assert.equal(text.code, 0, text.stderr);
      const start = text.stderr.split("\n")[0];
      assert.match(
        start,
        new RegExp(
          `^ops: running .*flow\\.yaml on Redis redis://default:\\*\\*\\*@127\\.0\\.0\\.1:${server.port} \\{`,
        ),
      );
      assert.ok(!text.stderr.includes("s3cret"), text.stderr);

      const json = await run([file, "--log-format", "json"]);
      assert.equal(json.code, 0, json.stderr);
      const line = JSON.parse(json.stderr.split("\n")[0]);
      assert.equal(line.redis, `redis://default:***@127.0.0.1:${server.port}`);
    }, { args: ["--requirepass", "s3cret"] });
  },
);

Deno.test("a memory run's start line names no Redis", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-start-" });
  const text = (await Deno.readTextFile(join(ROOT, "flows", "demo.yaml")))
    .replace("output: out/demo", `output: ${dir}`).replace("count: 5000", "count: 10");
  await Deno.writeTextFile(join(dir, "flow.yaml"), text);
  const out = await run([join(dir, "flow.yaml"), "--log-format", "json"]);
  assert.equal(out.code, 0, out.stderr);
  const line = JSON.parse(out.stderr.split("\n")[0]);
  assert.match(line.msg, /^demo: running /);
  assert.equal(line.redis, undefined);
});
