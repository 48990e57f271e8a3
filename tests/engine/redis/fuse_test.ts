import assert from "node:assert/strict";
import { join } from "node:path";
import { generateItems } from "../../../adapters/sources/generator_source.ts";
import { builtinRegistry } from "../../../builtins.ts";
import { flowStatus } from "../../../cli/status.ts";
import { loadFlow } from "../../../config/load_flow.ts";
import {
  client,
  edges,
  flowKeys,
  FlowWorker,
  readJsonl,
  redisTest,
  repeats,
  scanKeys,
  tail,
  withRedis,
  writeFlow,
} from "./_harness.ts";

const GENERATOR = { count: 3000, seed: 5 };

function flowText(name: string, url: string, dir: string, fuse: boolean | "all"): string {
  return `
name: ${name}
durability: redis
redis: ${url}
output: ${dir}
sources:
  news: { kind: generator, count: ${GENERATOR.count}, seed: ${GENERATOR.seed} }
pipeline:
  - validate: { require: [title, url], title: { min: 5 }, spam: [casino] }
  - dedupe: { key: [url], near: { threshold: 0.8 } }
  - enrich: { steps: [canonical-url, domain, word-count, language, keywords] }
  - embed: { provider: local, dimensions: 16, batch: { size: 64, maxWait: 50ms } }
  - publish:
      sinks: [ { jsonl: { path: items.jsonl } } ]
      batch: { size: 40, maxWait: 50ms }
durable: { fuse: ${fuse} }
`;
}

/** Runs a flow to the end in one worker; returns its published lines by id, without times and merged fields. */
async function run(name: string, url: string, fuse: boolean | "all") {
  const dir = await Deno.makeTempDir({ prefix: `millrace-${name}-` });
  try {
    const worker = new FlowWorker(await writeFlow(dir, flowText(name, url, dir, fuse)));
    const result = await worker.finished(60_000);
    assert.equal(result.code, 0, tail(result.stderr));
    const lines = await readJsonl(join(dir, "items.jsonl"));
    assert.deepEqual(repeats(lines.map((l) => l.id as string)), new Map());
    // The fields a merge adds hold sighting times and depend on which copy won a race: left out.
    const facts = (payload: unknown) => {
      const { sources: _s, lastSeenAt: _l, revision: _r, engagement: _e, ...rest } =
        payload as Record<string, unknown>;
      return JSON.stringify(rest);
    };
    const byId = new Map(
      lines.map((l) => [l.id as string, facts(l.payload) + JSON.stringify(l.vector)]),
    );
    return { byId, report: result.report! };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

redisTest(
  "fused, validate to enrich are one step and embed and publish another, and they publish the same items",
  async () => {
    const { stats } = generateItems(GENERATOR);
    await withRedis(async (server) => {
      const redis = client(server);
      try {
        const fused = await run("fused", server.url, true);
        const plain = await run("plain", server.url, false);

        const streams = async (flow: string) =>
          (await scanKeys(redis, `millrace:{${flow}}:in:*`)).map((k) => k.split(":in:")[1]).sort();
        assert.deepEqual(await streams("fused"), [
          "embed",
          "embed:high",
          "validate",
          "validate:high",
        ]);
        assert.deepEqual(await streams("plain"), [
          "dedupe",
          "dedupe:high",
          "embed",
          "embed:high",
          "enrich",
          "enrich:high",
          "publish",
          "publish:high",
          "validate",
          "validate:high",
        ]);

        assert.equal(fused.byId.size, stats.unique, "every unique item, once");
        assert.deepEqual(fused.byId, plain.byId, "the same items with the same facts");
        assert.equal(fused.report.published, plain.report.published);
        // Each stage still counts its own work inside the fused step.
        for (const id of ["validate", "dedupe", "enrich", "embed", "publish"]) {
          const f = fused.report.stages.find((s) => s.id === id)!;
          const p = plain.report.stages.find((s) => s.id === id)!;
          assert.deepEqual([f.received, f.emitted], [p.received, p.emitted], id);
        }
        for (const e of await edges(redis, flowKeys("fused"))) {
          assert.equal(e.pending + e.lag, 0, e.key);
        }
      } finally {
        await redis.quit();
      }
    });
  },
);

redisTest(
  "fuse: all, the whole pipeline is one step, read in batches of embed's size, and it publishes the same items",
  async () => {
    const { stats } = generateItems(GENERATOR);
    await withRedis(async (server) => {
      const redis = client(server);
      try {
        const whole = await run("whole", server.url, "all");
        const plain = await run("plain", server.url, false);
        assert.deepEqual(
          (await scanKeys(redis, "millrace:{whole}:in:*")).map((k) => k.split(":in:")[1]).sort(),
          ["validate", "validate:high"],
        );
        assert.equal(whole.byId.size, stats.unique, "every unique item, once");
        assert.deepEqual(whole.byId, plain.byId, "the same items with the same facts");
        const stage = (id: string) => whole.report.stages.find((s) => s.id === id)!;
        for (const id of ["validate", "dedupe", "enrich", "embed", "publish"]) {
          const p = plain.report.stages.find((s) => s.id === id)!;
          assert.deepEqual([stage(id).received, stage(id).emitted], [p.received, p.emitted], id);
        }
        // The step reads batches of at most embed's 64, and embed gets what validate and
        // dedupe let through of each: one batch of its own per batch read, never cut again.
        const read = stage("validate");
        assert.ok(read.batches >= Math.ceil(read.received / 64), `${read.batches} batches`);
        assert.equal(stage("embed").batches, read.batches);
        // Publish still cuts embed's batches to its own 40.
        assert.ok(stage("publish").batches > stage("embed").batches);
        for (const e of await edges(redis, flowKeys("whole"))) {
          assert.equal(e.pending + e.lag, 0, e.key);
        }
      } finally {
        await redis.quit();
      }
    });
  },
);

redisTest(
  "turning fuse on while a stage it fuses away still has entries waiting refuses to start, naming the stage and the field",
  async () => {
    await withRedis(async (server) => {
      const redis = client(server);
      const dir = await Deno.makeTempDir({ prefix: "millrace-stranded-" });
      try {
        // What a stopped unfused run leaves: an entry on publish's input, undelivered.
        const keys = flowKeys("stranded");
        const publish = keys.input("publish", "normal");
        await redis.xgroup("CREATE", publish, "publish", "$", "MKSTREAM");
        await redis.xadd(publish, "*", "b", "[]", "n", "0");
        const flow = await writeFlow(dir, flowText("stranded", server.url, dir, true));
        const result = await new FlowWorker(flow).finished(60_000);
        assert.notEqual(result.code, 0);
        assert.match(
          result.stderr,
          /flow\.yaml:\d+:\d+: durable\.fuse: entries wait on the input streams of stage publish \(1 entry\) \(.*in:publish\), which nothing reads once fuse: true runs it inside the step of embed: run the flow with fuse: false until `deno task run status .*flow\.yaml` shows no entries waiting on it/,
        );
        assert.equal(await redis.xlen(publish), 1, "the entry is still there");

        // fuse: all strands every stage after the first: each one holding entries is named.
        const dedupe = keys.input("dedupe", "normal");
        await redis.xgroup("CREATE", dedupe, "dedupe", "$", "MKSTREAM");
        await redis.xadd(dedupe, "*", "b", "[]", "n", "0");
        await writeFlow(dir, flowText("stranded", server.url, dir, "all"));
        const all = await new FlowWorker(flow).finished(60_000);
        assert.notEqual(all.code, 0);
        assert.match(
          all.stderr,
          /durable\.fuse: entries wait on the input streams of stages dedupe \(1 entry\), publish \(1 entry\) \(.*in:dedupe and the others\), which nothing reads once fuse: all runs them inside the step of validate/,
        );

        // Unfused, the flow reads it (an empty entry) and finishes.
        await writeFlow(dir, flowText("stranded", server.url, dir, false));
        const plain = await new FlowWorker(flow).finished(60_000);
        assert.equal(plain.code, 0, tail(plain.stderr));
      } finally {
        await redis.quit();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "a start beside a running process of another version of the flow says so",
  async () => {
    // Two versions at once (a rolling deploy, an edit started beside the old process) pass
    // items to each other's stages: a review's reordered pair sent 586 items through a stage
    // two to four times, and neither said a word.
    await withRedis(async (server) => {
      const redis = client(server);
      const dir = await Deno.makeTempDir({ prefix: "millrace-versions-" });
      try {
        const keys = flowKeys("versions");
        // The other version: its pipeline recorded, and its process reading dedupe just now.
        await redis.set(keys.pipeline, JSON.stringify(["dedupe:dedupe", "validate:validate"]));
        const input = keys.input("dedupe", "normal");
        await redis.xgroup("CREATE", input, "dedupe", "$", "MKSTREAM");
        const id = await redis.xadd(input, "*", "b", "[]", "n", "0");
        await redis.xreadgroup("GROUP", "dedupe", "old-host:41", "COUNT", 1, "STREAMS", input, ">");
        await redis.xack(input, "dedupe", id!);
        const flow = await writeFlow(dir, flowText("versions", server.url, dir, false));
        const first = await new FlowWorker(flow).finished(60_000);
        assert.equal(first.code, 0, tail(first.stderr));
        assert.match(
          first.stderr,
          /versions: another version of this flow is running, or stopped moments ago \(old-host:41 read its stages dedupe -> validate within claimAfter; this file has validate -> dedupe -> /,
        );
        const again = await new FlowWorker(flow).finished(60_000);
        assert.doesNotMatch(again.stderr, /another version/, "the same version says nothing");
      } finally {
        await redis.quit();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "a start beside a process of another version that is between two polls says so: it holds its source",
  async () => {
    // Between polls the old process reads nothing, and Redis 7.0 counts its blocked reads as
    // idle: an edit started past claimAfter after its last read said nothing.
    await withRedis(async (server) => {
      const redis = client(server);
      const dir = await Deno.makeTempDir({ prefix: "millrace-versions-" });
      try {
        const keys = flowKeys("polls");
        await redis.set(keys.pipeline, JSON.stringify(["dedupe:dedupe", "validate:validate"]));
        // Its lease on the source, renewed all along; it lapses here (past this start, however
        // slow, and then this run reads the source).
        await redis.set(keys.lease("news"), "old-host:41#7", "PX", 8000);
        const flow = await writeFlow(dir, flowText("polls", server.url, dir, false));
        const first = await new FlowWorker(flow).finished(60_000);
        assert.equal(first.code, 0, tail(first.stderr));
        assert.match(
          first.stderr,
          /polls: another version of this flow is running, or stopped moments ago \(old-host:41 holds its source news; this file has validate -> dedupe -> /,
        );
      } finally {
        await redis.quit();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "a stage an earlier run had and the flow no longer has is warned about while entries wait on its input",
  async () => {
    await withRedis(async (server) => {
      const redis = client(server);
      const dir = await Deno.makeTempDir({ prefix: "millrace-removed-" });
      try {
        // What an earlier run with a `shout` stage left: the stage known, an entry on its input.
        const keys = flowKeys("removed");
        await redis.hset(keys.stages, { shout: "step" });
        const shout = keys.input("shout", "normal");
        await redis.xgroup("CREATE", shout, "shout", "$", "MKSTREAM");
        await redis.xadd(shout, "*", "b", "[]", "n", "0");
        const flow = await writeFlow(dir, flowText("removed", server.url, dir, false));
        const result = await new FlowWorker(flow).finished(60_000);
        assert.equal(result.code, 0, tail(result.stderr));
        assert.match(
          result.stderr,
          /removed: stage shout is no longer in the flow, but 1 entry waits on its input \(.*in:shout\), which nothing reads now: put the stage back to finish them, or reset the flow to drop them/,
        );
        assert.equal(await redis.xlen(shout), 1, "the entry is still there");
        // And status says so too: it showed every stage at 0, the run having said "finished".
        const status = await flowStatus(redis, await loadFlow(flow, builtinRegistry()), {
          sampleMs: 0,
        });
        assert.ok(
          status.notes.some((n) =>
            /^1 entry waits on the input of stage "shout", which is not in the pipeline any more/
              .test(n)
          ),
          status.notes.join("\n"),
        );
      } finally {
        await redis.quit();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
