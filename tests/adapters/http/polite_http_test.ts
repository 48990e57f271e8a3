import assert from "node:assert/strict";
import { DEFAULT_HTTP } from "../../../adapters/http/http_config.ts";
import { SPACING_SLACK } from "../../../adapters/http/gcra.ts";
import {
  fetchLimited,
  type FetchLimits,
  type HttpStatusError,
} from "../../../adapters/http/http_fetch.ts";
import {
  HostPausedError,
  PoliteHttp,
  RobotsDisallowedError,
} from "../../../adapters/http/polite_http.ts";
import type { Clock } from "../../../adapters/http/rate_limiter.ts";
import type { HttpOptions } from "../../../engine/http.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { withServer } from "../../_http_server.ts";
import { fakeClock } from "./_fake_clock.ts";

/** Gaps of an exact 1/rps spacing as the limiter spaces them: 10% wider (gcra.ts SPACING_SLACK). */
const slack = (ms: number[]) => ms.map((x) => Math.round(x * (1 + SPACING_SLACK) * 1000) / 1000);

/** One request the server saw: its path, the fake clock's time, its user agent. */
interface Seen {
  path: string;
  at: number;
  ua: string | null;
}

/**
 * A local server that records every request at the fake clock's time and
 * answers with `answer` (robots.txt: 404 unless `answer` says otherwise).
 */
async function withSite(
  clock: Clock,
  answer: (path: string, n: number) => Response | undefined,
  run: (origin: string, seen: Seen[]) => Promise<void>,
): Promise<void> {
  const seen: Seen[] = [];
  await withServer((req) => {
    const path = new URL(req.url).pathname;
    seen.push({ path, at: clock.now(), ua: req.headers.get("user-agent") });
    const n = seen.filter((s) => s.path === path).length;
    return answer(path, n) ??
      (path === "/robots.txt" ? new Response("", { status: 404 }) : new Response("ok"));
  }, (origin) => run(origin, seen));
}

function options(over: Partial<HttpOptions> = {}, perHost = {}): HttpOptions {
  return {
    ...DEFAULT_HTTP,
    allow: ["127.0.0.1"],
    ...over,
    perHost: { ...DEFAULT_HTTP.perHost, ...perHost },
  };
}

const pages = (seen: Seen[]) => seen.filter((s) => s.path !== "/robots.txt");
/** Ms between consecutive times, to the µs (rates like 1/2.75 s do not add up exactly). */
const gaps = (times: number[]) =>
  times.slice(1).map((t, i) => Math.round((t - times[i]) * 1000) / 1000);

Deno.test("every request carries the flow's user agent; robots.txt is read once per host", async () => {
  const clock = fakeClock();
  await withSite(clock, () => undefined, async (origin, seen) => {
    const http = new PoliteHttp(options({ userAgent: "testbot/2.0 (+https://example.com)" }), {
      clock,
    }).client();
    for (const p of ["/a", "/b", "/c"]) assert.equal((await http.get(origin + p)).status, 200);
    assert.deepEqual(seen.map((s) => s.path), ["/robots.txt", "/a", "/b", "/c"]);
    assert.ok(seen.every((s) => s.ua === "testbot/2.0 (+https://example.com)"));
  });
});

Deno.test("a request's own User-Agent header wins over the flow's", async () => {
  const clock = fakeClock();
  await withSite(clock, () => undefined, async (origin, seen) => {
    const http = new PoliteHttp(options(), { clock }).client();
    await http.get(origin + "/a", { headers: { "user-agent": "custom/1" } });
    assert.deepEqual(seen.map((s) => [s.path, s.ua]), [
      ["/robots.txt", DEFAULT_HTTP.userAgent],
      ["/a", "custom/1"],
    ]);
  });
});

Deno.test("robots.txt: our group's Disallow fails the request, saying so; other paths go", async () => {
  const clock = fakeClock();
  const robots = "User-agent: *\nDisallow: /\n\nUser-agent: testbot\nDisallow: /private\n";
  await withSite(
    clock,
    (path) => path === "/robots.txt" ? new Response(robots) : undefined,
    async (origin, seen) => {
      const http = new PoliteHttp(options({ userAgent: "TestBot/1.0" }), { clock }).client();
      await assert.rejects(http.get(origin + "/private/page"), (e: Error) => {
        assert.ok(e instanceof RobotsDisallowedError);
        assert.equal(
          e.message,
          `GET ${origin}/private/page: robots.txt of ${origin} disallows it for user agent "testbot"`,
        );
        return true;
      });
      assert.equal((await http.get(origin + "/public")).status, 200);
      assert.deepEqual(seen.map((s) => s.path), ["/robots.txt", "/public"]);
    },
  );
});

Deno.test("robots.txt: a rule and a URL that spell one character differently (%7E, ~) still match", async () => {
  const clock = fakeClock();
  // RFC 9309 compares paths with unreserved characters unescaped and other escapes in one case.
  const robots = "User-agent: *\nDisallow: /%7Ejoe/\nDisallow: /x/~y\nDisallow: /caf%c3%a9\n";
  await withSite(
    clock,
    (path) => path === "/robots.txt" ? new Response(robots) : undefined,
    async (origin, seen) => {
      const http = new PoliteHttp(options(), { clock }).client();
      for (const p of ["/~joe/a", "/%7ejoe/b", "/x/%7Ey", "/caf%C3%A9", "/café"]) {
        await assert.rejects(http.get(origin + p), RobotsDisallowedError, p);
      }
      assert.equal((await http.get(origin + "/joe/")).status, 200);
      assert.deepEqual(seen.map((s) => s.path), ["/robots.txt", "/joe/"]);
    },
  );
});

Deno.test("robots: false reads no robots.txt and obeys none", async () => {
  const clock = fakeClock();
  await withSite(
    clock,
    (path) => path === "/robots.txt" ? new Response("User-agent: *\nDisallow: /\n") : undefined,
    async (origin, seen) => {
      const http = new PoliteHttp(options({ robots: false }), { clock }).client();
      await http.get(origin + "/a");
      assert.deepEqual(seen.map((s) => s.path), ["/a"]);
    },
  );
});

Deno.test("Crawl-delay lowers the host's rate below perHost.rps, with no burst", async () => {
  const clock = fakeClock();
  await withSite(
    clock,
    (path) => path === "/robots.txt" ? new Response("User-agent: *\nCrawl-delay: 3\n") : undefined,
    async (origin, seen) => {
      const http = new PoliteHttp(options({}, { rps: 5, burst: 5 }), { clock }).client();
      for (let i = 0; i < 4; i++) await http.get(`${origin}/p${i}`);
      assert.deepEqual(gaps(pages(seen).map((s) => s.at)), slack([3000, 3000, 3000]));
    },
  );
});

Deno.test("an absurd Crawl-delay (1e400, which parses as Infinity) still paces: an hour apart", async () => {
  const clock = fakeClock();
  await withSite(
    clock,
    (path) =>
      path === "/robots.txt" ? new Response("User-agent: *\nCrawl-delay: 1e400\n") : undefined,
    async (origin, seen) => {
      const http = new PoliteHttp(options({}, { rps: 5, burst: 5 }), { clock }).client();
      for (let i = 0; i < 3; i++) await http.get(`${origin}/p${i}`);
      // (The second gap holds robots.txt's hourly re-read too, which takes a slot of its own.)
      const g = gaps(pages(seen).map((s) => s.at));
      assert.equal(g.length, 2);
      assert.ok(g.every((x) => x >= slack([3_600_000])[0]), `an hour apart at least: ${g}`);
    },
  );
});

Deno.test("a host that does not answer is said to be so first, not as a robots.txt problem", async () => {
  // A port nothing listens on: the connection is refused.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const origin = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  listener.close();
  const log = memoryLogger();
  const http = new PoliteHttp(options(), { clock: fakeClock(), log, flow: "f" }).client();
  const error = await http.get(origin + "/a").catch((e) => e);
  assert.match(
    String(error.message),
    /robots\.txt of .* could not be read \(the host did not answer: .*(refused|ECONNREFUSED)/i,
  );
});

Deno.test("a robots.txt over the size read is said to be too large, not a host that did not answer", async () => {
  const clock = fakeClock();
  await withSite(
    clock,
    (path) => path === "/robots.txt" ? new Response("#".repeat(600 * 1024)) : undefined,
    async (origin) => {
      const http = new PoliteHttp(options(), { clock, log: memoryLogger(), flow: "f" }).client();
      const error = await http.get(origin + "/a").catch((e) => e);
      assert.match(
        String(error.message),
        /robots\.txt of .* could not be read \(it is larger than the 524288 bytes a robots\.txt is read up to\)/,
      );
      assert.doesNotMatch(String(error.message), /did not answer/);
    },
  );
});

Deno.test("robots.txt answering 5xx disallows the host for a while, then it is read again", async () => {
  const clock = fakeClock();
  await withSite(
    clock,
    (path, n) =>
      path === "/robots.txt"
        ? new Response(n === 1 ? "down" : "", { status: n === 1 ? 500 : 404 })
        : undefined,
    async (origin, seen) => {
      const log = memoryLogger();
      const http = new PoliteHttp(options(), { clock, log, flow: "f" }).client();
      await assert.rejects(http.get(origin + "/a"), {
        name: "RobotsDisallowedError",
        message: `GET ${origin}/a: robots.txt of ${origin} could not be read (HTTP 500), ` +
          "so the host is taken to disallow everything for 60 s",
      });
      assert.deepEqual(log.lines, [`warn f: ${origin}/robots.txt: could not be read (HTTP 500)`]);
      await assert.rejects(
        http.get(origin + "/a"),
        RobotsDisallowedError,
        "still within the minute",
      );
      clock.advance(60_000);
      assert.equal((await http.get(origin + "/a")).status, 200, "404 now: no rules");
      assert.deepEqual(seen.map((s) => s.path), ["/robots.txt", "/robots.txt", "/a"]);
    },
  );
});

Deno.test("robots.txt is read again after its hour", async () => {
  const clock = fakeClock();
  await withSite(
    clock,
    (path, n) =>
      path === "/robots.txt" && n > 1 ? new Response("User-agent: *\nDisallow: /\n") : undefined,
    async (origin, seen) => {
      const http = new PoliteHttp(options(), { clock }).client();
      await http.get(origin + "/a");
      clock.advance(59 * 60_000);
      await http.get(origin + "/a");
      clock.advance(2 * 60_000);
      await assert.rejects(http.get(origin + "/a"), RobotsDisallowedError);
      assert.deepEqual(seen.map((s) => s.path), ["/robots.txt", "/a", "/a", "/robots.txt"]);
    },
  );
});

/** withSite's answer: the first request for /a is a 429 asking for 7 s (Retry-After). */
const slowDownOnA = (path: string, n: number) =>
  path === "/a" && n === 1
    ? new Response("slow down", { status: 429, headers: { "retry-after": "7" } })
    : undefined;

Deno.test("Retry-After of a 429 pauses the whole host until then", async () => {
  const clock = fakeClock();
  await withSite(
    clock,
    slowDownOnA,
    async (origin, seen) => {
      const log = memoryLogger();
      const http = new PoliteHttp(options({ robots: false }, { rps: 5, burst: 5 }), {
        clock,
        log,
        flow: "f",
      }).client();
      await assert.rejects(http.get(origin + "/a"), (e) => (e as HttpStatusError).status === 429);
      const host = new URL(origin).host;
      assert.deepEqual(log.lines, [
        `warn f: ${host} answered 429: no request to it for 7 s, as its Retry-After asks`,
      ]);
      await http.get(origin + "/b");
      await http.get(origin + "/c");
      const [a, b, c] = seen.map((s) => s.at);
      // As long as the host asked, not longer: the bucket's depth from before the 429 (a burst
      // of 5 at 5 rps) does not hold the next request 4 intervals more, its pace halved by then.
      assert.equal(b - a, 7000, `the next request came ${b - a} ms after the 429`);
      assert.ok(c - b >= 400, "and no burst after the pause: the rate is halved too");
    },
  );
});

Deno.test("a request with maxWait is not sent while its host pauses longer, and spends no turn", async () => {
  const clock = fakeClock();
  await withSite(
    clock,
    slowDownOnA,
    async (origin, seen) => {
      const http = new PoliteHttp(options({ robots: false }, { rps: 5, burst: 1 }), {
        clock,
        log: memoryLogger(),
      }).client();
      await assert.rejects(http.get(origin + "/a"), (e) => (e as HttpStatusError).status === 429);
      const t0 = clock.now();
      for (const path of ["/b", "/c", "/d"]) {
        await assert.rejects(
          http.get(origin + path, { maxWait: 5000 }),
          (e) =>
            e instanceof HostPausedError && e.host === new URL(origin).host &&
            /not sent: .* asked for a pause \(Retry-After\) of 7 s more, longer than this request waits \(5 s\)/
              .test(e.message),
        );
      }
      assert.equal(clock.now(), t0, "given up at once, with no sleep");
      assert.deepEqual(pages(seen).map((s) => s.path), ["/a"]);
      // Waited as long as the host asked, not a turn longer for the three given up.
      await http.get(origin + "/e", { maxWait: 7000 });
      assert.deepEqual(pages(seen).map((s) => s.path), ["/a", "/e"]);
      assert.equal(seen.at(-1)!.at - seen[0].at, 7000);
    },
  );
});

Deno.test("a request with maxWait that waited for a connection is not sent into a pause that came meanwhile", async () => {
  const clock = fakeClock();
  await withSite(
    clock,
    slowDownOnA,
    async (origin, seen) => {
      const http = new PoliteHttp(
        options({ robots: false }, { rps: 5, burst: 5, concurrency: 1 }),
        {
          clock,
          log: memoryLogger(),
        },
      ).client();
      const a = http.get(origin + "/a");
      const b = http.get(origin + "/b", { maxWait: 5000 }); // waits for a's connection
      await assert.rejects(a, (e) => (e as HttpStatusError).status === 429);
      await assert.rejects(b, HostPausedError);
      assert.deepEqual(pages(seen).map((s) => s.path), ["/a"]);
    },
  );
});

Deno.test("Retry-After of a redirect's target pauses that host, not the first URL's", async () => {
  // A feed at A redirected to B, which answered 429: A was paused and B asked again at once.
  const clock = fakeClock();
  await withSite(
    clock,
    (path) =>
      path === "/limited"
        ? new Response("slow down", { status: 429, headers: { "retry-after": "7" } })
        : undefined,
    async (b, seenB) => {
      await withSite(
        clock,
        (path) =>
          path === "/feed"
            ? new Response(null, { status: 302, headers: { location: `${b}/limited` } })
            : undefined,
        async (a, seenA) => {
          const log = memoryLogger();
          const http = new PoliteHttp(options({ robots: false }, { rps: 100, burst: 100 }), {
            clock,
            log,
            flow: "f",
          }).client();
          const t0 = clock.now();
          await assert.rejects(http.get(a + "/feed"), (e) => (e as HttpStatusError).status === 429);
          assert.deepEqual(log.lines, [
            `warn f: ${
              new URL(b).host
            } answered 429: no request to it for 7 s, as its Retry-After asks`,
          ]);
          await http.get(a + "/page");
          await http.get(b + "/other");
          assert.ok(seenA.find((s) => s.path === "/page")!.at - t0 < 1000, "A is not held");
          assert.ok(seenB.find((s) => s.path === "/other")!.at - t0 >= 7000, "B is paused");
        },
      );
    },
  );
});

Deno.test("a 429 storm: never above perHost.rps, the rate halves, then creeps back", async () => {
  const clock = fakeClock();
  const storm = 8;
  let count = 0;
  await withSite(
    clock,
    () => ++count <= storm ? new Response("busy", { status: 429 }) : undefined,
    async (origin, seen) => {
      const http = new PoliteHttp(options({ robots: false }, { rps: 5, burst: 1 }), { clock })
        .client();
      const failed: number[] = [];
      for (let i = 0; i < 40; i++) {
        await http.get(`${origin}/p${i}`).catch((e) => failed.push((e as HttpStatusError).status));
      }
      assert.equal(failed.length, storm);
      const g = gaps(seen.map((s) => s.at));
      assert.ok(g.every((x) => x >= 200), `no two requests closer than 1/rps: ${g}`);
      const slowest = Math.max(...g);
      assert.ok(slowest >= 1600, `the storm cut the rate at least to a 1/8th: ${slowest}`);
      assert.ok(g[storm - 1] > g[1], "slower at the end of the storm than at its start");
      assert.deepEqual(
        g.slice(-5),
        slack([200, 200, 200, 200, 200]),
        "back to the configured rate",
      );
      const recovering = g.slice(storm);
      assert.ok(
        recovering.every((x, i) => i === 0 || x <= recovering[i - 1]),
        "creeping back",
      );
    },
  );
});

Deno.test("a 503 slows the host too, a 500 does not", async () => {
  const clock = fakeClock();
  let n = 0;
  await withSite(
    clock,
    () => {
      n++;
      return n === 1
        ? new Response("", { status: 500 })
        : n === 3
        ? new Response("", { status: 503 })
        : undefined;
    },
    async (origin, seen) => {
      const http = new PoliteHttp(options({ robots: false }, { rps: 5, burst: 1 }), { clock })
        .client();
      for (let i = 0; i < 6; i++) await http.get(`${origin}/p${i}`).catch(() => {});
      // The 503 (3rd) halves the rate from the request after next: the next one's
      // turn was reserved before it. Then a success gives back 1/20th.
      assert.deepEqual(gaps(seen.map((s) => s.at)), slack([200, 200, 200, 400, 363.636]));
    },
  );
});

Deno.test("concurrency: no more than perHost.concurrency requests to one host in flight", async () => {
  let open = 0;
  let most = 0;
  let arrived = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  await withServer(async () => {
    open++;
    arrived++;
    most = Math.max(most, open);
    await gate;
    open--;
    return new Response("ok");
  }, async (origin) => {
    const http = new PoliteHttp(
      options({ robots: false }, { rps: 1000, burst: 100, concurrency: 2 }),
    )
      .client();
    const all = Promise.all(Array.from({ length: 6 }, (_, i) => http.get(`${origin}/p${i}`)));
    while (arrived < 2) await new Promise((r) => setTimeout(r, 5));
    // Time for a third to arrive, were it let through.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(arrived, 2);
    release();
    assert.equal((await all).length, 6);
    assert.equal(most, 2);
  });
});

Deno.test("a source's perHost overrides the flow's, field by field, on the same host bucket", async () => {
  const clock = fakeClock();
  await withSite(clock, () => undefined, async (origin, seen) => {
    const pool = new PoliteHttp(options({ robots: false }, { rps: 5, burst: 1 }), { clock });
    const slow = pool.client({ rps: 0.5 });
    for (let i = 0; i < 3; i++) await slow.get(`${origin}/s${i}`);
    assert.deepEqual(gaps(seen.map((s) => s.at)), slack([2000, 2000]));
  });
});

Deno.test("the flow's allow list reaches every fetch, robots.txt included", async () => {
  const calls: [string, readonly string[] | undefined][] = [];
  const fetch = (url: string, limits: FetchLimits) => {
    calls.push([new URL(url).pathname, limits.allow]);
    return fetchLimited(url, limits);
  };
  await withServer(() => new Response("ok"), async (origin) => {
    const http = new PoliteHttp(options({ allow: ["127.0.0.1", "10.0.0.0/8"] }), { fetch })
      .client();
    await http.get(origin + "/a");
  });
  assert.deepEqual(calls, [
    ["/robots.txt", ["127.0.0.1", "10.0.0.0/8"]],
    ["/a", ["127.0.0.1", "10.0.0.0/8"]],
  ]);
});

Deno.test("a bad URL fails as fetchLimited says, with no robots.txt read", async () => {
  const http = new PoliteHttp(options()).client();
  await assert.rejects(http.get("ftp://example.com/x"), /only http and https URLs can be fetched/);
  await assert.rejects(http.get("not a url"), /not a valid URL/);
});

Deno.test("a request waiting on another's robots.txt read stops when its own signal aborts", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  let released = false;
  await withServer(async (req) => {
    if (new URL(req.url).pathname === "/robots.txt") {
      await gate; // a slow robots.txt
      return new Response("", { status: 404 });
    }
    return new Response("ok");
  }, async (origin) => {
    const http = new PoliteHttp(options({}, { rps: 100, burst: 10 })).client();
    const first = http.get(`${origin}/a`); // starts the robots.txt read
    const stop = new AbortController();
    const second = http.get(`${origin}/b`, { signal: stop.signal });
    await new Promise((r) => setTimeout(r, 50));
    stop.abort(new Error("stopped"));
    await assert.rejects(second, /stopped/);
    assert.equal(released, false, "it did not wait for the robots.txt read");
    released = true;
    release();
    assert.equal((await first).status, 200);
  });
});

Deno.test("a Retry-After also holds a request that was already waiting for its turn", async () => {
  // A clock whose sleeps end only when the test moves it past them.
  let t = 0;
  const sleepers: { at: number; wake: () => void }[] = [];
  const clock = {
    now: () => t,
    sleep: (ms: number) => new Promise<void>((wake) => sleepers.push({ at: t + ms, wake })),
    advance(ms: number) {
      t += ms;
      for (const s of sleepers.filter((s) => s.at <= t)) {
        sleepers.splice(sleepers.indexOf(s), 1);
        s.wake();
      }
    },
  };
  const until = async (check: () => boolean) => {
    while (!check()) await new Promise((r) => setTimeout(r, 5));
  };
  const seen: { path: string; at: number }[] = [];
  await withServer(async (req) => {
    const path = new URL(req.url).pathname;
    seen.push({ path, at: clock.now() });
    if (path !== "/a") return new Response("ok");
    await until(() => sleepers.length > 0); // b is waiting for its turn when the 429 comes
    return new Response("slow down", { status: 429, headers: { "retry-after": "7" } });
  }, async (origin) => {
    const http = new PoliteHttp(options({ robots: false }, { rps: 5, burst: 1 }), { clock })
      .client();
    const a = http.get(origin + "/a");
    const b = http.get(origin + "/b"); // its turn is 220 ms later: it sleeps
    await assert.rejects(a, (e) => (e as HttpStatusError).status === 429);
    clock.advance(221); // past b's turn: but the host asked for 7 s
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(seen.map((s) => s.path), ["/a"], "b waits out the Retry-After");
    await until(() => sleepers.length > 0);
    clock.advance(7000);
    await b;
    assert.ok(seen[1].at >= 7000, `b went at ${seen[1].at}`);
  });
});

Deno.test("a host the flow may not reach is refused as such, not as an unreadable robots.txt", async () => {
  let hits = 0;
  await withServer(() => (hits++, new Response("ok")), async (origin) => {
    const http = new PoliteHttp(options({ allow: [] })).client();
    await assert.rejects(http.get(`${origin}/page`), (e: Error) => {
      assert.match(e.message, /refused to connect to 127\.0\.0\.1.*http: \{ allow:/s);
      assert.doesNotMatch(e.message, /robots\.txt/);
      return true;
    });
  });
  assert.equal(hits, 0);
});

const redirect = (location: string) => new Response(null, { status: 302, headers: { location } });

Deno.test("a redirect's target passes its own robots.txt: a path it disallows is never fetched", async () => {
  const clock = fakeClock();
  await withSite(
    clock,
    (path) => {
      if (path === "/robots.txt") return new Response("User-agent: *\nDisallow: /private/\n");
      if (path === "/to-private") return redirect("/private/feed.xml");
      if (path === "/elsewhere") return redirect("/ok");
      return undefined;
    },
    async (origin, seen) => {
      const http = new PoliteHttp(options(), { clock }).client();
      await assert.rejects(http.get(`${origin}/to-private`), (e: Error) => {
        assert.ok(e instanceof RobotsDisallowedError, e.message);
        assert.equal(
          e.message,
          `GET ${origin}/private/feed.xml (redirected from ${origin}/to-private): ` +
            `robots.txt of ${origin} disallows it for user agent "millrace"`,
        );
        return true;
      });
      assert.equal((await http.get(`${origin}/elsewhere`)).status, 200);
      assert.deepEqual(seen.map((s) => s.path), [
        "/robots.txt",
        "/to-private",
        "/elsewhere",
        "/ok",
      ]);
    },
  );
});

Deno.test("a redirect to another host reads that host's robots.txt and waits for that host's turn", async () => {
  // One server under two names: 127.0.0.1 and localhost are two hosts to the client.
  const clock = fakeClock();
  const seen: { host: string; path: string; at: number }[] = [];
  await withServer((req) => {
    const url = new URL(req.url);
    seen.push({ host: url.hostname, path: url.pathname, at: clock.now() });
    if (url.pathname === "/robots.txt") {
      return new Response(url.hostname === "localhost" ? "User-agent: *\nDisallow: /no\n" : "");
    }
    if (url.pathname.startsWith("/go/")) {
      return redirect(`http://localhost:${url.port}/${url.pathname.slice(4)}`);
    }
    return new Response("ok");
  }, async (origin) => {
    const other = origin.replace("127.0.0.1", "localhost");
    const http = new PoliteHttp(
      options({ allow: ["127.0.0.1", "localhost"] }, { rps: 1, burst: 1 }),
      { clock },
    ).client();
    await http.get(`${other}/first`); // localhost's turn taken at 0
    await http.get(`${origin}/go/second`); // 127.0.0.1's first turn, then localhost's next
    await assert.rejects(http.get(`${origin}/go/no`), RobotsDisallowedError);
    const onLocalhost = seen.filter((s) => s.host === "localhost");
    assert.deepEqual(onLocalhost.map((s) => s.path), ["/robots.txt", "/first", "/second"]);
    const first = onLocalhost[1].at, second = onLocalhost[2].at;
    assert.deepEqual(gaps([first, second]), slack([1000]));
    assert.equal(seen.filter((s) => s.path === "/no").length, 0);
  });
});

Deno.test("a redirect's wait for its host's turn is not counted against the request's timeout", async () => {
  // A host paced at one request a second (a Crawl-delay: 1 does the same) and a 500 ms timeout:
  // the hop to /page waits about a second for its turn. It failed as "no complete response
  // within 500 ms" though the server answered at once, and so did every such redirect of a
  // site whose Crawl-delay was as long as the source's timeout.
  const seen: string[] = [];
  await withServer((req) => {
    const path = new URL(req.url).pathname;
    seen.push(path);
    return path === "/moved" ? redirect("/page") : new Response("the page");
  }, async (origin) => {
    const http = new PoliteHttp(options({ robots: false }, { rps: 1, burst: 1 })).client();
    const res = await http.get(`${origin}/moved`, { timeout: 500 });
    assert.equal(res.status, 200);
    assert.equal(new TextDecoder().decode(res.body), "the page");
    assert.deepEqual(seen, ["/moved", "/page"]);
  });
});

Deno.test("a redirect target's robots.txt is read within what the request's timeout has left", async () => {
  // Each hop's robots.txt read got a whole timeout of its own, outside the request's: six
  // hosts whose robots.txt trickled in over 2.4 s held a 3 s request for 14.7 s.
  await withServer(async (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/robots.txt") {
      if (url.hostname === "localhost") await new Promise((r) => setTimeout(r, 400));
      return new Response("");
    }
    if (url.pathname === "/go") {
      await new Promise((r) => setTimeout(r, 400)); // the first hop's server time
      return redirect(`http://localhost:${url.port}/page`);
    }
    return new Response("the page");
  }, async (origin) => {
    const http = new PoliteHttp(options({ allow: ["127.0.0.1", "localhost"] })).client();
    await assert.rejects(
      http.get(`${origin}/go`, { timeout: 600 }),
      /robots\.txt of http:\/\/localhost:\d+ not read within \d+ ms \(what the request's timeout had left\)/,
    );
  });
});

Deno.test("a source's timeout bounds its wait for a slow robots.txt, and the read goes on for the next request", async () => {
  // robots.txt has a deadline of its own (10 s); a request with a shorter timeout must not wait it
  // out, nor cut the read short: the next request would start it again, and so on for ever.
  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  let robotsReads = 0;
  await withServer(async (req) => {
    if (new URL(req.url).pathname === "/robots.txt") {
      robotsReads++;
      await held;
      return new Response("User-agent: *\nDisallow: /private\n");
    }
    return new Response("ok");
  }, async (origin) => {
    const http = new PoliteHttp(options()).client();
    try {
      await assert.rejects(
        http.get(`${origin}/feed`, { timeout: 200 }),
        new RegExp(`robots\\.txt of ${origin} not read within 200 ms \\(the request's timeout\\)`),
      );
    } finally {
      release();
    }
    assert.equal((await http.get(`${origin}/feed`, { timeout: 5_000 })).status, 200);
    await assert.rejects(http.get(`${origin}/private/x`), RobotsDisallowedError);
    assert.equal(robotsReads, 1, "the first read was kept");
  });
});

Deno.test("a robots.txt that redirects is followed without checking its own robots.txt", async () => {
  // Checking the hop's robots.txt waited on this very read until its deadline, and the host
  // was then taken to disallow everything.
  const clock = fakeClock();
  await withSite(
    clock,
    (path) => {
      if (path === "/robots.txt") return redirect("/static/robots.txt");
      if (path === "/static/robots.txt") return new Response("User-agent: *\nDisallow: /private\n");
      return undefined;
    },
    async (origin, seen) => {
      const http = new PoliteHttp(options(), { clock }).client();
      assert.equal((await http.get(`${origin}/public`)).status, 200);
      await assert.rejects(http.get(`${origin}/private/x`), RobotsDisallowedError);
      assert.deepEqual(seen.map((s) => s.path), ["/robots.txt", "/static/robots.txt", "/public"]);
    },
  );
});

/**
 * Where a robots.txt redirects that the flow may not reach, as `allow` (given the site's port)
 * says: before, taken as no robots.txt at all, so every page was fetched under no rules.
 */
const unreachableRobots: [string, string, (port: string) => string[] | undefined][] = [
  // 169.254.169.254 is never allowed here: the flow allows 127.0.0.1 only.
  ["another host", "http://169.254.169.254/robots.txt", () => undefined],
  // Only the host name was compared: the refusal was taken for the host's own, and the site's
  // rules were not read at all (an http robots.txt redirected to https, 443 not allowed).
  [
    "the same host name on a port",
    "http://127.0.0.1:1/robots.txt",
    (port) => [`127.0.0.1:${port}`],
  ],
];

for (const [what, target, allowed] of unreachableRobots) {
  Deno.test(`a robots.txt redirected to ${what} the flow may not reach disallows the host for a while`, async () => {
    const clock = fakeClock();
    await withSite(
      clock,
      (path) => path === "/robots.txt" ? redirect(target) : undefined,
      async (origin, seen) => {
        const allow = allowed(new URL(origin).port);
        const http = new PoliteHttp(options(allow ? { allow } : {}), { clock }).client();
        await assert.rejects(
          http.get(`${origin}/article`),
          (err: unknown) => {
            assert.ok(err instanceof RobotsDisallowedError, String(err));
            assert.match(err.message, /it redirects to an address this flow may not reach/);
            return true;
          },
        );
        assert.deepEqual(pages(seen), [], "no page fetched");
      },
    );
  });
}

Deno.test("two flows' clients in one process share a host's pace and its Retry-After pause", async () => {
  // Each flow had buckets of its own: two flows at rps 2 sent 4 requests a second to one host.
  const clock = fakeClock();
  await withSite(
    clock,
    (path, n) =>
      path === "/busy" && n === 1
        ? new Response("slow down", { status: 429, headers: { "retry-after": "5" } })
        : undefined,
    async (origin, seen) => {
      const [a, b] = [1, 2].map(() =>
        new PoliteHttp(options({ robots: false }, { rps: 2, burst: 1 }), { clock }).client()
      );
      for (let i = 0; i < 2; i++) {
        await a.get(`${origin}/a${i}`);
        await b.get(`${origin}/b${i}`);
      }
      assert.deepEqual(gaps(seen.map((s) => s.at)), slack([500, 500, 500]));
      await assert.rejects(a.get(`${origin}/busy`));
      const paused = clock.now();
      await b.get(`${origin}/b2`);
      assert.ok(seen.at(-1)!.at - paused >= 5000, "b waited out a's Retry-After");
    },
  );
});
