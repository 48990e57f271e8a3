import assert from "node:assert/strict";
import { builtinRegistry } from "../../builtins.ts";
import { parseFlow } from "../../config/load_flow.ts";
import { unusedRedis } from "../../cli/unused_redis.ts";

const flowWith = (top: string) =>
  parseFlow(
    `name: mem\n${top}sources:\n  news: { kind: generator, count: 10 }\npipeline:\n  - validate\n`,
    "mem.yaml",
    builtinRegistry(),
    {},
  );

Deno.test("a flow that names a Redis and runs in memory is warned of at its redis line", () => {
  // A forgotten `durability: redis`: the flow ran in memory, its durable: settings unread,
  // and nothing said so.
  const [warning, ...more] = unusedRedis(
    flowWith("redis: redis://127.0.0.1:6379\ndurable: { fuse: all }\n"),
  );
  assert.deepEqual(more, []);
  assert.equal(warning.line, 2);
  assert.match(
    warning.message,
    /^redis: is read only by a durable flow, and this one runs in memory/,
  );
  assert.deepEqual(unusedRedis(flowWith("durability: redis\nredis: redis://127.0.0.1:6379\n")), []);
  assert.deepEqual(unusedRedis(flowWith("")), []);
});
