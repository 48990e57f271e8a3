/**
 * What `millrace` loads before it knows the flow: the npm packages that only
 * some flows use are imported where they are first needed, so the demo (and
 * `status`, `dlq`, `check`...) never pays for them. Measure it with
 * `deno eval 'const t = performance.now(); await import("./main.ts");
 * console.log(Deno.memoryUsage().rss >> 20, "MiB", performance.now() - t, "ms")'`
 * here and in a checkout from before (e9e8708).
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

/** Packages that only an html source, a service, or the dashboard needs. */
const ON_DEMAND = [
  "linkedom",
  "@mozilla/readability",
  "parse5",
  "postgres",
  "prom-client",
  "ioredis",
  "openai",
  "gpt-tokenizer",
  "rss-parser",
  "eld",
];

interface Info {
  roots: string[];
  modules: {
    specifier: string;
    dependencies?: { code?: { specifier?: string }; isDynamic?: boolean }[];
  }[];
}

/** The npm packages main.ts imports, split into those reached by static imports alone and the rest. */
async function npmPackages(): Promise<{ eager: Set<string>; all: Set<string> }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as Info;
  const byName = new Map(info.modules.map((m) => [m.specifier, m]));
  const name = (npm: string) => npm.replace(/^npm:\/?/, "").match(/^(@[^/]+\/[^@/]+|[^@/]+)/)![1];
  const walk = (dynamic: boolean) => {
    const seen = new Set<string>(), packages = new Set<string>();
    const todo = [...info.roots];
    while (todo.length) {
      const at = todo.pop()!;
      if (seen.has(at)) continue;
      seen.add(at);
      for (const dep of byName.get(at)?.dependencies ?? []) {
        const to = dep.code?.specifier;
        if (!to || (dep.isDynamic && !dynamic)) continue;
        if (to.startsWith("npm:")) packages.add(name(to));
        else todo.push(to);
      }
    }
    return packages;
  };
  return { eager: walk(false), all: walk(true) };
}

Deno.test("main.ts imports the packages of html sources, services and the dashboard only when a flow needs them", async () => {
  const { eager, all } = await npmPackages();
  for (const pkg of ON_DEMAND) {
    assert.ok(all.has(pkg), `${pkg} is not imported at all: update this list`);
    assert.ok(!eager.has(pkg), `${pkg} is imported when millrace starts`);
  }
  assert.ok(eager.has("zod") && eager.has("yaml"), "the static walk finds the flow file's parsers");
});
