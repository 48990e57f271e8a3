import assert from "node:assert/strict";
import { join } from "node:path";
import { JsonlDeadLetters } from "../../adapters/jsonl_dead_letters.ts";
import { envelope } from "../../engine/item.ts";

Deno.test("dead letters are appended as JSON lines with time, stage, reason, attempts and item", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "out", "trends", "dead_letters.jsonl");
  const a = envelope({ title: "casino bonus", url: "https://spam.example" }, "hn", 1);
  const b = envelope({ title: "no url" }, "blog", 2);

  const letters = new JsonlDeadLetters(path);
  await letters.write([{ stage: "validate", reason: "spam: casino", attempts: 1, item: a }]);
  await letters.write([]);
  await letters.close();
  const again = new JsonlDeadLetters(path);
  await again.write([
    { stage: "embed", reason: "timeout", attempts: 5, item: b },
    { stage: "embed", reason: "timeout", attempts: 5, item: b },
  ]);
  await again.close();

  const text = await Deno.readTextFile(path);
  const entries = text.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(
    entries.map(({ stage, reason, attempts, item }) => ({ stage, reason, attempts, item })),
    [
      { stage: "validate", reason: "spam: casino", attempts: 1, item: a },
      { stage: "embed", reason: "timeout", attempts: 5, item: b },
      { stage: "embed", reason: "timeout", attempts: 5, item: b },
    ],
    "appends, keeping repeats: two failures are two events",
  );
  for (const e of entries) {
    assert.ok(Math.abs(Date.parse(e.time) - Date.now()) < 60_000, `time is an ISO date: ${e.time}`);
  }
});
