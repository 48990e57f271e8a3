import assert from "node:assert/strict";
import { join } from "node:path";

const KIND = new URL("../../cli/stdout_kind.ts", import.meta.url).href;
/** Prints what stdoutKind says on stderr, leaving stdout to be what is tested. */
const SCRIPT =
  `import { stdoutKind } from "${KIND}"; Deno.stderr.writeSync(new TextEncoder().encode(stdoutKind()));`;

/** What stdoutKind says in a `deno eval` run by `sh -c` with `redirect` after it. */
async function kindWith(redirect: string): Promise<string> {
  const out = await new Deno.Command("sh", {
    args: ["-c", `"$0" eval "$1" ${redirect}`, Deno.execPath(), SCRIPT],
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stderr);
}

Deno.test("stdout through a pipe is a pipe, where the live table stays off beside a stdout sink; to a file, a file", async () => {
  // A pipe most often ends at a terminal (`| cut`): the table redrawn over the items there lost
  // the last 4 lines of every run from the screen.
  assert.equal(await kindWith("| cat > /dev/null"), "pipe");
  const dir = await Deno.makeTempDir({ prefix: "millrace-stdout-" });
  try {
    assert.equal(await kindWith(`> "${join(dir, "items.txt")}"`), "file");
    assert.equal(await kindWith("> /dev/null"), "file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
