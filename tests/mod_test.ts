import assert from "node:assert/strict";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

/** Runs `code` as a module in the checkout, in a child with no permission at all. */
async function runWithoutPermissions(code: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--quiet", "-"],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(code));
  await writer.close();
  const { code: status, stdout, stderr } = await child.output();
  return {
    status,
    stdout: new TextDecoder().decode(stdout),
    stderr: new TextDecoder().decode(stderr),
  };
}

// A library must load without asking for anything: an adapter that read the
// environment (or the network, or files) as it loaded would make every user
// grant it, whether they use that adapter or not.
Deno.test("mod.ts and testing.ts import with no permission, and a flow in memory runs without any", async () => {
  const { status, stdout, stderr } = await runWithoutPermissions(`
    import * as mod from "./mod.ts";
    import { runTestFlow, testRegistry } from "./testing.ts";
    const registry = testRegistry();
    const flow = mod.defineFlow({
      name: "no-permissions",
      output: "unused",
      sources: { inbox: { kind: "memory" } },
      pipeline: [
        { validate: { require: ["title", "url"] } },
        { dedupe: { key: ["url"] } },
        "enrich",
        "embed",
        { publish: [{ collect: { name: "out" } }] },
      ],
    }, registry, { baseDir: "/" });
    const { published, deadLetters } = await runTestFlow(flow, {
      registry,
      outDir: "unused",
      items: [
        { title: "A fine title", url: "https://example.com/a" },
        { title: "A fine title", url: "https://example.com/a" },
        { url: "https://example.com/b" },
      ],
    });
    console.log(JSON.stringify({
      exports: Object.keys(mod).sort(),
      published: published.get("out").map((i) => i.payload.url),
      dead: deadLetters.map((d) => d.stage + ": " + d.reason),
    }));
  `);
  assert.equal(status, 0, stderr);
  const result = JSON.parse(stdout);
  for (const name of ["runFlow", "defineFlow", "connectRedis", "PostgresSink", "QdrantSink"]) {
    assert.ok(result.exports.includes(name), `mod.ts exports ${name}`);
  }
  assert.deepEqual(result.published, ["https://example.com/a"]);
  assert.deepEqual(result.dead, [`validate: missing required field "title"`]);
});

Deno.test("a component that needs a permission asks for it only when used", async () => {
  const { status, stderr } = await runWithoutPermissions(`
    import { connectRedis } from "./mod.ts";
    await connectRedis("redis://127.0.0.1:1", { timeout: 200 });
  `);
  assert.notEqual(status, 0);
  assert.match(stderr, /NotCapable|Requires (env|net) access/);
});

Deno.test("deno doc --lint finds only other packages' types (README, Library)", async () => {
  // Deno flags a public type that refers to ioredis's Redis or zod's ZodType
  // (denoland/deno#27364); anything else it finds is ours to fix.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--lint", "mod.ts", "testing.ts"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  const problems = text.split("\n").filter((l) => /^error\[/.test(l));
  assert.ok(problems.length > 0, text.slice(0, 2000)); // the lint ran
  const ours = problems.filter((l) =>
    !/^error\[private-type-ref\]: .* references private type '(Redis|ZodType)'$/.test(l)
  );
  assert.deepEqual(ours, []);
});
