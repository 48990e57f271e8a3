import assert from "node:assert/strict";
import { z } from "zod";
import type { Outcome } from "../../engine/actor.ts";
import { type Envelope, envelope } from "../../engine/item.ts";
import { Registry, type StageSpec } from "../../engine/registry.ts";
import { type HostReply, type HostRequest, serveStage } from "../../engine/stage_host.ts";
import { rebuild, replay } from "../../engine/worker_pool.ts";
import { isAway, isOutage, isServiceFailure } from "../../engine/errors.ts";

type Item = Envelope<unknown>;

const FRESH = envelope({ title: "a new one", url: "https://example.com/new" }, "made");

/**
 * Says something different of each item: passes item 0 on as it is, adds a
 * payload field to item 1, sets an envelope field on item 2, removes a
 * payload field from item 3, emits a new item in place of item 4 and
 * dead-letters item 5 with a field added.
 */
const shapes: StageSpec<Record<string, never>> = {
  kind: "shapes",
  summary: "says each item a different way",
  schema: z.object({}),
  workers: () => true,
  create: () => ({
    handle(batch: readonly Item[], out: Outcome<unknown>) {
      const [same, added, vector, removed, _replaced, bad] = batch;
      out.emit(same);
      out.emit({ ...added, payload: { ...(added.payload as object), lang: "en" } });
      out.emit({ ...vector, vector: [0.5, -0.5] });
      const { text: _text, ...rest } = removed.payload as Record<string, unknown>;
      out.emit({ ...removed, payload: rest });
      out.emit(structuredClone(FRESH));
      out.reject({ ...bad, payload: { ...(bad.payload as object), seen: 2 } }, "too-odd", "why");
    },
  }),
};

/** Runs `shapes` as a stage worker would, here on a fake port; returns what travelled back. */
async function served(items: Item[]): Promise<Extract<HostReply, { type: "done" }>> {
  const replies: HostReply[] = [];
  const port = {
    onmessage: null as ((e: MessageEvent<HostRequest>) => void) | null,
    postMessage: (m: HostReply) => void replies.push(structuredClone(m)),
  };
  serveStage(new Registry().stage(shapes), port);
  const send = (data: HostRequest) => port.onmessage!({ data } as MessageEvent<HostRequest>);
  send({
    type: "open",
    kind: "shapes",
    config: {},
    flow: "f",
    stage: "s",
    baseDir: ".",
    outDir: ".",
  });
  // The worker gets its own copy of the batch, as postMessage gives it.
  send({ type: "batch", id: 1, items: structuredClone(items) });
  for (let i = 0; i < 50 && !replies.some((r) => r.type === "done"); i++) {
    await new Promise((r) => setTimeout(r, 1));
  }
  return replies.find((r) => r.type === "done") as Extract<HostReply, { type: "done" }>;
}

function collect(): Outcome<unknown> & { said: unknown[][] } {
  const said: unknown[][] = [];
  return {
    said,
    emit: (item) => void said.push(["emit", item]),
    drop: (item, reason, detail) => void said.push(["drop", item, reason, detail]),
    reject: (item, reason, detail) => void said.push(["reject", item, reason, detail]),
  };
}

Deno.test("a worker sends back what changed of an item, and the main thread rebuilds what the actor said", async () => {
  const text = "a long text that makes most of an item's size ".repeat(40);
  const items = Array.from(
    { length: 6 },
    (_, n) => envelope({ n, title: `item ${n}`, url: `https://example.com/${n}`, text }, "src"),
  );

  const inThread = collect();
  const actor = await shapes.create({}, undefined as never);
  await actor.handle(items, inThread, undefined as never);
  const done = await served(items);
  const rebuilt = collect();
  replay(done.said, items, rebuilt);

  assert.deepEqual(rebuilt.said, inThread.said);
  // Unchanged items travel as their index: the main thread's own object goes on.
  assert.equal(rebuilt.said[0][1], items[0]);
  // Items derived from the batch's travel as their changes, so the text never comes back;
  // the one that lost a field travels whole (without its text), as does the new one.
  assert.ok(!JSON.stringify(done.said).includes(text));
  assert.equal((done.said[3][1] as Item).id, items[3].id);
  assert.deepEqual(done.said[1], ["emit", [1, {}, { lang: "en" }]]);
  // A vector travels as a typed array (its buffer moved, not cloned) and is an array again on arrival.
  assert.deepEqual(done.said[2], ["emit", [2, { vector: new Float64Array([0.5, -0.5]) }]]);
  assert.ok(Array.isArray((rebuilt.said[2][1] as Item).vector));
  assert.deepEqual(done.said[5], ["reject", [5, {}, { seen: 2 }], "too-odd", "why"]);
});

Deno.test("a worker's error keeps its hints: an away service is waited out, a dead one given up on", async () => {
  const calls: Registry = new Registry().stage({
    kind: "calls",
    summary: "calls a service that is away",
    schema: z.object({}),
    workers: () => true,
    create: () => ({
      handle() {
        throw Object.assign(new Error("503 from the service"), { status: 503, away: true });
      },
    }),
  });
  const replies: HostReply[] = [];
  const port = {
    onmessage: null as ((e: MessageEvent<HostRequest>) => void) | null,
    postMessage: (m: HostReply) => void replies.push(structuredClone(m)),
  };
  serveStage(calls, port);
  const send = (data: HostRequest) => port.onmessage!({ data } as MessageEvent<HostRequest>);
  send({
    type: "open",
    kind: "calls",
    config: {},
    flow: "f",
    stage: "s",
    baseDir: ".",
    outDir: ".",
  });
  send({ type: "batch", id: 1, items: [structuredClone(FRESH)] });
  for (let i = 0; i < 50 && !replies.some((r) => r.type === "failed"); i++) {
    await new Promise((r) => setTimeout(r, 1));
  }
  const failed = replies.find((r) => r.type === "failed") as Extract<HostReply, { type: "failed" }>;
  assert.ok(failed, JSON.stringify(replies));
  // Rebuilt on the main thread, the error says what the runner reads: before, only its message
  // and retryable crossed, and a stage on workers split and dead-lettered through an outage.
  const error = rebuild(failed.error);
  assert.equal(isAway(error), true);
  assert.equal(isServiceFailure(error), true);
  assert.equal(isOutage(error), false);
  assert.match(error.message, /503 from the service/);
});
