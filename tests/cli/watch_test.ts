import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { redisTest, withRedis } from "../_redis_server.ts";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const MAIN = join(ROOT, "main.ts");
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"];

/** The flow, in memory or (given a Redis URL) durable. */
const flowText = (steps: string, redis?: string) =>
  `name: ticker
output: out${redis ? `\ndurability: redis\nredis: ${redis}` : ""}
sources: { feed: { kind: json, path: feed.json, every: 50ms } }
pipeline:
  - validate: { require: [title, url] }
  - enrich: { steps: [${steps}] }
  - publish: [ { jsonl: { path: items.jsonl } } ]
`;

/** Waits until `ok` holds, checking every 50 ms; fails after `what` has not happened in 30 s. */
async function until(what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting until ${what}`);
}

/** The payloads of the items in a JSONL output. */
async function lines(file: string): Promise<Record<string, unknown>[]> {
  try {
    return (await Deno.readTextFile(file)).split("\n").filter((l) => l.trim())
      .map((l) => JSON.parse(l).payload);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

/** `main.ts --watch FILES` run in `dir`, its stderr gathered as it comes in `stderr`. */
function watching(dir: string, files: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, MAIN, "--watch", ...files],
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const run = { child, stderr: "", reading: Promise.resolve() };
  run.reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) run.stderr += decoder.decode(chunk, { stream: true });
  })();
  return run;
}

Deno.test("--watch swaps in an edited flow after a drain, loses no item, and refuses a broken edit", async () => {
  await watchScenario();
});

redisTest(
  "--watch swaps a durable flow the same way, losing no item",
  async () => {
    await withRedis((server) => watchScenario(`redis://127.0.0.1:${server.port}`));
  },
);

/**
 * Runs a polling flow with --watch on a feed that grows while it runs,
 * edits a stage option, then makes a broken edit, and checks the output.
 */
async function watchScenario(redis?: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "millrace-watch-" });
  const flow = join(dir, "flow.yaml");
  const feed = join(dir, "feed.json");
  const out = join(dir, "out", "items.jsonl");
  // The feed grows by one item every 20 ms while the test runs, written whole and renamed into place.
  const written: string[] = [];
  let writing = true;
  const writeFeed = async () => {
    const items = written.map((url, i) => ({ title: `Item number ${i}`, url, text: "a b c d" }));
    await Deno.writeTextFile(`${feed}.tmp`, JSON.stringify(items));
    await Deno.rename(`${feed}.tmp`, feed);
  };
  await writeFeed();
  await Deno.writeTextFile(flow, flowText("domain", redis));
  const writer = (async () => {
    while (writing) {
      written.push(`https://example.com/${written.length}`);
      await writeFeed();
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  const run = watching(dir, [flow]);
  const { child, reading } = run;
  try {
    await until("items are published", async () => (await lines(out)).length >= 5);

    await Deno.writeTextFile(flow, flowText("domain, word-count", redis));
    await until("the flow is swapped", () => /ticker: swapped in the new/.test(run.stderr));
    const changed = async () => (await lines(out)).filter((l) => "wordCount" in l).length;
    await until("the new flow publishes", async () => await changed() >= 5);

    // A broken edit: refused with its place, and the running flow goes on.
    await Deno.writeTextFile(flow, flowText("domain, word-cuont", redis));
    await until(
      "the edit is refused",
      () => /cannot be loaded; the running flow goes on/.test(run.stderr),
    );
    const line = redis ? 8 : 6;
    assert.match(
      run.stderr,
      new RegExp(
        `flow\\.yaml:${line}:\\d+: pipeline\\[1\\]\\.enrich\\.steps\\[1\\]: .*"word-count"`,
      ),
    );
    const before = await changed();
    await until("the old flow goes on", async () => await changed() >= before + 5);

    // An edit that checks but cannot start (a Postgres sink nothing answers for): after the
    // drain, the flow it replaced runs again (the process used to end with exit 2).
    await Deno.writeTextFile(
      flow,
      flowText("domain, word-count", redis).replace(
        "- publish: [ { jsonl: { path: items.jsonl } } ]",
        "- publish: [ { jsonl: { path: items.jsonl } }, " +
          "{ postgres: { url: 'postgres://postgres@127.0.0.1:1/test', table: x } } ]",
      ),
    );
    await until(
      "the unstartable edit is given up",
      () => /could not start, so the flow it replaced runs again/.test(run.stderr),
    );
    // Its file named from the directory the command was typed in, as every other line names it.
    assert.match(
      run.stderr,
      /could not start, so the flow it replaced runs again: flow\.yaml:\d+:\d+: /,
    );
    const again = await changed();
    await until("the flow it replaced goes on", async () => await changed() >= again + 5);

    writing = false;
    await writer;
    await until(
      "every item written is published",
      async () => (await lines(out)).length >= written.length,
    );
    child.kill("SIGTERM");
    const status = await child.status;
    await reading;
    assert.equal(status.code, 0, run.stderr);
  } catch (e) {
    throw new Error(`${(e as Error).message}; the run wrote:\n${run.stderr}`);
  } finally {
    writing = false;
    try {
      child.kill("SIGKILL");
    } catch { /* already ended */ }
  }

  const published = await lines(out);
  // Nothing lost and nothing twice: each item written once, in the order of the feed.
  assert.deepEqual(published.map((l) => l.url), written);
  // Before the swap without wordCount, after it with: the change shows in the output.
  const first = published.findIndex((l) => "wordCount" in l);
  assert.ok(first > 0, "some items were published by the old flow");
  assert.ok(
    published.slice(first).every((l) => "wordCount" in l),
    "the new flow enriched all after",
  );
  assert.equal(run.stderr.match(/swapped in/g)?.length, 1, run.stderr);
  // In memory the old flow was drained before the swap: all it read was published. A durable
  // flow may leave some in its Redis streams, for the new one (checked above: none is lost).
  const old = /ticker: stopped in [\d.]+s: (\d+) published[^]*?source feed +(\d+)/.exec(run.stderr);
  assert.ok(old, run.stderr);
  if (!redis) assert.equal(old[1], old[2], "published by the swapped-out flow = read by it");
}

redisTest(
  "--watch refuses an edit that moves a durable flow to another name or Redis, which would leave its entries behind",
  async () => {
    // The new flow started on fresh keys and read its sources again: what waited under the old
    // name stayed there, unsaid, and everything was published a second time.
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-watch-move-" });
      await Deno.writeTextFile(
        join(dir, "feed.json"),
        JSON.stringify([{ title: "One item", url: "https://example.com/1" }]),
      );
      const redis = `redis://127.0.0.1:${server.port}`;
      const flow = join(dir, "flow.yaml");
      await Deno.writeTextFile(flow, flowText("domain", redis));
      const run = watching(dir, ["flow.yaml"]);
      const { child, reading } = run;
      try {
        await until("the flow runs", () => /running flow\.yaml/.test(run.stderr));
        const edits: [string, RegExp][] = [
          [
            flowText("domain", redis).replace("name: ticker", "name: ticker2"),
            /ticker: flow\.yaml changed the durable flow's name \(ticker to ticker2\): what waits in Redis under the old one would be left there, and the sources read again under the new; the running flow goes on \(stop it, and start the new file, to move on\)/,
          ],
          [
            flowText("domain", `redis://127.0.0.1:${server.port}/3`),
            /ticker: flow\.yaml changed the durable flow's Redis \(redis:\/\/127\.0\.0\.1:\d+ to redis:\/\/127\.0\.0\.1:\d+\/3\)/,
          ],
          [
            flowText("domain"),
            /ticker: flow\.yaml changed the durable flow's durability \(redis to memory\)/,
          ],
        ];
        for (const [text, said] of edits) {
          await Deno.writeTextFile(flow, text);
          await until(`the edit is refused: ${said}`, () => said.test(run.stderr));
        }
        assert.doesNotMatch(run.stderr, /swapped in/);
        child.kill("SIGTERM");
        assert.equal((await child.status).code, 0, run.stderr);
        await reading;
      } finally {
        try {
          child.kill("SIGKILL");
        } catch { /* already ended */ }
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

Deno.test("--watch refuses an edit that names its flow as another flow file of the run does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "millrace-watch-names-" });
  await Deno.writeTextFile(
    join(dir, "feed.json"),
    JSON.stringify([{ title: "One item", url: "https://example.com/1" }]),
  );
  const named = (name: string) =>
    flowText("domain").replace("name: ticker", `name: ${name}`)
      .replace("output: out", `output: out-${name}`);
  await Deno.writeTextFile(join(dir, "a.yaml"), named("alpha"));
  await Deno.writeTextFile(join(dir, "b.yaml"), named("beta"));
  const run = watching(dir, ["a.yaml", "b.yaml"]);
  const { child, reading } = run;
  try {
    await until(
      "both flows run",
      () => (run.stderr.match(/running [ab]\.yaml/g) ?? []).length === 2,
    );
    await Deno.writeTextFile(join(dir, "a.yaml"), named("beta"));
    await until(
      "the edit is refused",
      () => /as another flow file of this run does/.test(run.stderr),
    );
    assert.match(
      run.stderr,
      /alpha: a\.yaml changed to name its flow "beta", as another flow file of this run does: their outputs and Redis keys would mix; the running flow goes on/,
    );
    assert.doesNotMatch(run.stderr, /swapped in/);
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0, run.stderr);
    await reading;
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already ended */ }
  }
});

Deno.test("--watch: a memory flow renamed by an edit is stopped under its new name", async () => {
  // The signal's line named the flow as it was called when the run began.
  const dir = await Deno.makeTempDir({ prefix: "millrace-watch-rename-" });
  await Deno.writeTextFile(
    join(dir, "feed.json"),
    JSON.stringify([{ title: "One item", url: "https://example.com/1" }]),
  );
  const flow = join(dir, "flow.yaml");
  await Deno.writeTextFile(flow, flowText("domain"));
  const run = watching(dir, ["flow.yaml"]);
  const { child, reading } = run;
  try {
    await until("the flow runs", () => /running flow\.yaml/.test(run.stderr));
    await Deno.writeTextFile(flow, flowText("domain").replace("name: ticker", "name: ticker2"));
    await until("the flow is swapped", () => /ticker2: swapped in the new/.test(run.stderr));
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0, run.stderr);
    await reading;
    assert.match(run.stderr, /ticker2: stopping: draining what was accepted/);
    assert.doesNotMatch(run.stderr, /ticker: stopping/);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already ended */ }
    await Deno.remove(dir, { recursive: true });
  }
});
