/**
 * An edit of a durable flow, started where an earlier version left items
 * under way: what would send them the wrong way is refused at the stage's
 * line, and what lets them pass a new stage by is said.
 */
import assert from "node:assert/strict";
import { builtinRegistry } from "../../../builtins.ts";
import { loadFlow } from "../../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { startFlow } from "../../../engine/run_flow.ts";
import { client, flowKeys, redisTest, withRedis, writeFlow } from "./_harness.ts";

function flowText(name: string, url: string, dir: string, stages: string[]): string {
  return `
name: ${name}
durability: redis
redis: ${url}
output: ${dir}
sources:
  news: { kind: generator, count: 20, seed: 3 }
pipeline:
  - validate: { require: [title, url] }
${stages.map((s) => `  - ${s}`).join("\n")}
  - publish: [ { jsonl: { path: items.jsonl } } ]
`;
}

/** Starts the flow file and runs it to its end; returns what it logged, or throws its start error. */
async function run(file: string): Promise<string[]> {
  const registry = builtinRegistry();
  const log = memoryLogger();
  const running = await startFlow(await loadFlow(file, registry), {
    registry,
    log,
    deadLetters: new MemoryDeadLetters(),
    backoffBase: 1,
  });
  await running.done;
  return log.lines;
}

redisTest(
  "a stage renamed by one added before it is refused, naming the id that keeps its streams",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-edit-" });
      try {
        const url = `redis://127.0.0.1:${server.port}`;
        const first = await writeFlow(
          dir,
          flowText("renamed", url, dir, ["enrich: { steps: [domain] }"]),
        );
        await run(first);
        // A second enrich before it, with no id: the first takes "enrich", the old one "enrich#2".
        const edited = await writeFlow(
          dir,
          flowText("renamed", url, dir, [
            "enrich: { steps: [word-count] }",
            "enrich: { steps: [domain] }",
          ]),
        );
        await assert.rejects(
          run(edited),
          /flow\.yaml:11:\d+: .*the stage that was enrich is now enrich#2 \(its kind and config are enrich's\).*give it `id: enrich` to keep them, and the stage now called enrich an id of its own/,
        );
        // As the message says: both given ids, it starts.
        await writeFlow(
          dir,
          flowText("renamed", url, dir, [
            "enrich: { id: counts, steps: [word-count] }",
            "enrich: { id: enrich, steps: [domain] }",
          ]),
        );
        await run(edited);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "stages put in another order are refused where entries wait that would skip a stage or pass one twice, and only there",
  async () => {
    await withRedis(async (server) => {
      const redis = client(server);
      const dir = await Deno.makeTempDir({ prefix: "millrace-edit-" });
      try {
        const url = `redis://127.0.0.1:${server.port}`;
        const a = "enrich: { id: a, steps: [domain] }",
          b = "enrich: { id: b, steps: [word-count] }";
        const file = await writeFlow(dir, flowText("reorder", url, dir, [a, b]));
        await run(file);
        const keys = flowKeys("reorder");
        // What a stopped run leaves: an entry past a, on b's input: b then a would run it twice.
        const onB = await redis.xadd(keys.input("b", "normal"), "*", "b", "[]", "n", "0");
        await writeFlow(dir, flowText("reorder", url, dir, [b, a]));
        await assert.rejects(
          run(file),
          /flow\.yaml:10:\d+: .*the stages are in another order \(validate -> a -> b -> publish when they were written, validate -> b -> a -> publish now\) while 1 entry waits on the input of b: their items would go through a twice/,
        );
        await redis.xdel(keys.input("b", "normal"), onB!);
        // One on a's input would skip b, moved ahead of it.
        const onA = await redis.xadd(keys.input("a", "normal"), "*", "b", "[]", "n", "0");
        await assert.rejects(
          run(file),
          /while 1 entry waits on the input of a: their items would skip b;/,
        );
        await redis.xdel(keys.input("a", "normal"), onA!);
        // Entries before both moved stages, or past both, go through each once: the new order starts.
        await redis.xadd(keys.input("validate", "normal"), "*", "b", "[]", "n", "0");
        await redis.xadd(keys.input("publish", "normal"), "*", "b", "[]", "n", "0");
        await run(file);
      } finally {
        await redis.quit();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "configs edited so that one stage's old config is another's now, as many stages as before: not a rename",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-edit-" });
      try {
        const url = `redis://127.0.0.1:${server.port}`;
        const one = "enrich: { steps: [domain] }", two = "enrich: { steps: [word-count] }";
        const file = await writeFlow(dir, flowText("configs", url, dir, [one, two]));
        await run(file);
        // enrich takes what was enrich#2's config, and enrich#2 a new one.
        await writeFlow(dir, flowText("configs", url, dir, [two, "enrich: { steps: [language] }"]));
        await run(file);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "two stages of a kind given no id that swap lines are moved stages: refused where an entry waits between them",
  async () => {
    await withRedis(async (server) => {
      const redis = client(server);
      const dir = await Deno.makeTempDir({ prefix: "millrace-edit-" });
      try {
        const url = `redis://127.0.0.1:${server.port}`;
        const one = "enrich: { steps: [domain] }", two = "enrich: { steps: [word-count] }";
        const file = await writeFlow(dir, flowText("swapped", url, dir, [one, two]));
        await run(file);
        const keys = flowKeys("swapped");
        // An entry past the domain step, on enrich#2's input: swapped, enrich#2 is the domain
        // step, so its items would have domain twice and never a word count.
        const past = await redis.xadd(keys.input("enrich#2", "normal"), "*", "b", "[]", "n", "0");
        await writeFlow(dir, flowText("swapped", url, dir, [two, one]));
        await assert.rejects(
          run(file),
          /flow\.yaml:11:\d+: .*another order \(validate -> enrich -> enrich#2 -> publish when they were written, validate -> enrich#2 -> enrich -> publish now \(enrich#2's config is now enrich's, enrich's config is now enrich#2's: .*\) while 1 entry waits on the input of enrich#2: their items would skip enrich#2 and go through enrich twice/,
        );
        // Before both, every item goes through each once: the swap starts.
        await redis.xdel(keys.input("enrich#2", "normal"), past!);
        await redis.xadd(keys.input("enrich", "normal"), "*", "b", "[]", "n", "0");
        await run(file);
        // Two stages alike: [one, one, two] made [one, two, one] moves two from enrich#3 to
        // enrich#2 and one from enrich#2 to enrich#3; an entry waiting on enrich#3 would have
        // one twice and never two.
        await writeFlow(dir, flowText("alike", url, dir, [one, one, two]));
        await run(file);
        await redis.xadd(flowKeys("alike").input("enrich#3", "normal"), "*", "b", "[]", "n", "0");
        await writeFlow(dir, flowText("alike", url, dir, [one, two, one]));
        await assert.rejects(
          run(file),
          /while 1 entry waits on the input of enrich#3: their items would skip enrich#3 and go through enrich#2 twice/,
        );
        // Two pairs alike: [one, one, two, two] made [two, two, one, one]; an entry on enrich#3
        // has had one twice, and would have it twice more and never two.
        await writeFlow(dir, flowText("pairs", url, dir, [one, one, two, two]));
        await run(file);
        await redis.xadd(flowKeys("pairs").input("enrich#3", "normal"), "*", "b", "[]", "n", "0");
        await writeFlow(dir, flowText("pairs", url, dir, [two, two, one, one]));
        await assert.rejects(run(file), /while 1 entry waits on the input of enrich#3: /);
      } finally {
        await redis.quit();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest("a new stage with entries waiting past where it stands is said", async () => {
  await withRedis(async (server) => {
    const redis = client(server);
    const dir = await Deno.makeTempDir({ prefix: "millrace-edit-" });
    try {
      const url = `redis://127.0.0.1:${server.port}`;
      const file = await writeFlow(dir, flowText("added", url, dir, []));
      await run(file);
      const input = flowKeys("added").input("publish", "normal");
      await redis.xadd(input, "*", "b", "[]", "n", "0");
      await writeFlow(dir, flowText("added", url, dir, ["enrich: { steps: [domain] }"]));
      const logs = await run(file);
      assert.ok(
        logs.some((l) =>
          /added: stage enrich is new, and 1 entry waits on the input of publish, past where it stands: their items will not go through it/
            .test(l)
        ),
        logs.join("\n"),
      );
    } finally {
      await redis.quit();
      await Deno.remove(dir, { recursive: true });
    }
  });
});

redisTest(
  "a Deduper keyed otherwise than at the last start is said: its copies would get other ids",
  async () => {
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-edit-" });
      try {
        const url = `redis://127.0.0.1:${server.port}`;
        const file = await writeFlow(
          dir,
          flowText("rekeyed", url, dir, ["dedupe: { key: [url] }"]),
        );
        await run(file);
        assert.ok(!(await run(file)).some((l) => /keyed by/.test(l)), "the same key says nothing");
        await writeFlow(dir, flowText("rekeyed", url, dir, ["dedupe: { key: [title] }"]));
        const logs = await run(file);
        assert.ok(
          logs.some((l) =>
            /rekeyed: stage dedupe is keyed by key \[title\] now, by key \[url\] at the last start: what it remembers was keyed the old way/
              .test(l)
          ),
          logs.join("\n"),
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "a stage removed with entries waiting and put back elsewhere is checked against the run that wrote them",
  async () => {
    // v a b p, stopped with entries on a's input; a removed (said), then put back after b:
    // checked against the run in between, which had no a, its items skipped b (a review: 1,780).
    await withRedis(async (server) => {
      const redis = client(server);
      const dir = await Deno.makeTempDir({ prefix: "millrace-edit-" });
      try {
        const url = `redis://127.0.0.1:${server.port}`;
        const a = "enrich: { id: a, steps: [domain] }",
          b = "enrich: { id: b, steps: [word-count] }";
        const file = await writeFlow(dir, flowText("readd", url, dir, [a, b]));
        await run(file);
        const keys = flowKeys("readd");
        await redis.xadd(keys.input("a", "normal"), "*", "b", "[]", "n", "0");
        await writeFlow(dir, flowText("readd", url, dir, [b]));
        const removed = await run(file);
        assert.ok(
          removed.some((l) => /stage a is no longer in the flow, but 1 entry waits/.test(l)),
        );
        await writeFlow(dir, flowText("readd", url, dir, [b, a]));
        await assert.rejects(
          run(file),
          /flow\.yaml:11:\d+: .*\(validate -> a -> b -> publish when they were written, validate -> b -> a -> publish now\) while 1 entry waits on the input of a: their items would skip b;/,
        );
        // Put back where it was, it starts and finishes them.
        await writeFlow(dir, flowText("readd", url, dir, [a, b]));
        await run(file);
      } finally {
        await redis.quit();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "a flow last started by a millrace that kept no record of writers is checked as well",
  async () => {
    // Its stages' writers are the last start's pipeline; a stage removed keeps it on record,
    // for the start that puts it back (the first version of the record lost it there).
    await withRedis(async (server) => {
      const redis = client(server);
      const dir = await Deno.makeTempDir({ prefix: "millrace-edit-" });
      try {
        const url = `redis://127.0.0.1:${server.port}`;
        const a = "enrich: { id: a, steps: [domain] }",
          b = "enrich: { id: b, steps: [word-count] }";
        const file = await writeFlow(dir, flowText("upgrade", url, dir, [a, b]));
        await run(file);
        const keys = flowKeys("upgrade");
        await redis.del(keys.passed); // as an earlier millrace left the flow
        await redis.xadd(keys.input("a", "normal"), "*", "b", "[]", "n", "0");
        await writeFlow(dir, flowText("upgrade", url, dir, [b]));
        await run(file);
        await writeFlow(dir, flowText("upgrade", url, dir, [b, a]));
        await assert.rejects(run(file), /on the input of a: their items would skip b;/);
      } finally {
        await redis.quit();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "an earlier pipeline stops counting once the entries it wrote are done",
  async () => {
    // A stage added while an entry waited past it is said once; restarts after that entry was
    // done, with entries of the new pipeline waiting, said it again at every start.
    await withRedis(async (server) => {
      const redis = client(server);
      const dir = await Deno.makeTempDir({ prefix: "millrace-edit-" });
      try {
        const url = `redis://127.0.0.1:${server.port}`;
        const a = "enrich: { id: a, steps: [domain] }",
          b = "enrich: { id: b, steps: [word-count] }";
        const keys = flowKeys("stale");
        const file = await writeFlow(dir, flowText("stale", url, dir, [a]));
        await run(file);
        await redis.xadd(keys.input("publish", "normal"), "*", "b", "[]", "n", "0");
        await writeFlow(dir, flowText("stale", url, dir, [a, b]));
        const edited = await run(file);
        assert.equal(edited.filter((l) => /stage b is new/.test(l)).length, 1);
        for (let i = 0; i < 2; i++) {
          await redis.xadd(keys.input("publish", "normal"), "*", "b", "[]", "n", "0");
          const again = await run(file);
          assert.deepEqual(again.filter((l) => /is new/.test(l)), [], `restart ${i}`);
        }
        const writers = JSON.parse((await redis.hget(keys.passed, "publish"))!);
        assert.deepEqual(writers.map((w: { order: string[] }) => w.order.join(" ")), [
          "validate a b publish",
        ]);
      } finally {
        await redis.quit();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
