import assert from "node:assert/strict";
import { cappedFetch } from "../../../adapters/http/capped_fetch.ts";
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

Deno.test("a redirect is refused, naming where it points, and ends the run: an API's key goes nowhere else", async () => {
  // Followed, Qdrant's `api-key` header went to the other address with every request, and an
  // OpenAI client's key was dropped there, which then said "You didn't provide an API key".
  const asked: string[] = [];
  await withServer((req) => {
    asked.push(`${req.method} ${new URL(req.url).pathname} ${req.headers.get("api-key")}`);
    const path = new URL(req.url).pathname;
    if (path === "/elsewhere") return new Response("{}");
    return new Response(null, {
      status: path === "/moved" ? 301 : 307,
      headers: { location: "http://user:hunter2@127.0.0.1:9/elsewhere" },
    });
  }, async (origin) => {
    const post = cappedFetch(1000);
    for (const path of ["/moved", "/temporary"]) {
      const error = await post(`${origin}${path}`, {
        method: "POST",
        headers: { "api-key": "secret" },
        body: "{}",
      }).then(() => undefined, (e) => e);
      assert.ok(error instanceof Error, path);
      assert.match(
        error.message,
        /^answered \d+, redirecting to http:\/\/user:\*\*\*@127\.0\.0\.1:9\/elsewhere: give that address itself; a redirect is not followed, so that the request and its key go nowhere else$/,
      );
      assert.doesNotMatch(error.message, /hunter2/);
      assert.equal((error as { endsRun?: boolean }).endsRun, true);
    }
    assert.deepEqual(asked, ["POST /moved secret", "POST /temporary secret"]);
  });
});
