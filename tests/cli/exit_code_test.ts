import assert from "node:assert/strict";
import { exitCodeFor, isUnavailable, UNAVAILABLE } from "../../cli/exit_code.ts";
import { USAGE } from "../../cli/help.ts";
import { FlowStartError } from "../../engine/build_flow.ts";
import { RedisConnectionLostError, RedisUnreachableError } from "../../engine/redis/connection.ts";

Deno.test("a service that did not answer at start is told apart from one that answered no", () => {
  // What a sink's open threw when Postgres refused the connection, as the run wraps it.
  const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), {
    code: "ECONNREFUSED",
  });
  const start = new FlowStartError("f", "publish", new Error("cannot connect", { cause: refused }));
  assert.equal(isUnavailable(start), true);
  assert.equal(
    isUnavailable(new RedisUnreachableError("redis://h:1", "no answer within 5000ms")),
    true,
  );
  assert.equal(isUnavailable(new DOMException("timed out", "TimeoutError")), true);
  assert.equal(isUnavailable(new Deno.errors.ConnectionRefused("refused")), true);
  // Answers: a password refused, a bad URL, a missing database. Fixing the flow mends them.
  assert.equal(
    isUnavailable(new RedisUnreachableError("redis://h:1", "WRONGPASS", "Redis refused us at")),
    false,
  );
  assert.equal(isUnavailable(new RedisUnreachableError("x", "not a URL", "bad Redis URL")), false);
  const missing = new FlowStartError("f", "publish", new Error('database "x" does not exist'));
  assert.equal(isUnavailable(missing), false);
  assert.equal(UNAVAILABLE, 75);
});

Deno.test("help lists every exit code the command line gives, 75 among them", () => {
  // It listed 0, 1, 2, 130 and 141: a supervisor's author reading it missed "try again later".
  for (const code of [0, 1, 2, UNAVAILABLE, 130, 141]) {
    assert.match(USAGE, new RegExp(`(?:exit codes:|[,;])\\s${code}\\s`), `exit code ${code}`);
  }
});

Deno.test("a connection lost mid-command exits 75 as at start, not 1 with a stack", () => {
  // `status` or `dlq list` with Redis restarting under them printed
  // `error: RedisConnectionLostError: … at rejectInFlight (…)` and exited 1.
  const lost = new RedisConnectionLostError("XRANGE");
  assert.equal(exitCodeFor(lost, ["status", "f.yaml"]), UNAVAILABLE);
  const wrapped = new Error("dlq replay stopped after 7 dead letters", { cause: lost });
  assert.equal(exitCodeFor(wrapped, ["dlq", "replay", "f.yaml"]), UNAVAILABLE);
  assert.equal(exitCodeFor(new Error("a bug"), ["status", "f.yaml"]), 1);
  // A run's failure while running is 1, with its stack, whatever caused it.
  assert.equal(exitCodeFor(wrapped, ["f.yaml"]), 1);
  assert.equal(exitCodeFor(wrapped, ["run", "f.yaml"]), 1);
});
