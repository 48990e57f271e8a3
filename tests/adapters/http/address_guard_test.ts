import assert from "node:assert/strict";
import {
  AddressRule,
  allowEntryProblem,
  RefusedAddressError,
} from "../../../adapters/http/address_guard.ts";

Deno.test("public addresses pass with no allow list; internal ones are refused, saying how to allow them", () => {
  const rule = new AddressRule();
  assert.equal(rule.check("example.com", "93.184.215.14", 80), undefined);
  assert.equal(rule.check("example.com", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", 80), undefined);

  const literal = rule.check("127.0.0.1", "127.0.0.1", 80);
  assert.ok(literal instanceof RefusedAddressError);
  assert.equal(
    literal.message,
    "refused to connect to 127.0.0.1 port 80: loopback address (127.0.0.0/8), not the public internet; " +
      'to let this flow reach it, add it to the flow file: http: { allow: ["127.0.0.1:80"] } ' +
      '(or "127.0.0.1" or "127.0.0.0/8": every port)',
  );
  const named = rule.check("intranet.example", "10.1.2.3", 80);
  assert.match(
    named!.message,
    /^refused to connect to intranet\.example \(10\.1\.2\.3\) port 80: private address \(10\.0\.0\.0\/8\)/,
  );
  assert.match(
    named!.message,
    /http: \{ allow: \["intranet\.example:80"\] \} \(or "intranet\.example" or "10\.1\.2\.3" or "10\.0\.0\.0\/8": every port\)$/,
  );
  assert.deepEqual([named!.host, named!.address], ["intranet.example", "10.1.2.3"]);
  assert.match(
    rule.check("x", "::ffff:169.254.169.254", 80)!.message,
    /to x \(::ffff:a9fe:a9fe\) port 80: link-local/,
  );
});

Deno.test("a host allowed by name may reach any address; names compare as URLs write them", () => {
  const rule = new AddressRule(["Intranet.Example", "localhost."]);
  assert.equal(rule.check("intranet.example", "10.1.2.3", 80), undefined);
  assert.equal(rule.check("intranet.example.", "192.168.0.1", 80), undefined);
  assert.equal(rule.check("localhost", "127.0.0.1", 80), undefined);
  assert.equal(rule.check("localhost", "::1", 80), undefined);
  assert.ok(rule.check("other.example", "10.1.2.3", 80), "only the named host");
  assert.ok(rule.check("sub.intranet.example", "10.1.2.3", 80), "not its subdomains");
  assert.ok(rule.allowsHost("INTRANET.example", 443));
});

Deno.test("an allowed address or range lets every spelling of it through, and nothing beside it", () => {
  const rule = new AddressRule(["127.0.0.1", "10.0.0.0/8", "fd00::/8"]);
  assert.equal(rule.check("127.0.0.1", "127.0.0.1", 80), undefined);
  assert.equal(
    rule.check("h", "::ffff:127.0.0.1", 80),
    undefined,
    "IPv4-mapped form of an allowed address",
  );
  assert.equal(
    rule.check("h", "64:ff9b::7f00:1", 80),
    undefined,
    "NAT64 form of an allowed address",
  );
  assert.ok(rule.check("127.0.0.2", "127.0.0.2", 80), "127.0.0.2 is not 127.0.0.1");
  assert.ok(rule.check("h", "::1", 80), "::1 is not 127.0.0.1");
  assert.equal(rule.check("h", "10.9.8.7", 80), undefined);
  assert.ok(rule.check("h", "11.0.0.1", 80) === undefined, "public anyway");
  assert.ok(rule.check("h", "192.168.0.1", 80));
  assert.equal(rule.check("h", "fd12::1", 80), undefined);
  assert.ok(rule.check("h", "fc00::1", 80), "fc00::/7 is wider than the allowed fd00::/8");
  assert.equal(
    new AddressRule(["0x7f.1"]).check("h", "127.0.0.1", 80),
    undefined,
    "an entry in any spelling",
  );
});

Deno.test("an allow entry that is no host, address or range is refused, not ignored", () => {
  for (
    const ok of [
      "intranet.example",
      "localhost",
      "my_host.lan",
      "127.0.0.1",
      "::1",
      "10.0.0.0/8",
      "fc00::/7",
      "bücher.example",
      "host:8080",
      "127.0.0.1:6379",
      "[::1]:8080",
      "[::1]",
    ]
  ) {
    assert.equal(allowEntryProblem(ok), undefined, ok);
  }
  for (
    const bad of [
      "",
      "10.0.0.0/33",
      "http://intranet.example/",
      "a b",
      "user@host",
      "host:http",
      "host:0",
      "host:70000",
      "10.0.0.0/8:80",
      "::1:8080:x",
      "*.example",
    ]
  ) {
    assert.ok(allowEntryProblem(bad), bad);
  }
  // An address written as if a port followed it: read as one IPv6 address, it allowed nothing.
  assert.equal(
    allowEntryProblem("::1:8401"),
    '"::1:8401" is the IPv6 address ::1:8401; for ::1 on port 8401 write "[::1]:8401" ' +
      '(or "[::1:8401]" for that address)',
  );
  assert.equal(allowEntryProblem("[::1:8401]"), undefined);
  assert.throws(
    () => new AddressRule(["10.0.0.0/33"]),
    /^Error: http\.allow: "10\.0\.0\.0\/33" is not a valid CIDR range$/,
  );
  assert.throws(
    () => new AddressRule(["http://x/"]),
    /"http:\/\/x\/" is not a host name, an IP address or a CIDR range/,
  );
});

Deno.test("an entry with a port allows that port alone: allowing a test server is not allowing Redis beside it", () => {
  const rule = new AddressRule(["127.0.0.1:8765", "intranet.example:8443", "[::1]:9000"]);
  assert.equal(rule.check("127.0.0.1", "127.0.0.1", 8765), undefined);
  assert.match(rule.check("127.0.0.1", "127.0.0.1", 6379)!.message, /127\.0\.0\.1 port 6379/);
  assert.equal(rule.check("intranet.example", "10.1.2.3", 8443), undefined);
  assert.ok(rule.check("intranet.example", "10.1.2.3", 443));
  assert.equal(rule.check("h", "::1", 9000), undefined);
  assert.ok(rule.check("h", "::1", 9001));
  // The port's entry and an every-port entry of the same host add up.
  const both = new AddressRule(["intranet.example:8443", "intranet.example"]);
  assert.equal(both.check("intranet.example", "10.1.2.3", 22), undefined);
  assert.match(
    new AddressRule().check("::1", "::1", 8080)!.message,
    /allow: \["\[::1\]:8080"\] \} \(or "::1" or "::1\/128": every port\)/,
  );
});
