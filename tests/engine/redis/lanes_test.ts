import assert from "node:assert/strict";
import { join } from "node:path";
import { builtinRegistry } from "../../../builtins.ts";
import { closeRedis, connectRedis } from "../../../engine/redis/connection.ts";
import { defineFlow } from "../../../config/define_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { flowKeys } from "../../../engine/redis/keys.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { runFlow } from "../../../engine/run_flow.ts";
import { redisTest, withRedis } from "../../_redis_server.ts";
import { addEntry, item } from "./_fixtures.ts";

redisTest("items on the high-priority lane are handled before the normal backlog", async () => {
  await withRedis(async (server) => {
    const dir = await Deno.makeTempDir({ prefix: "millrace-lanes-" });
    const registry = builtinRegistry();
    const flow = defineFlow({
      name: "lanes",
      durability: "redis",
      redis: server.url,
      output: dir,
      sources: { none: { kind: "generator", count: 0 } },
      pipeline: [
        { validate: { require: ["title", "url"] } },
        {
          publish: {
            sinks: [{ jsonl: { path: "items.jsonl" } }],
            batch: { size: 1000, maxWait: "300ms" },
          },
        },
      ],
    }, registry);
    // A backlog of normal items is already waiting when one urgent item arrives.
    const redis = await connectRedis(server.url);
    const keys = flowKeys("lanes");
    try {
      await redis.xgroup("CREATE", keys.input("validate"), "validate", "0", "MKSTREAM");
      for (let e = 0; e < 20; e++) {
        await addEntry(redis, keys.input("validate"), [
          item(e * 5),
          item(e * 5 + 1),
          item(e * 5 + 2),
          item(e * 5 + 3),
          item(e * 5 + 4),
        ]);
      }
      await addEntry(redis, keys.input("validate", "high"), [item(999)]);
    } finally {
      await closeRedis(redis);
    }
    const report = await runFlow(flow, {
      registry,
      deadLetters: new MemoryDeadLetters(),
      log: memoryLogger(),
    });
    assert.equal(report.published, 101);
    const ids = Deno.readTextFileSync(join(dir, "items.jsonl")).trim().split("\n")
      .map((l) => JSON.parse(l).id);
    assert.equal(ids.length, 101);
    assert.equal(ids[0], "id999", "the high-priority item is published first");
  });
});
