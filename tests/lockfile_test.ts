import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

/** The npm packages (name@version) the module graph of `entry` reaches, dynamic imports included. */
async function npmPackagesOf(entry: string): Promise<Set<string>> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const info = JSON.parse(new TextDecoder().decode(stdout)) as {
    modules: { kind: string; specifier: string }[];
  };
  // `npmPackages` lists the whole lock file; the graph's npm modules are what it reaches,
  // as npm:/name@version/subpath.
  return new Set(
    info.modules.filter((m) => m.kind === "npm").map((m) => {
      const [, scoped, plain] = /^npm:\/(@[^/]+\/[^/]+|([^/]+))/.exec(m.specifier)!;
      return plain ?? scoped;
    }),
  );
}

// Deno downloads every package deno.lock lists on the first run, whether the
// run imports it or not. A package only tests use, named in deno.json, would
// therefore be fetched by every `deno task run` and every image build:
// test-only packages get a deno.json and lock file of their own, as
// tests/pglite/ has.
Deno.test("every package in deno.json is one main.ts or mod.ts loads: test-only packages live elsewhere", async () => {
  const lock = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.lock"))) as {
    workspace: { dependencies: string[] };
  };
  const reached = new Set([...await npmPackagesOf("main.ts"), ...await npmPackagesOf("mod.ts")]);
  const unused = lock.workspace.dependencies
    .map((specifier) => specifier.replace(/^npm:/, ""))
    .filter((pkg) => !reached.has(pkg));
  assert.deepEqual(
    unused,
    [],
    `in deno.json but loaded by neither main.ts nor mod.ts: ${unused.join(", ")}; ` +
      "give a test-only package a deno.json of its own (see tests/pglite/)",
  );
});
