import assert from "node:assert/strict";
import { BacklogGauge } from "../../../engine/redis/backlog_gauge.ts";

Deno.test("the gauge asks Redis at most once per interval and adds what was appended since", async () => {
  let asks = 0;
  const gauge = new BacklogGauge(() => Promise.resolve(++asks * 10), 60_000);
  assert.equal(await gauge.entries(), 10);
  gauge.appended(3);
  assert.equal(await gauge.entries(), 13);
  assert.equal(asks, 1);
});

Deno.test("entries appended while Redis is being asked are added to its answer, which may not hold them", async () => {
  // Two sources of one process share the gauge: one asks, the other appends meanwhile.
  let answer!: (n: number) => void;
  const gauge = new BacklogGauge(
    () => new Promise<number>((resolve) => (answer = resolve)),
    60_000,
  );
  const asking = gauge.entries();
  gauge.appended(6);
  answer(10);
  assert.equal(await asking, 16);
  assert.equal(await gauge.entries(), 16);
});
