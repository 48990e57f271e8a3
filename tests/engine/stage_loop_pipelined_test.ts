/**
 * A pipelined stage loop, which a Redis edge's steps run: each stage of a
 * step takes its batches in read order, as many at once as its own
 * concurrency (one unless set), commits go out in read order, and the next
 * batches run through the stages while the last one's commit (a round trip
 * to Redis) is out.
 */
import assert from "node:assert/strict";
import type { Actor } from "../../engine/actor.ts";
import type { Edge } from "../../engine/edge.ts";
import { FlowEndingError } from "../../engine/errors.ts";
import type { Envelope } from "../../engine/item.ts";
import { memoryLogger } from "../../engine/log.ts";
import { runStageLoop } from "../../engine/stage_loop.ts";
import type { StageWork } from "../../engine/stage_runner.ts";
import { StageStats } from "../../engine/stats.ts";

const item = (n: number): Envelope => ({
  id: "id" + n,
  event: "e" + n,
  source: "t",
  seenAt: 0,
  attempts: 0,
  payload: { n },
});

const nOf = (batch: readonly Envelope<unknown>[]) => (batch[0].payload as { n: number }).n;

/** Two stages (a, b) over six one-item batches; commits wait until the test answers them. */
function pipelined(opts: { failAt?: number } = {}) {
  const log: string[] = [];
  const overlaps: string[] = [];
  const stage = (name: string): StageWork => {
    let busy = false;
    const actor: Actor = {
      async handle(batch, out) {
        if (busy) overlaps.push(`${name} ${nOf(batch)}`);
        busy = true;
        log.push(`${name} ${nOf(batch)}`);
        await new Promise((r) => setTimeout(r, 1));
        busy = false;
        if (name === "b" && nOf(batch) === opts.failAt) throw new FlowEndingError("disk gone");
        for (const it of batch) out.emit(it);
      },
    };
    return {
      actor: actor as Actor<unknown, unknown>,
      ctx: { flow: "f", stage: name, signal: new AbortController().signal, log: memoryLogger() },
      stats: new StageStats(name, "test"),
      retries: 0,
      backoffBase: 1,
    };
  };
  const batches = [0, 1, 2, 3, 4, 5].map((n) => [item(n)]);
  const unanswered: (() => void)[] = [];
  const edge: Edge = {
    read: () => Promise.resolve(batches.length ? [{ items: batches.shift()! }] : undefined),
    commit: (c) => {
      log.push(`commit ${nOf(c.out)}`);
      return new Promise<void>((answer) => unanswered.push(answer));
    },
  };
  const done = runStageLoop({
    stages: [stage("a"), stage("b")],
    edge,
    concurrency: 1,
    pipelined: true,
  });
  const answerAll = () => unanswered.splice(0).forEach((answer) => answer());
  return { done, log, overlaps, answerAll };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(ok(), `never happened: ${what}`);
}

Deno.test("pipelined: the next batches go through the stages while a commit is out, in read order", async () => {
  const { done, log, overlaps, answerAll } = pipelined();
  await until(
    "batch 2 through both stages while batch 0's commit is out",
    () => log.includes("b 2"),
  );
  await new Promise((r) => setTimeout(r, 20));
  // Commits keep read order: batch 1's waits for batch 0's answer. And the
  // loop holds one batch per stage and one committing (3), no more.
  assert.deepEqual(log.filter((l) => l.startsWith("commit")), ["commit 0"]);
  assert.ok(!log.includes("a 3"), log.join(", "));
  let finished = false;
  done.then(() => finished = true);
  while (!finished) {
    answerAll();
    await new Promise((r) => setTimeout(r, 1));
  }
  await done;
  const of = (prefix: string) => log.filter((l) => l.startsWith(prefix + " "));
  assert.deepEqual(of("a"), [0, 1, 2, 3, 4, 5].map((n) => `a ${n}`));
  assert.deepEqual(of("b"), [0, 1, 2, 3, 4, 5].map((n) => `b ${n}`));
  assert.deepEqual(of("commit"), [0, 1, 2, 3, 4, 5].map((n) => `commit ${n}`));
  assert.deepEqual(overlaps, [], "a stage ran two batches at once");
});

Deno.test("pipelined: a batch that ends the flow fails the loop, and the batches behind it neither hang nor commit", async () => {
  const { done, log, answerAll } = pipelined({ failAt: 1 });
  const answering = setInterval(answerAll, 1);
  try {
    await assert.rejects(done, /disk gone/);
  } finally {
    clearInterval(answering);
  }
  assert.deepEqual(log.filter((l) => l.startsWith("commit")), ["commit 0"]);
  assert.ok(!log.includes("b 2"), log.join(", "));
});

/**
 * Stages that count how many batches they hold at once and log what they
 * take, each taking `ms(n)` on batch n; batch `failAt` ends the flow in
 * the stage named `failIn`. Twelve one-item batches.
 */
function counted(failAt?: { stage: string; n: number }) {
  const log: string[] = [];
  const running = new Map<string, number>();
  const most = new Map<string, number>();
  const stage = (name: string, concurrency: number, ms: (n: number) => number): StageWork => ({
    actor: {
      async handle(batch, out) {
        const now = (running.get(name) ?? 0) + 1;
        running.set(name, now);
        most.set(name, Math.max(most.get(name) ?? 0, now));
        log.push(`${name} ${nOf(batch)}`);
        await new Promise((r) => setTimeout(r, ms(nOf(batch))));
        running.set(name, running.get(name)! - 1);
        if (failAt?.stage === name && failAt.n === nOf(batch)) {
          throw new FlowEndingError("disk gone");
        }
        for (const it of batch) out.emit(it);
      },
    } as Actor<unknown, unknown>,
    ctx: { flow: "f", stage: name, signal: new AbortController().signal, log: memoryLogger() },
    stats: new StageStats(name, "test"),
    retries: 0,
    concurrency,
  });
  const batches = Array.from({ length: 12 }, (_, n) => [item(n)]);
  const edge: Edge = {
    read: () => Promise.resolve(batches.length ? [{ items: batches.shift()! }] : undefined),
    commit: (c) => void log.push(`commit ${nOf(c.out)}`),
  };
  const of = (prefix: string) => log.filter((l) => l.startsWith(prefix + " "));
  return { stage, edge, log, most, of };
}

const inOrder = (name: string, n = 12) => Array.from({ length: n }, (_, i) => `${name} ${i}`);

Deno.test("pipelined: each stage of a step keeps its own concurrency: a deduper before a stage on workers takes one batch at a time, and so does the stage after it, in read order", async () => {
  const { stage, edge, most, of } = counted();
  // A durable step of validate, dedupe, enrich on one worker (concurrency 2) and a
  // stage after it: the step takes the most concurrency of its stages (2), which
  // dedupe and the last stage must not get.
  await runStageLoop({
    stages: [
      stage("dedupe", 1, () => 1),
      stage("workers", 2, (n) => n % 2 ? 1 : 15),
      stage("after", 1, () => 1),
    ],
    edge,
    concurrency: 2,
    ordered: true,
    pipelined: true,
  });
  assert.equal(most.get("dedupe"), 1, "dedupe ran two batches at once");
  assert.deepEqual(of("dedupe"), inOrder("dedupe"));
  assert.equal(most.get("workers"), 2, "the stage on workers never had its two batches out");
  assert.deepEqual(of("workers"), inOrder("workers"));
  // A slow even batch is overtaken by the odd one after it in "workers", yet
  // the stage after it takes them, and commits go out, in read order.
  assert.equal(most.get("after"), 1);
  assert.deepEqual(of("after"), inOrder("after"));
  assert.deepEqual(of("commit"), inOrder("commit"));
});

Deno.test("pipelined: when a batch fails in a stage running two at once, the batch beside it that finished first does not commit", async () => {
  const { stage, edge, log, of } = counted({ stage: "workers", n: 2 });
  const done = runStageLoop({
    stages: [stage("dedupe", 1, () => 1), stage("workers", 2, (n) => n === 2 ? 30 : 1)],
    edge,
    concurrency: 2,
    ordered: true,
    pipelined: true,
  });
  await assert.rejects(done, /disk gone/);
  // Batch 3 ran beside the slow batch 2 and finished first; 2 then failed.
  assert.ok(log.includes("workers 3"), log.join(", "));
  assert.deepEqual(of("commit"), inOrder("commit", 2));
});
