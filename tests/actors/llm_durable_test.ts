/**
 * The llm stage in a durable flow: its results are cached in Redis, shared
 * by every process of the flow, against the fake chat server.
 */
import assert from "node:assert/strict";
import { runTestFlow } from "../../testing.ts";
import { withFakeChat } from "../adapters/chat/_fake_chat.ts";
import { redisTest, withRedis } from "../_redis_server.ts";
import { flowYaml, items, KEY, wordsOf } from "./_llm_flow.ts";

redisTest(
  "in a durable flow results are cached in Redis: a second copy of each item costs no call",
  async () => {
    await withRedis(async (redis) => {
      await withFakeChat({ answer: wordsOf }, async (server) => {
        const yaml = flowYaml(server.url).replace(
          "sources: { inbox: { kind: memory } }",
          "durability: redis\nsources: { first: { kind: memory }, again: { kind: memory } }",
        );
        const list = items(20);
        const outDir = await Deno.makeTempDir();
        try {
          const { report, published } = await runTestFlow(yaml, {
            redis: redis.url,
            items: { first: list, again: list },
            env: { KEY },
            outDir,
          });
          assert.equal(report.published, 40);
          assert.equal(published.get("out")!.length, 20, "the same ids, written twice");
          const llm = report.stages.find((s) => s.id === "llm")!;
          assert.equal(llm.received, 40);
          const sent = server.hits.flatMap((h) => [...h.inputs.values()]);
          assert.equal(sent.length, 20, "each distinct input was sent once");
          assert.equal(llm.usage?.cached, 20);
          const local = await Deno.stat(`${outDir}/llm`).catch(() => undefined);
          assert.equal(local, undefined, "no local cache file in a durable flow");
        } finally {
          await Deno.remove(outDir, { recursive: true });
        }
      });
    });
  },
);
