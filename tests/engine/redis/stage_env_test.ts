/**
 * What a durable flow's stages are built with beyond their config: the
 * command a message of theirs gives to run (a dead letter's replay).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { builtinRegistry } from "../../../builtins.ts";
import { loadFlow } from "../../../config/load_flow.ts";
import type { Actor } from "../../../engine/actor.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { memoryLogger } from "../../../engine/log.ts";
import type { BuildEnv } from "../../../engine/registry.ts";
import { startFlow } from "../../../engine/run_flow.ts";
import { redisTest, withRedis, writeFlow } from "./_harness.ts";

redisTest("a durable flow's stages are given the command that names its flow file", async () => {
  // Without it, a dead letter of an item embedded before a change of dimensions said to run
  // `dlq replay <flow file>`.
  await withRedis(async (server) => {
    const dir = await Deno.makeTempDir({ prefix: "millrace-stage-env-" });
    try {
      let seen: BuildEnv | undefined;
      const registry = builtinRegistry().stage({
        kind: "look",
        summary: "keeps what it was built with",
        schema: z.strictObject({}),
        leavesInputs: true,
        create: (_config, env): Actor => {
          seen = env;
          return { handle: (batch, out) => batch.forEach((item) => out.emit(item)) };
        },
      });
      const file = await writeFlow(
        dir,
        `name: stage-env
durability: redis
redis: redis://127.0.0.1:${server.port}
output: ${dir}
sources:
  news: { kind: generator, count: 5, seed: 1 }
pipeline:
  - look: {}
  - publish: [ { jsonl: { path: items.jsonl } } ]
`,
      );
      const running = await startFlow(await loadFlow(file, registry), {
        registry,
        log: memoryLogger(),
        deadLetters: new MemoryDeadLetters(),
      });
      await running.done;
      assert.equal(seen?.command?.("dlq list"), `deno task run dlq list ${file}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
