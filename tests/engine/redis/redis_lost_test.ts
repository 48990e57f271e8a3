import assert from "node:assert/strict";
import { join } from "node:path";
import {
  countLines,
  FlowWorker,
  type RedisServer,
  redisTest,
  startRedis,
  tail,
  waitFor,
  writeFlow,
} from "./_harness.ts";

redisTest(
  "a flow whose Redis comes back empty stops saying its streams are gone, with its report, exit 1",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "millrace-lost-" });
    const out = join(dir, "items.jsonl");
    // No persistence: a restart brings Redis back with none of the flow's keys.
    let server: RedisServer = await startRedis();
    let worker: FlowWorker | undefined;
    try {
      // A polled source: the flow would run until stopped, so only the loss ends it.
      const flow = await writeFlow(
        dir,
        `
name: lost
durability: redis
redis: ${server.url}
output: ${dir}
sources:
  news: { kind: generator, count: 2000, seed: 5, every: 1s }
pipeline:
  - validate: { require: [title, url] }
  - publish:
      - jsonl: { path: items.jsonl }
`,
      );
      worker = new FlowWorker(flow, { main: true });
      await waitFor("some items to be published", async () => (await countLines(out)) > 0);
      await server.stop();
      server = await startRedis({ port: server.port });

      // Before: the steps paused on NOGROUP for ever, and /readyz said ready.
      const result = await worker.finished(60_000);
      assert.equal(result.code, 1, tail(result.stderr));
      assert.match(
        result.stderr,
        /Redis no longer holds this flow's streams and consumer groups \(NOGROUP/,
        tail(result.stderr),
      );
      assert.ok(result.report, `the run's report was printed:\n${tail(result.stderr)}`);
      assert.equal(result.report.stopped, true);
      assert.doesNotMatch(result.stderr, /stays in Redis, not lost/, "nothing is said to wait");
    } finally {
      worker?.kill("SIGKILL");
      await worker?.result;
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
