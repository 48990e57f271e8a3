import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { withServer } from "../_http_server.ts";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const MAIN = join(ROOT, "main.ts");
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"];
const SECRET = "hunter2-Secret";

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, MAIN, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code: res.code, out: text.decode(res.stdout) + text.decode(res.stderr) };
}

Deno.test("a flow whose source URLs hold a password and fail never prints the password", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-secret-" });
  await withServer((req) => {
    if (new URL(req.url).pathname === "/feed") return new Response("down", { status: 503 });
    return new Response("<html>sign in</html>", { headers: { "content-type": "text/html" } });
  }, async (origin) => {
    const host = origin.replace("http://", "");
    const flow = join(dir, "flow.yaml");
    await Deno.writeTextFile(
      flow,
      `name: leak
durability: memory
output: ${dir}
sources:
  feed: { kind: rss, url: "http://reader:${SECRET}@${host}/feed" }
  page: { kind: rss, url: "http://reader:${encodeURIComponent(SECRET + "@")}@${host}/page" }
  api: { kind: json, url: "http://${SECRET}@${host}/api.json" }
pipeline:
  - validate: {}
  - publish:
      - jsonl: { path: items.jsonl }
`,
    );
    for (const args of [["run", flow], ["run", flow, "--log-format", "json"], ["check", flow]]) {
      const { code, out } = await cli(args);
      assert.ok(!out.includes(SECRET), `${args.join(" ")} printed the password:\n${out}`);
      assert.ok(!out.includes(encodeURIComponent(SECRET + "@")), out);
      if (args[0] === "run") {
        assert.equal(code, 1, out);
        assert.match(out, /reader:\*\*\*@127\.0\.0\.1:\d+\/feed/, "the URL is still named, masked");
      }
      if (args.includes("json")) {
        const report = JSON.parse(out.trim().split("\n").at(-1)!).report;
        assert.equal(report.sources.length, 3);
        for (const s of report.sources) assert.equal(s.errors, 1, JSON.stringify(s));
      }
    }
  });
});
