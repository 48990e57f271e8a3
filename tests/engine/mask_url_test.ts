import assert from "node:assert/strict";
import { maskSecretsOf, maskUrlsIn } from "../../engine/mask_url.ts";

Deno.test("maskUrlsIn masks the password of every URL in a message and leaves the rest", () => {
  assert.equal(
    maskUrlsIn(
      `GET http://me:pw@a.example/feed: HTTP 503; then "https://tok@b.example/x.json" failed`,
    ),
    `GET http://me:***@a.example/feed: HTTP 503; then "https://***@b.example/x.json" failed`,
  );
  assert.equal(
    maskUrlsIn("https://a.example/feed?user=me&password=s3cret failed"),
    "https://a.example/feed?user=me&password=*** failed",
  );
  const plain = "GET https://example.com/feed.xml: HTTP 404 (see https://example.com/help)";
  assert.equal(maskUrlsIn(plain), plain);
  // A URL as the message ends, with no path: the userinfo still ends at the host.
  assert.equal(
    maskUrlsIn("cannot reach http://me:pw@host:8080"),
    "cannot reach http://me:***@host:8080",
  );
});

Deno.test("maskSecretsOf also masks the password where a message decoded it", () => {
  const url = "http://me:p%40ss@a.example/feed";
  assert.equal(
    maskSecretsOf(`fetch http://me:p%40ss@a.example/feed as me / p@ss: refused`, url),
    "fetch http://me:***@a.example/feed as me / ***: refused",
  );
});
