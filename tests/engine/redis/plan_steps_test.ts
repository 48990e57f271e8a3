import assert from "node:assert/strict";
import type { BuiltStage } from "../../../engine/build_flow.ts";
import { planSteps } from "../../../engine/redis/redis_runtime.ts";

/** A stage as planSteps sees it: its id, window, concurrency and whether it commits in order (on workers). */
function stage(
  id: string,
  opts: { window?: number; concurrency?: number; ordered?: boolean } = {},
): BuiltStage {
  return {
    id,
    kind: id,
    ctx: { flow: "f", stage: id },
    window: opts.window ? { size: opts.window } : undefined,
    concurrency: opts.concurrency ?? 1,
    ordered: opts.ordered,
  } as unknown as BuiltStage;
}

const plan = (stages: BuiltStage[], fuse: boolean | "all") =>
  planSteps(stages, fuse).map((s) => ({
    stages: s.stages.map((w) => w.ctx.stage).join("+"),
    window: s.window?.size,
    next: s.next,
    nextWindow: s.nextWindow?.size,
    concurrency: s.concurrency,
  }));

const demo = () => [
  stage("validate"),
  stage("dedupe"),
  stage("enrich"),
  stage("embed", { window: 256 }),
  stage("publish", { window: 500 }),
];

Deno.test("unfused, every stage is a step of its own, fed entries sized for its window", () => {
  assert.deepEqual(plan(demo(), false).map((s) => [s.stages, s.window, s.next, s.nextWindow]), [
    ["validate", undefined, "dedupe", undefined],
    ["dedupe", undefined, "enrich", undefined],
    ["enrich", undefined, "embed", 256],
    ["embed", 256, "publish", 500],
    ["publish", 500, undefined, undefined],
  ]);
});

Deno.test("fused, a windowed stage starts a step with its window and the stages after it join", () => {
  assert.deepEqual(plan(demo(), true).map((s) => [s.stages, s.window, s.next, s.nextWindow]), [
    ["validate+dedupe+enrich", undefined, "embed", 256],
    ["embed+publish", 256, undefined, undefined],
  ]);
  // Windowed, then not, then windowed again: one step, under the first window.
  const mixed = [stage("embed", { window: 64 }), stage("tag"), stage("publish", { window: 40 })];
  assert.deepEqual(plan(mixed, true).map((s) => [s.stages, s.window]), [
    ["embed+tag+publish", 64],
  ]);
});

Deno.test("fuse: all, the pipeline is one step, read in batches of its first window's size and maxWait, not its weight", () => {
  assert.deepEqual(plan(demo(), "all").map((s) => [s.stages, s.window, s.next, s.nextWindow]), [
    ["validate+dedupe+enrich+embed+publish", 256, undefined, undefined],
  ]);
  const weighed = [
    stage("validate"),
    { ...stage("embed"), window: { size: 64, maxWeight: 1000, weigh: () => 1, maxWait: 50 } },
  ] as BuiltStage[];
  assert.deepEqual(planSteps(weighed, "all")[0].window, { size: 64, maxWait: 50 });
  // A first stage with a window of its own reads through it whole, as with fuse: true.
  const first = [weighed[1], stage("publish", { window: 40 })];
  assert.equal(planSteps(first, "all")[0].window, weighed[1].window);
  // No window at all: a batch per entry read.
  assert.equal(planSteps([stage("validate"), stage("enrich")], "all")[0].window, undefined);
});

Deno.test("fused, a step's concurrency is its most concurrent stage's (in the step each stage keeps its own: stage_loop_pipelined_test.ts)", () => {
  const stages = [stage("validate"), stage("dedupe", { concurrency: 2 }), stage("enrich")];
  assert.deepEqual(plan(stages, true).map((s) => [s.stages, s.concurrency]), [
    ["validate+dedupe+enrich", 2],
  ]);
});

Deno.test("fused, a stage on workers joins its step like any other: the stage after it still takes batches in read order", () => {
  const stages = [
    stage("validate"),
    stage("enrich", { ordered: true }),
    stage("dedupe"),
    stage("embed", { window: 256, ordered: true }),
    stage("publish", { window: 500 }),
  ];
  assert.deepEqual(plan(stages, true).map((s) => s.stages), [
    "validate+enrich+dedupe",
    "embed+publish",
  ]);
});
