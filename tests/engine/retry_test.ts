import assert from "node:assert/strict";
import { PermanentError } from "../../engine/errors.ts";
import { retry, retryAfterMs, type RetryEvent } from "../../engine/retry.ts";
import { sleep } from "../../engine/backoff.ts";

/** A sleep that waits for nothing and writes down what it was asked to wait. */
function recordingSleep() {
  const waits: number[] = [];
  return { waits, sleep: (ms: number) => (waits.push(ms), Promise.resolve()) };
}

/** fn that fails `failures` times with what `fail(n)` gives, then returns "done". */
function failing(failures: number, fail: (n: number) => unknown = (n) => new Error(`fail ${n}`)) {
  const attempts: number[] = [];
  const fn = (attempt: number) => {
    attempts.push(attempt);
    return attempts.length <= failures
      ? Promise.reject(fail(attempts.length))
      : Promise.resolve("done");
  };
  return { attempts, fn };
}

Deno.test("retry calls again after each failure, waiting a backoff that doubles", async () => {
  const { waits, sleep } = recordingSleep();
  const { attempts, fn } = failing(3);
  const events: RetryEvent[] = [];
  const result = await retry(fn, {
    baseMs: 100,
    maxMs: 10_000,
    random: () => 0.5,
    sleep,
    onRetry: (e) => events.push(e),
  });
  assert.equal(result, "done");
  assert.deepEqual(attempts, [1, 2, 3, 4]);
  assert.deepEqual(waits, [50, 100, 200], "full jitter: half of 100, 200, 400 with random 0.5");
  assert.deepEqual(events.map((e) => [e.attempt, e.delayMs, e.asked]), [
    [1, 50, false],
    [2, 100, false],
    [3, 200, false],
  ]);
  assert.deepEqual(events.map((e) => (e.error as Error).message), ["fail 1", "fail 2", "fail 3"]);
});

Deno.test("the backoff never passes maxMs", async () => {
  const { waits, sleep } = recordingSleep();
  await retry(failing(5).fn, {
    maxAttempts: 6,
    baseMs: 100,
    maxMs: 250,
    random: () => 0.999,
    sleep,
  });
  assert.deepEqual(waits, [99, 199, 249, 249, 249]);
});

Deno.test("a wait the failure asks for (Retry-After) replaces the backoff", async () => {
  const { waits, sleep } = recordingSleep();
  const asked = (n: number) =>
    Object.assign(new Error("429"), { waitMs: n === 1 ? 3000 : undefined });
  const events: RetryEvent[] = [];
  await retry(failing(2, asked).fn, {
    baseMs: 100,
    random: () => 0.5,
    sleep,
    retryAfterMs: (error) => (error as { waitMs?: number }).waitMs,
    onRetry: (e) => events.push(e),
  });
  assert.deepEqual(waits, [3000, 100], "the server's 3 s, then the backoff again");
  assert.deepEqual(events.map((e) => e.asked), [true, false]);
});

Deno.test("after maxAttempts the last error is thrown", async () => {
  const { waits, sleep } = recordingSleep();
  const { attempts, fn } = failing(10);
  await assert.rejects(retry(fn, { maxAttempts: 3, baseMs: 1, sleep }), /fail 3/);
  assert.deepEqual(attempts, [1, 2, 3]);
  assert.equal(waits.length, 2);
});

Deno.test("a PermanentError is thrown at once, without a wait", async () => {
  const { waits, sleep } = recordingSleep();
  const { attempts, fn } = failing(3, () => new PermanentError("bad input"));
  await assert.rejects(retry(fn, { sleep }), PermanentError);
  assert.deepEqual(attempts, [1]);
  assert.deepEqual(waits, []);
});

Deno.test("the isRetryable hook decides which errors are tried again", async () => {
  const { sleep } = recordingSleep();
  const { attempts, fn } = failing(3, (n) => new Error(n === 2 ? "LOSTLEASE" : "busy"));
  await assert.rejects(
    retry(fn, { sleep, isRetryable: (e) => !(e as Error).message.includes("LOSTLEASE") }),
    /LOSTLEASE/,
  );
  assert.deepEqual(attempts, [1, 2]);
});

Deno.test("an abort during the wait ends it and throws the signal's reason", async () => {
  const controller = new AbortController();
  const { attempts, fn } = failing(3);
  const reason = new Error("shutting down");
  const run = retry(fn, {
    signal: controller.signal,
    baseMs: 3_600_000,
    maxMs: 3_600_000,
    random: () => 0.99,
    onRetry: () => setTimeout(() => controller.abort(reason), 0),
  });
  let guard: ReturnType<typeof setTimeout> | undefined;
  const stuck = new Promise((resolve) =>
    guard = setTimeout(() => resolve("still waiting"), 10_000)
  );
  const outcome = await Promise.race([run.then(() => "resolved", (e) => e), stuck]);
  clearTimeout(guard);
  assert.equal(outcome, reason, "the hour-long wait was cut short by the abort");
  assert.deepEqual(attempts, [1]);
});

Deno.test("an aborted signal stops retry before the first call", async () => {
  const { attempts, fn } = failing(0);
  const signal = AbortSignal.abort(new Error("gone"));
  await assert.rejects(retry(fn, { signal }), /gone/);
  assert.deepEqual(attempts, []);
});

Deno.test("maxAttempts below 1 is refused", async () => {
  await assert.rejects(retry(failing(0).fn, { maxAttempts: 0 }), RangeError);
});

Deno.test("Retry-After is read as seconds, an HTTP date or retry-after-ms, capped", () => {
  const now = Date.parse("2025-01-01T00:00:00Z");
  const h = (init: Record<string, string>) => new Headers(init);
  const cap = 60_000;
  assert.equal(retryAfterMs(h({ "retry-after": "2" }), cap, now), 2000);
  assert.equal(retryAfterMs(h({ "retry-after": "0.5" }), cap, now), 500);
  assert.equal(retryAfterMs(h({ "retry-after": "Wed, 01 Jan 2025 00:00:03 GMT" }), cap, now), 3000);
  assert.equal(retryAfterMs(h({ "retry-after": "Tue, 31 Dec 2024 23:00:00 GMT" }), cap, now), 0);
  assert.equal(retryAfterMs(h({ "retry-after-ms": "250", "retry-after": "9" }), cap, now), 250);
  assert.equal(retryAfterMs(h({ "retry-after": "3600" }), cap, now), 60_000);
  assert.equal(retryAfterMs(h({ "retry-after": "3600" }), Infinity, now), 3_600_000);
  assert.equal(retryAfterMs(h({ "retry-after": "-5" }), cap, now), undefined);
  assert.equal(retryAfterMs(h({ "retry-after": "soon" }), cap, now), undefined);
  assert.equal(retryAfterMs(h({ "retry-after-ms": "" }), cap, now), undefined);
  assert.equal(retryAfterMs(h({}), cap, now), undefined);
  assert.equal(retryAfterMs(undefined, cap, now), undefined);
});

Deno.test("retryAfterMs reads a Response's headers", () => {
  const res = new Response(null, { status: 503, headers: { "retry-after": "7" } });
  assert.equal(retryAfterMs(res, 60_000), 7000);
});

Deno.test("sleep past setTimeout's limit (about 24.8 days) waits, made of timers setTimeout keeps", async () => {
  // One timer of 30 days fires at once: `every: 30d` polled in a tight loop.
  const real = globalThis.setTimeout;
  const asked: number[] = [];
  const stop = new AbortController();
  globalThis.setTimeout = ((fn: () => void, ms: number) => {
    asked.push(ms);
    return real(fn, 60_000); // never within this test: the abort ends the wait
  }) as typeof setTimeout;
  let slept: Promise<void>;
  try {
    slept = sleep(30 * 24 * 3600 * 1000, stop.signal);
  } finally {
    globalThis.setTimeout = real;
  }
  assert.deepEqual(asked, [2 ** 31 - 1], "the first of two timers, each within the limit");
  stop.abort();
  await slept;
});
