/**
 * `deno task chaos` refuses a command line it cannot run with one line and
 * exit 2, as `deno task run` does: a typo went up as node:util's stack, and
 * `--runs abc` ran once without a word.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

async function chaos(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", join(ROOT, "chaos/main.ts"), ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("a bad chaos command line exits 2 with one line saying why, and runs nothing", async () => {
  for (
    const [args, said] of [
      [["--shrt"], /^error: Unknown option '--shrt'/m],
      [["--runs", "abc"], /^error: --runs takes a positive whole number, got "abc"/m],
      [["--runs", "0"], /^error: --runs takes a positive whole number, got "0"/m],
      [["--only", "nope"], /^error: unknown scenario: nope/m],
    ] as const
  ) {
    const { code, stderr } = await chaos(...args);
    assert.equal(code, 2, stderr);
    assert.match(stderr, said);
    assert.doesNotMatch(stderr, /^\s+at /m, "no stack");
    assert.doesNotMatch(stderr, /chaos: \S+ \(run/, "no scenario ran");
  }
});
