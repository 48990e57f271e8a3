import assert from "node:assert/strict";
import { deadLetterFields } from "../../../engine/redis/redis_dead_letters.ts";
import { item } from "./_fixtures.ts";

Deno.test("deadLetterFields lists stage, reason, attempts, item and time in that order", () => {
  const fields = deadLetterFields(
    { stage: "embed", reason: "HTTP 400: input too long", attempts: 3, item: item(7, 3) },
    new Date("2026-01-02T03:04:05.678Z"),
  );
  assert.deepEqual(fields, [
    "stage",
    "embed",
    "reason",
    "HTTP 400: input too long",
    "attempts",
    "3",
    "item",
    JSON.stringify(item(7, 3)),
    "time",
    "2026-01-02T03:04:05.678Z",
  ]);
});
