import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { RedisServer, redisTest } from "../_redis_server.ts";
import { withServer } from "../_http_server.ts";
import { parseExposition, sample } from "./_exposition.ts";
import { generatorFlow, startWatched, until } from "./_watched_flow.ts";

async function scrape(get: (path: string) => Promise<Response>) {
  const res = await get("/metrics");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
  return parseExposition(await res.text());
}

Deno.test("/metrics counters rise while a flow runs and equal its report when it ends", async () => {
  const w = await startWatched(generatorFlow("rising", { count: 50, every: "30ms" }));
  try {
    const out = (e: ReturnType<typeof parseExposition>) =>
      sample(e, "millrace_items_total", { stage: "publish", outcome: "out" });
    let first = 0;
    await until(async () => (first = out(await scrape(w.get))) > 0);
    await until(async () => out(await scrape(w.get)) > first);
    assert.equal((await w.get("/readyz")).status, 200);
    w.running.stop();
    const report = await w.running.done;
    const e = await scrape(w.get);
    for (const s of report.stages) {
      const items = (outcome: string) =>
        sample(e, "millrace_items_total", { flow: "rising", stage: s.id, outcome });
      const sum = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);
      assert.equal(items("in"), s.received, `${s.id} in`);
      assert.equal(items("out"), s.emitted, `${s.id} out`);
      assert.equal(items("dropped"), sum(s.dropped), `${s.id} dropped`);
      assert.equal(items("dead_letter"), sum(s.rejected) + s.failed, `${s.id} dead letters`);
      assert.equal(
        sample(e, "millrace_stage_batch_seconds_count", { stage: s.id }),
        s.batches,
        `${s.id}: one observation per batch`,
      );
      assert.equal(sample(e, "millrace_batch_items_sum", { stage: s.id }), s.received);
      assert.equal(
        sample(e, "millrace_edge_pending_items", { stage: s.id }),
        0,
        `${s.id}: nothing in hand (${
          JSON.stringify(
            report.stages.map((r) => [r.id, r.received, r.emitted, r.dropped, r.rejected]),
          )
        })`,
      );
    }
    assert.ok(report.deadLettered > 0, "the generator makes invalid items");
    assert.ok(sample(e, "millrace_embed_tokens_total", { stage: "embed" }) > 0);
    assert.equal(sample(e, "millrace_edge_backlog_items", { stage: "validate" }), 0);
    await w.watch.finished();
    const ready = await w.get("/readyz");
    assert.equal(ready.status, 503);
    assert.match((await ready.json()).reason, /ended/);
  } finally {
    await w.close();
  }
});

Deno.test("with a token, every endpoint but /healthz wants it", async () => {
  const token = "s3cret-token";
  const w = await startWatched(generatorFlow("guarded", { count: 10, every: "1s" }), { token });
  try {
    assert.equal((await w.get("/healthz")).status, 200);
    for (const path of ["/metrics", "/readyz", "/api/snapshot", "/api/history", "/events"]) {
      const res = await w.get(path);
      await res.body?.cancel();
      assert.equal(res.status, 401, `${path} without the token`);
      const wrong = await w.get(path, "s3cret-tokeN");
      await wrong.body?.cancel();
      assert.equal(wrong.status, 401, `${path} with a wrong token`);
    }
    const ok = await w.get("/metrics", token);
    assert.equal(ok.status, 200);
    assert.ok(!(await ok.text()).includes(token));
    // The scheme is case-insensitive (RFC 9110); the token is not, and a bare token is no scheme.
    for (
      const [authorization, status] of [
        [`bearer ${token}`, 200],
        [`BEARER ${token}`, 200],
        [`Bearer   ${token}`, 200],
        [`bearer ${token.toUpperCase()}`, 401],
        [token, 401],
        [`Basic ${token}`, 401],
      ] as const
    ) {
      const res = await fetch(w.url + "/metrics", { headers: { authorization } });
      await res.body?.cancel();
      assert.equal(res.status, status, authorization);
    }
    const snap = await (await w.get("/api/snapshot", token)).json();
    assert.equal(snap.flow, "guarded");
    const events = await w.get("/events", token);
    assert.equal(events.headers.get("content-type"), "text/event-stream");
    const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
    const { value } = await reader.read();
    await reader.cancel();
    assert.match(value ?? "", /^data: \{"flow":"guarded"/);
    const replay = await fetch(w.url + "/api/replay", {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify({ ids: ["1-0"] }),
    });
    assert.equal(replay.status, 400, "a memory flow has nothing to replay");
    await replay.body?.cancel();
  } finally {
    await w.close();
  }
});

/** The status line's code of a GET sent as raw HTTP/1.1 with the given Host header. */
async function statusWithHost(url: string, path: string, host: string): Promise<number> {
  const { port } = new URL(url);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      ),
    );
    let head = "";
    const buf = new Uint8Array(4096);
    while (!head.includes("\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      head += new TextDecoder().decode(buf.subarray(0, n));
    }
    return Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]);
  } finally {
    conn.close();
  }
}

Deno.test("on 127.0.0.1 the server answers only loopback names: a DNS-rebinding page's Host gets 421", async () => {
  // Without a token, a page at http://rebind.attacker.example:PORT whose name
  // was re-pointed at 127.0.0.1 could read the snapshot (errors, dead letters).
  const w = await startWatched(generatorFlow("rebind", { count: 10, every: "1s" }));
  try {
    const port = new URL(w.url).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, "127.0.0.1"]) {
      assert.equal(await statusWithHost(w.url, "/api/snapshot", host), 200, host);
    }
    for (
      const host of [
        `rebind.attacker.example:${port}`,
        "attacker.example",
        `127.0.0.1.nip.io:${port}`,
      ]
    ) {
      for (const path of ["/api/snapshot", "/metrics", "/events", "/"]) {
        assert.equal(await statusWithHost(w.url, path, host), 421, `${host} ${path}`);
      }
    }
    assert.equal(await statusWithHost(w.url, "/healthz", "attacker.example"), 200);
  } finally {
    await w.close();
  }
});

Deno.test("every answer forbids framing and sniffing, and the page loads only its own files", async () => {
  const w = await startWatched(generatorFlow("headers", { count: 10, every: "1s" }));
  try {
    for (const path of ["/", "/dashboard.js", "/api/snapshot", "/metrics", "/healthz", "/nope"]) {
      const res = await w.get(path);
      await res.body?.cancel();
      assert.equal(res.headers.get("x-frame-options"), "DENY", path);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
      assert.match(
        res.headers.get("content-security-policy") ?? "",
        /frame-ancestors 'none'/,
        path,
      );
      assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'self'/, path);
    }
  } finally {
    await w.close();
  }
});

Deno.test("the rebinding guard holds however --host spells a loopback address", async () => {
  // Decided by --host's text, `127.1` and `2130706433` (both listen on 127.0.0.1), or a name
  // /etc/hosts maps there, answered any Host, with no warning either.
  for (const hostname of ["127.1", "2130706433"]) {
    const w = await startWatched(generatorFlow("respelt", { count: 10, every: "1s" }), {
      hostname,
    });
    try {
      const port = new URL(w.url).port;
      assert.equal(await statusWithHost(w.url, "/api/snapshot", `127.0.0.1:${port}`), 200);
      assert.equal(
        await statusWithHost(w.url, "/api/snapshot", `attacker.example:${port}`),
        421,
        hostname,
      );
    } finally {
      await w.close();
    }
  }
});

redisTest(
  "/readyz is 503 with the reason while the durable flow's Redis does not answer",
  async () => {
    const redis = await RedisServer.start();
    const admin = new Redis(redis.url);
    let w: Awaited<ReturnType<typeof startWatched>> | undefined;
    try {
      w = await startWatched(
        generatorFlow("readyz", { count: 10, every: "200ms", redis: redis.url }),
      );
      assert.equal((await w.get("/readyz")).status, 200);
      // Every client's commands wait, PING included: to the flow, Redis is unreachable.
      await admin.client("PAUSE", 20_000, "ALL");
      const res = await w.get("/readyz");
      assert.equal(res.status, 503);
      const body = await res.json();
      assert.equal(body.ready, false);
      assert.match(body.reason, /Redis does not answer PING/);
      assert.equal((await w.get("/healthz")).status, 200, "the process is alive all the same");
      // A scrape and the dashboard do not wait out the pause (a Prometheus scrape gives up at 10 s):
      // they answer, leaving out what Redis would have said.
      for (const path of ["/metrics", "/api/snapshot", "/api/history"]) {
        const res: Response = await fetch(w!.url + path, { signal: AbortSignal.timeout(8_000) });
        assert.equal(res.status, 200, path);
        if (path !== "/api/snapshot") {
          await res.body?.cancel();
          continue;
        }
        // Unknown, not 0: before, the dashboard said nothing waited while Redis was away.
        const snap = await res.json();
        for (const st of snap.stages) {
          assert.equal(st.backlog, null, `${st.id} backlog`);
          assert.equal(st.pending, null, `${st.id} pending`);
        }
        assert.equal(snap.deadLetters.total, null);
      }
      await admin.client("UNPAUSE");
      await until(async () => {
        const again = await w!.get("/readyz");
        await again.body?.cancel();
        return again.status === 200;
      });
    } finally {
      admin.disconnect();
      await w?.close();
      await redis.stop();
    }
  },
);

Deno.test("millrace_http_requests_total counts the web sources' requests by host and status", async () => {
  let calls = 0;
  await withServer((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/gone.json") return new Response("no", { status: 404 });
    calls++;
    return Response.json([{ title: `Item number ${calls}`, url: `https://example.com/${calls}` }]);
  }, async (origin) => {
    const host = new URL(origin).host;
    const yaml = [
      "name: fetching",
      "http: { allow: [127.0.0.1], robots: false, perHost: { rps: 1000, burst: 100 } }",
      "sources:",
      `  api: { kind: json, url: "${origin}/items.json" }`,
      `  gone: { kind: json, url: "${origin}/gone.json" }`,
      "pipeline:",
      "  - validate: { require: [title, url] }",
      "  - publish:",
      "      - jsonl: { path: items.jsonl }",
    ].join("\n") + "\n";
    const w = await startWatched(yaml);
    try {
      await w.running.done;
      const e = await scrape(w.get);
      assert.equal(sample(e, "millrace_http_requests_total", { host, status: "200" }), calls);
      assert.equal(sample(e, "millrace_http_requests_total", { host, status: "404" }), 1);
      assert.equal(calls, 1);
    } finally {
      await w.close();
    }
  });
});

Deno.test("millrace_http_requests_total counts a URL robots.txt rules out as robots, and the read of robots.txt itself", async () => {
  const asked: string[] = [];
  await withServer((req) => {
    const path = new URL(req.url).pathname;
    asked.push(path);
    if (path === "/robots.txt") return new Response("User-agent: *\nDisallow: /private\n");
    return Response.json([{ title: "Item number one", url: "https://example.com/1" }]);
  }, async (origin) => {
    const host = new URL(origin).host;
    const yaml = [
      "name: ruled",
      "http: { allow: [127.0.0.1], perHost: { rps: 1000, burst: 100 } }",
      "sources:",
      `  open: { kind: json, url: "${origin}/items.json" }`,
      `  closed: { kind: json, url: "${origin}/private/items.json" }`,
      "pipeline:",
      "  - publish:",
      "      - jsonl: { path: items.jsonl }",
    ].join("\n") + "\n";
    const w = await startWatched(yaml);
    try {
      await w.running.done.catch(() => {});
      const e = await scrape(w.get);
      assert.deepEqual(asked.sort(), ["/items.json", "/robots.txt"]);
      // Both requests the server answered 200: robots.txt's read is one the host counts too.
      assert.equal(sample(e, "millrace_http_requests_total", { host, status: "200" }), 2);
      assert.equal(sample(e, "millrace_http_requests_total", { host, status: "robots" }), 1);
      const statuses = e.samples.filter((s) => s.name === "millrace_http_requests_total")
        .map((s) => s.labels.status).sort();
      assert.deepEqual(statuses, ["200", "robots"]);
    } finally {
      await w.close();
    }
  });
});

redisTest(
  "a durable flow's dead letters are listed from Redis and replayed with the token",
  async () => {
    const redis = await RedisServer.start();
    const token = "replay-token";
    let w: Awaited<ReturnType<typeof startWatched>> | undefined;
    try {
      w = await startWatched(
        generatorFlow("replaying", { count: 50, every: "10s", redis: redis.url }),
        { token },
      );
      type Snap = { deadLetters: { total: number; recent: { id: string; reason: string }[] } };
      let snap: Snap | undefined;
      await until(async () => {
        snap = await (await w!.get("/api/snapshot", token)).json();
        return snap!.deadLetters.total >= 2;
      });
      const [first] = snap!.deadLetters.recent;
      assert.match(first.id, /^\d+-\d+$/, "a stream entry id");
      assert.ok(first.reason);
      const post = (ids: unknown, auth = token) =>
        fetch(w!.url + "/api/replay", {
          method: "POST",
          headers: { authorization: `Bearer ${auth}` },
          body: JSON.stringify({ ids }),
        });
      const refused = await post([first.id], "wrong");
      await refused.body?.cancel();
      assert.equal(refused.status, 401);
      const bad = await post("all");
      await bad.body?.cancel();
      assert.equal(bad.status, 400);
      // An id that is no entry's is refused by name, before Redis refuses the whole request.
      const unknown = await post([first.id, "nope"]);
      assert.equal(unknown.status, 400);
      assert.match((await unknown.json()).error, /not a dead letter id .*"nope"/);
      const res = await post([first.id]);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { replayed: { validate: 1 }, skipped: [] });
      const again = await (await post([first.id])).json();
      assert.equal(again.skipped.length, 1, "a letter is replayed once");
    } finally {
      await w?.close();
      await redis.stop();
    }
  },
);
