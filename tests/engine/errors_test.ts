import assert from "node:assert/strict";
import {
  errorMessage,
  isRetryable,
  isServiceFailure,
  PermanentError,
} from "../../engine/errors.ts";
import type { Actor } from "../../engine/actor.ts";
import type { Envelope } from "../../engine/item.ts";
import { memoryLogger } from "../../engine/log.ts";
import { processBatch } from "../../engine/stage_runner.ts";
import { StageStats } from "../../engine/stats.ts";

Deno.test("errorMessage gives an Error's message, or anything else as text", () => {
  assert.equal(errorMessage(new TypeError("no such field")), "no such field");
  assert.equal(errorMessage("plain string"), "plain string");
  assert.equal(errorMessage(undefined), "undefined");
});

Deno.test("only an error that says retryable: false is not retryable", () => {
  assert.equal(isRetryable(new Error("ECONNRESET")), true);
  assert.equal(isRetryable("thrown string"), true);
  assert.equal(isRetryable(undefined), true);
  assert.equal(isRetryable(null), true);
  assert.equal(isRetryable(Object.assign(new Error("503"), { retryable: true })), true);
  assert.equal(isRetryable(Object.assign(new Error("400"), { retryable: false })), false);
});

Deno.test("a PermanentError is an Error that keeps its cause and is not retryable", () => {
  const cause = new Error("HTTP 400");
  const error = new PermanentError("qdrant sink: item 7 has no vector", { cause });
  assert.ok(error instanceof Error);
  assert.equal(error.name, "PermanentError");
  assert.equal(error.cause, cause);
  assert.equal(isRetryable(error), false);
});

Deno.test("the stage runner does not retry a batch that throws a PermanentError", async () => {
  const sizes: number[] = [];
  const actor: Actor = {
    handle(batch, out) {
      sizes.push(batch.length);
      if (batch.some((it) => it.payload.n === 1)) throw new PermanentError("item 1 is bad");
      for (const it of batch) out.emit(it);
    },
  };
  const stats = new StageStats("s", "test");
  const ctx = { flow: "f", stage: "s", signal: new AbortController().signal, log: memoryLogger() };
  const batch = [0, 1, 2, 3].map((n): Envelope => ({
    id: `id${n}`,
    event: `e${n}`,
    source: "t",
    seenAt: 0,
    attempts: 0,
    payload: { n },
  }));
  const result = await processBatch(
    { actor: actor as Actor<unknown, unknown>, ctx, stats, retries: 3, backoffBase: 1 },
    batch,
  );
  assert.equal(stats.retries, 0);
  assert.deepEqual(sizes, [4, 2, 1, 1, 2], "split at once down to item 1");
  assert.deepEqual(result.out.map((it) => it.id), ["id0", "id2", "id3"]);
  assert.deepEqual(result.letters.map((l) => [l.item.id, l.reason]), [[
    "id1",
    "failed: item 1 is bad",
  ]]);
});

Deno.test("errorMessage never throws, and shows a thrown object as JSON without its secrets", () => {
  assert.equal(
    errorMessage({
      status: 401,
      config: { headers: { Authorization: "Bearer sk-1", accept: "json" } },
    }),
    '{"status":401,"config":{"headers":{"Authorization":"***","accept":"json"}}}',
  );
  assert.equal(
    errorMessage({ password: "hunter2", api_key: "k", keyword: "news" }),
    '{"password":"***","api_key":"***","keyword":"news"}',
  );
  const getter = new Error("x");
  Object.defineProperty(getter, "message", {
    get: () => {
      throw new Error("no");
    },
  });
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  for (
    const odd of [getter, proxy, Object.create(null), {
      toJSON() {
        throw new Error("no");
      },
    }]
  ) {
    assert.equal(typeof errorMessage(odd), "string");
  }
});

Deno.test("isServiceFailure: a timeout, a 429 or 5xx, or the hint, also wrapped; never a stage's own error", () => {
  const timedOut = new DOMException("signal timed out", "TimeoutError");
  assert.equal(isServiceFailure(timedOut), true);
  assert.equal(isServiceFailure(Object.assign(new Error("busy"), { status: 429 })), true);
  assert.equal(isServiceFailure(Object.assign(new Error("bad request"), { status: 400 })), false);
  assert.equal(isServiceFailure(Object.assign(new Error("no reply"), { service: true })), true);
  // A sink's error wrapping the client's, and several sinks failing at once.
  assert.equal(isServiceFailure(new Error("publish failed", { cause: timedOut })), true);
  assert.equal(isServiceFailure(new AggregateError([new Error("x"), timedOut], "2 sinks")), true);
  assert.equal(isServiceFailure(new TypeError("Cannot read properties of undefined")), false);
  assert.equal(isServiceFailure("a thrown string"), false);
});

Deno.test("errorMessage says why a fetch failed, which Deno keeps in its cause, with the URL's password masked", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close(); // nothing listens there now
  const error = await fetch(`http://reader:s3cret@127.0.0.1:${port}/x`).then(
    () => undefined,
    (e) => e,
  );
  assert.equal((error as Error).message, "fetch failed");
  const said = errorMessage(error);
  assert.match(said, /^fetch failed: .*Connection refused/);
  assert.ok(!said.includes("s3cret"), said);
  // Other errors are said as their message alone, their causes being theirs to quote.
  assert.equal(
    errorMessage(new Error("jsonl sink: cannot append", { cause: new Error("EACCES") })),
    "jsonl sink: cannot append",
  );
});
