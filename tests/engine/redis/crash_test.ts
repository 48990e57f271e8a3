import assert from "node:assert/strict";
import { join } from "node:path";
import { generateItems } from "../../../adapters/sources/generator_source.ts";
import { itemId } from "../../../engine/item.ts";
import {
  client,
  countLines,
  deadLetters,
  edges,
  flowKeys,
  FlowWorker,
  killAll,
  readJsonl,
  redisTest,
  repeats,
  tail,
  waitFor,
  withRedis,
  writeFlow,
} from "./_harness.ts";
import { numberedItem } from "./_worker.ts";

const GENERATOR = { count: 20_000, seed: 7, duplicates: 0, nearDuplicates: 0, invalid: 0.02 };

function crashFlow(url: string, dir: string): string {
  const g = GENERATOR;
  return `
name: crash
durability: redis
redis: ${url}
output: ${dir}
sources:
  news:
    kind: generator
    count: ${g.count}
    seed: ${g.seed}
    duplicates: ${g.duplicates}
    nearDuplicates: ${g.nearDuplicates}
    invalid: ${g.invalid}
    batch: 200
pipeline:
  - validate: { require: [title, url], title: { min: 5 }, spam: [casino] }
  - dedupe: { key: [url] }
  - enrich: { steps: [canonical-url, domain, word-count, language, keywords] }
  - publish:
      sinks: [ { jsonl: { path: items.jsonl } } ]
      batch: { size: 200, maxWait: 100ms }
# A small backlog paces the source, so kills land while it still emits and
# its lease moves to the other process, which resumes from its position.
durable: { claimAfter: 1s, maxBacklog: 2000 }
`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

redisTest(
  "two processes killed again and again publish every item exactly once and lose nothing",
  async () => {
    const { items, labels } = generateItems(GENERATOR);
    const valid = new Set<string>();
    const invalid = new Set<string>();
    items.forEach((item, i) => (labels[i] === "invalid" ? invalid : valid).add(itemId(item)));
    // Invalid items may share an id (several have the url "notaurl"); valid ones never do.
    assert.equal(valid.size, labels.filter((l) => l !== "invalid").length);
    assert.ok([...invalid].every((id) => !valid.has(id)));

    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-crash-" });
      const out = join(dir, "items.jsonl");
      const redis = client(server);
      const started: FlowWorker[] = [];
      const spawn = () => {
        const w = new FlowWorker(flow, { main: true }); // the real command line
        started.push(w);
        return w;
      };
      const flow = await writeFlow(dir, crashFlow(server.url, dir));
      try {
        const workers = [spawn(), spawn()];
        // The first kill hits the source's lease holder (its consumer name carries its pid), so
        // the lease has to move whatever the timing: once a process holds it (on a loaded
        // machine the processes took more than the second below to start, no kill hit the
        // holder, and the check on the fence failed).
        const lease = flowKeys("crash").lease("news");
        await waitFor(
          "a process to hold the source's lease",
          async () => !!await redis.get(lease),
          60_000,
        );
        let killedMidRun = 0;
        for (let k = 0; k < 4; k++) {
          await sleep(1000);
          const holder = k === 0 ? await redis.get(lease) : null;
          const holderAt = workers.findIndex((w) => holder?.split(":")[1] === String(w.pid));
          const i = holderAt >= 0 ? holderAt : k % 2;
          const published = await countLines(out);
          if (published >= valid.size || workers[i].exited) break;
          workers[i].kill("SIGKILL");
          const killed = await workers[i].result;
          assert.equal(
            killed.signal,
            "SIGKILL",
            `worker exited before the kill:\n${tail(killed.stderr)}`,
          );
          killedMidRun++;
          workers[i] = spawn();
        }
        assert.ok(killedMidRun >= 3, `only ${killedMidRun} kills landed while the flow ran`);

        // No more kills: the two last processes finish the flow and exit by themselves.
        for (const w of workers) {
          const r = await w.finished(120_000);
          assert.equal(r.code, 0, tail(r.stderr));
        }

        const lines = await readJsonl(out);
        const ids = lines.map((l) => l.id as string);
        assert.deepEqual(repeats(ids), new Map(), "an item was written twice");
        assert.equal(ids.length, valid.size);
        assert.deepEqual(new Set(ids), valid, "every valid item, and nothing else");

        const keys = flowKeys("crash");
        const fence = Number(await redis.get(keys.fence("news")));
        assert.ok(fence >= 2, "the source's lease never moved: no kill hit its holder mid-run");
        for (const e of await edges(redis, keys)) {
          assert.equal(e.pending, 0, `${e.key}: entries left pending`);
          assert.equal(e.lag, 0, `${e.key}: entries never delivered`);
        }
        // Each invalid item dead-lettered once: sources resume from their
        // stored position and a step's letters commit with its ack.
        const letters = await deadLetters(redis, keys);
        const tally = (ids: string[]) => {
          const n = new Map<string, number>();
          for (const id of ids) n.set(id, (n.get(id) ?? 0) + 1);
          return n;
        };
        assert.deepEqual(
          tally(letters.map((l) => l.item.id)),
          tally(items.filter((_, i) => labels[i] === "invalid").map(itemId)),
          "dead letters: each invalid item once",
        );
        assert.ok(letters.every((l) => l.stage === "validate" && l.reason.length > 0));
      } finally {
        await killAll(started);
        await redis.quit();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

function writtenNotAckedFlow(url: string, dir: string, count: number): string {
  return `
name: written
durability: redis
redis: ${url}
output: ${dir}
sources:
  items: { kind: numbered, count: ${count}, batch: 100 }
pipeline:
  - validate: { require: [title, url] }
  - slow: { ms: 20 }
  - publish:
      sinks: [ { jsonl: { path: items.jsonl } }, { crash-after: {} } ]
      batch: { size: 100, maxWait: 20ms }
durable: { claimAfter: 1s }
`;
}

redisTest(
  "a batch a sink wrote but a crash left unacknowledged is not written again by the process that takes it over",
  async () => {
    const count = 3000;
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-written-" });
      const flow = await writeFlow(dir, writtenNotAckedFlow(server.url, dir, count));
      // Both open the file before the crash; one dies right after its 3rd batch is in the file.
      const doomed = new FlowWorker(flow, { env: { MILLRACE_TEST_CRASH_AFTER: "3" } });
      const survivor = new FlowWorker(flow);
      try {
        const crashed = await doomed.finished(60_000);
        assert.equal(crashed.code, 3, `the crash did not happen:\n${tail(crashed.stderr)}`);
        const r = await survivor.finished(60_000);
        assert.equal(r.code, 0, tail(r.stderr));
        assert.match(r.stderr, /claimed \d+ entr(y|ies) left by a silent consumer/);

        const ids = (await readJsonl(join(dir, "items.jsonl"))).map((l) => l.id as string);
        assert.deepEqual(repeats(ids), new Map(), "a redelivered batch was written twice");
        const expected = Array.from({ length: count }, (_, i) => itemId(numberedItem(i)));
        assert.deepEqual(new Set(ids), new Set(expected));
      } finally {
        await killAll([doomed, survivor]);
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

redisTest(
  "a worker stopped by SIGTERM acknowledges what it holds, and the next one resumes the source where it stopped",
  async () => {
    const count = 4000;
    await withRedis(async (server) => {
      const dir = await Deno.makeTempDir({ prefix: "millrace-sigterm-" });
      const out = join(dir, "items.jsonl");
      // A small backlog paces the source, so it is still emitting at the stop.
      const text = writtenNotAckedFlow(server.url, dir, count)
        .replace("name: written", "name: term")
        .replace("claimAfter: 1s }", "claimAfter: 1s, maxBacklog: 500 }");
      const flow = await writeFlow(dir, text);
      const redis = client(server);
      const first = new FlowWorker(flow);
      let second: FlowWorker | undefined;
      try {
        await waitFor("some items to be published", async () => (await countLines(out)) >= 500);
        first.kill("SIGTERM");
        const stopped = await first.finished(30_000);
        assert.equal(stopped.code, 0, tail(stopped.stderr));
        assert.equal(stopped.report?.stopped, true);
        const keys = flowKeys("term");
        for (const e of await edges(redis, keys)) {
          assert.equal(e.pending, 0, `${e.key}: the stopped worker left entries pending`);
        }
        const emittedFirst = stopped.report!.sources[0].emitted;
        assert.ok(emittedFirst < count, "stopped before the source was done");

        second = new FlowWorker(flow);
        const done = await second.finished(60_000);
        assert.equal(done.code, 0, tail(done.stderr));
        assert.equal(
          done.report!.sources[0].emitted,
          count - emittedFirst,
          "no item emitted twice",
        );
        const ids = (await readJsonl(out)).map((l) => l.id as string);
        assert.deepEqual(repeats(ids), new Map());
        const expected = Array.from({ length: count }, (_, i) => itemId(numberedItem(i)));
        assert.deepEqual(new Set(ids), new Set(expected));
      } finally {
        await killAll(second ? [first, second] : [first]);
        await redis.quit();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
