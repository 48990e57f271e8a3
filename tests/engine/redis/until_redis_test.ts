/**
 * untilRedis waits out Redis being away, and nothing else: an error of this
 * process's own code, or a script's fault, fails the call at once instead
 * of pausing the flow for ever behind a log line that blames Redis.
 */
import assert from "node:assert/strict";
import { memoryLogger } from "../../../engine/log.ts";
import { isOwnFault, RedisLostFlowError, untilRedis } from "../../../engine/redis/until_redis.ts";

const options = () => ({
  who: "f/s",
  what: "read",
  log: memoryLogger(),
  signal: new AbortController().signal,
});

Deno.test("a connection error is tried again until Redis answers", async () => {
  let calls = 0;
  const result = await untilRedis(() => {
    calls++;
    return calls < 3 ? Promise.reject(new Error("Connection is closed.")) : Promise.resolve("ok");
  }, options());
  assert.equal(result, "ok");
  assert.equal(calls, 3);
});

for (
  const [name, error] of [
    ["a TypeError", new TypeError("Do not know how to serialize a BigInt")],
    ["a RangeError", new RangeError("Maximum call stack size exceeded")],
    ["a SyntaxError", new SyntaxError("Unexpected token } in JSON")],
    [
      "a script's fault",
      new Error("ERR user_script:3: attempt to index nil script: x, on @user_script:3."),
    ],
  ] as const
) {
  Deno.test(`${name} is thrown at once, whatever isRetryable says`, async () => {
    let calls = 0;
    // A second try ends the wait, so a regression fails here instead of hanging.
    const tried = new AbortController();
    const opts = { ...options(), signal: tried.signal, isRetryable: () => true };
    await assert.rejects(
      untilRedis(() => {
        if (++calls > 1) tried.abort(new Error("tried again"));
        return Promise.reject(error);
      }, opts),
      (e) => e === error,
    );
    assert.equal(calls, 1);
    assert.equal(isOwnFault(error), true);
  });
}

Deno.test("errors Redis may mend are not own faults", () => {
  for (
    const message of [
      "Connection is closed.",
      "connect ECONNREFUSED 127.0.0.1:6390",
      "LOADING Redis is loading the dataset in memory",
      "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.",
      "OOM command not allowed when used memory > 'maxmemory'. script: x, on @user_script:1.",
    ]
  ) assert.equal(isOwnFault(new Error(message)), false, message);
});

Deno.test("a missing stream or consumer group ends the call at once, saying Redis lost the flow", async () => {
  let calls = 0;
  const nogroup = new Error(
    "NOGROUP No such key 'millrace:{f}:in:s' or consumer group 's' in XREADGROUP with GROUP option",
  );
  await assert.rejects(
    untilRedis(() => {
      calls++;
      return calls < 2 ? Promise.reject(nogroup) : Promise.resolve("ok");
    }, options()),
    (error: unknown) => {
      assert.ok(error instanceof RedisLostFlowError);
      assert.match(error.message, /^f\/s: Redis no longer holds this flow's streams/);
      assert.equal(error.cause, nogroup);
      return true;
    },
  );
  assert.equal(calls, 1);
});

Deno.test("a pause one call said is ended by the next call of the step that succeeds, and said once for calls failing together", async () => {
  const log = memoryLogger();
  const paused = { said: false };
  const opts = { ...options(), log, paused };
  const closed = () => Promise.reject(new Error("Connection is closed."));
  // A commit that failed while Redis was away, then gave up for its caller to check again
  // (a dropped connection meanwhile): it said "pausing", and nothing said "resuming".
  class CheckAgain extends Error {}
  let tries = 0;
  await assert.rejects(
    untilRedis(
      () => ++tries === 1 ? closed() : Promise.reject(new CheckAgain()),
      { ...opts, isRetryable: (e) => !(e instanceof CheckAgain) },
    ),
    CheckAgain,
  );
  // Two calls of the same step failing during the same outage.
  const failingTwice = () => {
    let n = 0;
    return () => ++n <= 2 ? closed() : Promise.resolve(n);
  };
  await Promise.all([untilRedis(failingTwice(), opts), untilRedis(failingTwice(), opts)]);
  const said = log.lines.filter((l) => !l.startsWith("debug")).map((l) => l.replace(/ \{.*$/, ""));
  assert.deepEqual(said, [
    "warn f/s: read failed, pausing until Redis answers",
    "info f/s: Redis is back, resuming",
  ]);
});

Deno.test("Redis refusing a call for now (OOM) is said as a refusal, not as Redis away", async () => {
  const log = memoryLogger();
  let tries = 0;
  await untilRedis(
    () =>
      ++tries === 1
        ? Promise.reject(new Error("OOM command not allowed when used memory > 'maxmemory'."))
        : Promise.resolve("ok"),
    { ...options(), what: "commit", log },
  );
  assert.match(
    log.lines[0],
    /^warn f\/s: commit refused by Redis for now, trying again until it takes it \{"error":"OOM command not allowed/,
  );
  assert.equal(log.lines.length, 2);
});
