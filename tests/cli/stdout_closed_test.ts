import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"];

/** Reads `n` lines of `stream`, then closes it, as `head -n` does. */
async function head(stream: ReadableStream<Uint8Array>, n: number): Promise<string[]> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (text.split("\n").length <= n) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  await reader.cancel();
  return text.split("\n").slice(0, n);
}

Deno.test("a stdout whose reader leaves (| head -2) stops the run: nothing dead-lettered, one line, exit 141", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-epipe-" });
  const flow = join(dir, "flow.yaml");
  await Deno.writeTextFile(
    flow,
    `name: piped\noutput: ${dir}\nsources:\n  g: { kind: generator, count: 3000, seed: 1 }\n` +
      `pipeline:\n  - publish:\n      - stdout: { fields: [title] }\n`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, join(ROOT, "main.ts"), flow],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = await head(child.stdout, 2);
  assert.equal(lines.length, 2);
  assert.ok(lines.every((l) => typeof JSON.parse(l).payload.title === "string"), lines.join("\n"));
  const status = await child.status;
  const err = await stderr;
  assert.equal(status.code, 141, err);
  assert.match(
    err,
    /^error: piped: stdout was closed by its reader \(such as head\): stopped; \d+ items in flight were not published$/m,
  );
  assert.match(err, /^piped: stopped in .*: \d+ published, 0 dead letters$/m);
  assert.doesNotMatch(err, /retrying|^\s+at /m);
  const dead = await Deno.readTextFile(join(dir, "dead_letters.jsonl")).catch(() => "");
  assert.equal(dead, "", "nothing dead-lettered");
});
