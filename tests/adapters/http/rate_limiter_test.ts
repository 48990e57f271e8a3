import assert from "node:assert/strict";
import { type Clock, RateLimiter } from "../../../adapters/http/rate_limiter.ts";

/** A clock whose sleeps return at once, time moving to where the sleeper wanted to wake. */
function fakeClock() {
  let t = 0;
  const clock: Clock & { advance(ms: number): void } = {
    now: () => t,
    sleep(ms) {
      t = Math.max(t, t + ms);
      return Promise.resolve();
    },
    advance(ms) {
      t += ms;
    },
  };
  return clock;
}

Deno.test("rpm 60 spaces requests one second apart, also when they all ask at once", async () => {
  const limiter = new RateLimiter({ rpm: 60 }, fakeClock());
  const starts = await Promise.all(Array.from({ length: 5 }, () => limiter.acquire(100)));
  assert.deepEqual(starts, [0, 1000, 2000, 3000, 4000]);
});

Deno.test("tpm pushes the next request back by the tokens the last one took", async () => {
  const limiter = new RateLimiter({ tpm: 600 }, fakeClock()); // 10 tokens a second
  assert.equal(await limiter.acquire(20), 0);
  assert.equal(await limiter.acquire(5), 2000, "20 tokens cost 2 s");
  assert.equal(await limiter.acquire(0), 2500);
});

Deno.test("a request bigger than a minute's tokens still goes, and the next one waits for it", async () => {
  const limiter = new RateLimiter({ tpm: 60 }, fakeClock());
  assert.equal(await limiter.acquire(120), 0);
  assert.equal(await limiter.acquire(1), 120_000);
});

Deno.test("the stricter of the two limits decides", async () => {
  const limiter = new RateLimiter({ rpm: 600, tpm: 6000 }, fakeClock()); // 10 req/s, 100 tok/s
  const starts = [];
  for (let i = 0; i < 4; i++) starts.push(await limiter.acquire(50));
  assert.deepEqual(starts, [0, 500, 1000, 1500], "tokens bind: 50 tokens per 0.5 s");
  const light = new RateLimiter({ rpm: 600, tpm: 6000 }, fakeClock());
  const quick = [];
  for (let i = 0; i < 4; i++) quick.push(await light.acquire(1));
  assert.deepEqual(quick, [0, 100, 200, 300], "requests bind");
});

Deno.test("idle time earns no burst: after a pause requests are still spaced", async () => {
  const clock = fakeClock();
  const limiter = new RateLimiter({ rpm: 60 }, clock);
  await limiter.acquire(0);
  clock.advance(10_000);
  assert.deepEqual([await limiter.acquire(0), await limiter.acquire(0)], [10_000, 11_000]);
});

Deno.test("pause holds every request until the given time", async () => {
  const limiter = new RateLimiter({ rpm: 6000 }, fakeClock());
  assert.equal(await limiter.acquire(0), 0);
  limiter.pause(3000);
  assert.equal(await limiter.acquire(0), 3000);
  assert.equal(await limiter.acquire(0), 3010);
});

Deno.test("no limits means no waiting, and a bad limit is refused", async () => {
  const limiter = new RateLimiter({}, fakeClock());
  assert.deepEqual(await Promise.all([limiter.acquire(1e9), limiter.acquire(1e9)]), [0, 0]);
  assert.throws(() => new RateLimiter({ rpm: 0 }), /rpm must be above 0/);
  assert.throws(() => new RateLimiter({ tpm: -5 }), /tpm must be above 0/);
});

Deno.test("an aborted wait rejects with the signal's reason", async () => {
  const limiter = new RateLimiter({ rpm: 1 }); // the real clock: the second waits a minute
  await limiter.acquire(0);
  const ctl = new AbortController();
  const waiting = limiter.acquire(0, ctl.signal);
  setTimeout(() => ctl.abort(new Error("stop")), 10);
  await assert.rejects(waiting, /stop/);
});
