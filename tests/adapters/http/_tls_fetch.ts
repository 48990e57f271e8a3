/**
 * Run as a subprocess by tls_test.ts, with NODE_EXTRA_CA_CERTS trusting a
 * test certificate (node:https reads it once, at start): serves https on
 * 127.0.0.1 with the certificate named, fetches https://localhost:<port>/,
 * and prints the body or the error.
 *
 *   deno run -A tests/adapters/http/_tls_fetch.ts localhost
 */

import { fetchLimited } from "../../../adapters/http/http_fetch.ts";

const name = Deno.args[0] ?? "localhost";
const file = (suffix: string) =>
  Deno.readTextFileSync(new URL(`testdata/${name}.${suffix}.pem`, import.meta.url));
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, cert: file("cert"), key: file("key"), onListen() {} },
  () => new Response("tls ok"),
);
try {
  const res = await fetchLimited(`https://localhost:${server.addr.port}/`, {
    allow: ["localhost"],
    timeout: 5_000,
  });
  console.log(new TextDecoder().decode(res.body));
} catch (err) {
  console.log(String(err));
} finally {
  await server.shutdown();
}
