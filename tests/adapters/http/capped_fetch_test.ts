import assert from "node:assert/strict";
import { cappedFetch, RedirectError } from "../../../adapters/http/capped_fetch.ts";
import { withServer } from "../../_http_server.ts";

Deno.test("a reply body over the cap fails, with or without a Content-Length", async () => {
  const big = "x".repeat(5000);
  await withServer((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/small") return new Response("ok");
    if (path === "/declared") return new Response(big);
    // No Content-Length: the body streams until the cap stops it.
    return new Response(ReadableStream.from([new TextEncoder().encode(big)]));
  }, async (origin) => {
    const get = cappedFetch(1000);
    assert.equal(await (await get(`${origin}/small`)).text(), "ok");
    await assert.rejects(() => get(`${origin}/declared`), /larger than the limit of 1000 bytes/);
    await assert.rejects(() => get(`${origin}/streamed`), /larger than the limit of 1000 bytes/);
  });
});

Deno.test("a redirect to another address, or one that changes the request, is refused, naming both; it ends the run", async () => {
  // Followed, Qdrant's `api-key` header went to the other address with every request, an OpenAI
  // client's key was dropped there ("You didn't provide an API key"), and a 301 made a POST a GET.
  const asked: string[] = [];
  await withServer((req) => {
    const { pathname } = new URL(req.url);
    asked.push(`${req.method} ${pathname} ${req.headers.get("api-key")}`);
    const moves: Record<string, [number, string]> = {
      "/elsewhere": [307, "http://user:hunter2@127.0.0.1:9/v1?api-key=hunter3"],
      "/moved": [301, "/v2"],
    };
    const [status, location] = moves[pathname] ?? [200, ""];
    return status === 200
      ? new Response("{}")
      : new Response(null, { status, headers: { location } });
  }, async (origin) => {
    const post = cappedFetch(1000);
    const refused = (path: string) =>
      post(`${origin}${path}`, { method: "POST", headers: { "api-key": "secret" }, body: "{}" })
        .then(() => undefined, (e) => e);
    const elsewhere = await refused("/elsewhere");
    assert.ok(elsewhere instanceof RedirectError);
    assert.match(
      elsewhere.message,
      /^http:\/\/127\.0\.0\.1:\d+\/elsewhere answered 307, redirecting to http:\/\/user:\*\*\*@127\.0\.0\.1:9\/v1\?api-key=\*\*\*: point the url at where the API answers/,
    );
    assert.doesNotMatch(elsewhere.message, /hunter/);
    assert.equal(elsewhere.endsRun, true);
    // Same address, but a 301 would make the POST a GET: refused, the location resolved.
    const moved = await refused("/moved");
    assert.match(moved.message, /answered 301, redirecting to http:\/\/127\.0\.0\.1:\d+\/v2:/);
    assert.deepEqual(asked, ["POST /elsewhere secret", "POST /moved secret"], "nothing sent on");
  });
});

Deno.test("a 307 or 308 within the address asked is followed, method, body and key kept", async () => {
  // A gateway that moved its API under /api answered every request with a 307 there: refused,
  // a setup that worked was ended, with advice that did not fit it.
  const asked: string[] = [];
  await withServer(async (req) => {
    const { pathname } = new URL(req.url);
    asked.push(`${req.method} ${pathname} ${req.headers.get("api-key")} ${await req.text()}`);
    if (pathname === "/v1/embeddings") {
      return new Response(null, { status: 307, headers: { location: "/api/v1/embeddings" } });
    }
    if (pathname === "/api/v1/embeddings") {
      return new Response(null, { status: 308, headers: { location: "/api2/v1/embeddings" } });
    }
    return new Response('{"ok":true}');
  }, async (origin) => {
    const response = await cappedFetch(1000)(`${origin}/v1/embeddings`, {
      method: "POST",
      headers: { "api-key": "secret" },
      body: '{"input":"a"}',
    });
    assert.equal(await response.text(), '{"ok":true}');
    assert.deepEqual(asked, [
      'POST /v1/embeddings secret {"input":"a"}',
      'POST /api/v1/embeddings secret {"input":"a"}',
      'POST /api2/v1/embeddings secret {"input":"a"}',
    ]);
  });
});
