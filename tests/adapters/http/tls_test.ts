import assert from "node:assert/strict";

const SCRIPT = new URL("./_tls_fetch.ts", import.meta.url).pathname;
const cert = (name: string) => new URL(`./testdata/${name}.cert.pem`, import.meta.url).pathname;

/** Fetches https://localhost from a server holding `served`'s certificate, trusting `trusted`'s. */
async function fetchOverTls(served: string, trusted?: string): Promise<string> {
  const env: Record<string, string> = trusted ? { NODE_EXTRA_CA_CERTS: cert(trusted) } : {};
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, served],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test("https verifies the certificate against the URL's host name, over the checked address", async () => {
  assert.equal(await fetchOverTls("localhost", "localhost"), "tls ok");
  assert.match(
    await fetchOverTls("other.test", "other.test"),
    /^Error: GET https:\/\/localhost:\d+\/: Hostname\/IP does not match certificate's altnames: Host: localhost\. is not in the cert's altnames: DNS:other\.test$/,
  );
  assert.match(
    await fetchOverTls("localhost"),
    /^Error: GET https:\/\/localhost:\d+\/: self-signed certificate$/,
  );
});
