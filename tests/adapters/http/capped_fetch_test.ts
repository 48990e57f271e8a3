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
