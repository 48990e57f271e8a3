/**
 * The drain check of a one-shot durable flow asks each edge's group state
 * (XINFO GROUPS). A connection dropped with that command in flight once
 * read as "no stream: nothing waits"; two such checks in a row declared the
 * flow drained while a step still held a batch, and the run ended as
 * finished with items unpublished in Redis.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineFlow } from "../../../config/define_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { startFlow } from "../../../engine/run_flow.ts";
import { RedisProxy } from "../../_redis_proxy.ts";
import { conformanceRegistry, Probe } from "../_conformance_registry.ts";
import { client, flowKeys, redisTest, withRedis } from "./_harness.ts";

redisTest(
  "a drain check whose XINFO is lost with the connection does not end a flow with a batch in hand",
  async () => {
    await withRedis(async (server) => {
      const proxy = new RedisProxy(server.port);
      const probe = new Probe();
      const holding = Promise.withResolvers<void>();
      const release = Promise.withResolvers<void>();
      const registry = conformanceRegistry(probe).stage({
        kind: "gate",
        summary: "holds its first batch until released",
        schema: z.strictObject({}),
        create: () => ({
          async handle(batch, out) {
            holding.resolve();
            await release.promise;
            for (const item of batch) out.emit(item);
          },
        }),
      });
      const dir = await Deno.makeTempDir({ prefix: "millrace-probe-drain-" });
      const admin = client(server);
      const keys = flowKeys("drainp");
      try {
        const flow = defineFlow({
          name: "drainp",
          output: dir,
          durability: "redis",
          redis: proxy.url,
          sources: { n: { kind: "feed", count: 3, batch: 3 } },
          pipeline: [{ gate: {} }, { record: {} }],
          durable: { claimAfter: "30s" },
        }, registry);
        const log = memoryLogger();
        const running = await startFlow(flow, {
          registry,
          deadLetters: new MemoryDeadLetters(),
          log,
          backoffBase: 20,
        });
        await holding.promise;
        while (!(await admin.exists(keys.done("n")))) await new Promise((r) => setTimeout(r, 20));
        // The only thing waiting anywhere: the gate's entry, pending. Two drain
        // checks in a row lose their XINFO GROUPS of it with the connection.
        proxy.loseRequest(["xinfo", "GROUPS", keys.input("gate")], 2);
        while (proxy.requestsLost < 2) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, 1500)); // the drain check's next tick
        release.resolve();
        const report = await running.done;
        // Read as "nothing waits", the two lost checks ended the flow while
        // the gate held the batch: its outputs went to a stream nobody read.
        assert.equal(report.stopped, false, "the run finished by draining");
        assert.deepEqual(probe.handled.flat(), ["n0", "n1", "n2"], "every item reached record");
        assert.equal(report.published, 3);
      } finally {
        admin.disconnect();
        await proxy.close();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
