import assert from "node:assert/strict";
import { join } from "node:path";
import { FileReplyCache } from "../../../adapters/chat/reply_cache.ts";

Deno.test("a file reply cache keeps what it stored across opens, the last value of a key winning", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "m.jsonl");
  try {
    const first = await FileReplyCache.open(path);
    await first.setMany([["a", '{"x":1}'], ["b", '"two"']]);
    await first.setMany([["a", '{"x":3}']]);
    await first.close();
    // A line cut short by a crash is skipped, not fatal.
    await Deno.writeTextFile(path, '{"k":"c","v":"tor', { append: true });
    const again = await FileReplyCache.open(path);
    assert.deepEqual(await again.getMany(["a", "b", "c", "d"]), [
      '{"x":3}',
      '"two"',
      undefined,
      undefined,
    ]);
    assert.equal(again.size, 2);
    // What it stores next is found by the next open: it was appended onto the cut line.
    await again.setMany([["d", '"four"']]);
    await again.close();
    const third = await FileReplyCache.open(path);
    assert.deepEqual(await third.getMany(["d"]), ['"four"']);
    await third.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
