import assert from "node:assert/strict";
import {
  embeddedIpv4,
  formatIp,
  inCidr,
  parseCidr,
  parseIp,
  specialRangeOf,
} from "../../../adapters/http/ip_address.ts";

const ip = (text: string) => formatIp(parseIp(text)!);

Deno.test("every spelling of an IPv4 address a URL may carry reads as that address", () => {
  for (
    const spelling of [
      "127.0.0.1",
      "2130706433", // decimal
      "0x7f000001", // hex
      "0x7f.1", // hex, two parts
      "017700000001", // octal
      "0177.0.0.01", // octal parts
      "127.1", // two parts
      "127.0.1", // three parts
      "127.0.0.1.", // trailing dot
      "0X7F.0.0.1",
    ]
  ) {
    assert.equal(ip(spelling), "127.0.0.1", spelling);
    assert.equal(specialRangeOf(spelling)?.name, "loopback", spelling);
  }
  // What the WHATWG URL parser itself makes of them, which is what fetchLimited sees.
  assert.equal(new URL("http://2130706433/").hostname, "127.0.0.1");
  assert.equal(new URL("http://0x7f.1/").hostname, "127.0.0.1");
  assert.equal(new URL("http://017700000001/").hostname, "127.0.0.1");
  assert.equal(ip("0"), "0.0.0.0");
  assert.equal(ip("0xa9fea9fe"), "169.254.169.254");
});

Deno.test("host names and malformed addresses are not addresses", () => {
  for (
    const text of [
      "example.com",
      "localhost",
      "abc",
      "256.0.0.1",
      "1.2.3.4.5",
      "08.0.0.1",
      "0x1g",
      "",
      "::g",
      "1:2:3:4:5:6:7:8:9",
      "[::1",
    ]
  ) {
    assert.equal(parseIp(text), undefined, text);
  }
  assert.throws(() => specialRangeOf("example.com"), /not an IP address: "example.com"/);
});

Deno.test("IPv6 in every form reads as 16 bytes, written canonically", () => {
  assert.equal(ip("::1"), "::1");
  assert.equal(ip("[::1]"), "::1");
  assert.equal(ip("0:0:0:0:0:0:0:1"), "::1");
  assert.equal(ip("FE80::1%eth0"), "fe80::1");
  assert.equal(ip("::ffff:127.0.0.1"), "::ffff:7f00:1");
  assert.equal(ip("2001:DB8:0:0:1::1"), "2001:db8::1:0:0:1");
  assert.equal(parseIp("::")!.length, 16);
});

Deno.test("every IPv4 range that is not the public internet is named", () => {
  const cases: [string, string][] = [
    ["0.0.0.0", "0.0.0.0/8"],
    ["0.1.2.3", "0.0.0.0/8"],
    ["10.0.0.1", "10.0.0.0/8"],
    ["10.255.255.255", "10.0.0.0/8"],
    ["100.64.0.1", "100.64.0.0/10"],
    ["100.127.255.254", "100.64.0.0/10"],
    ["127.0.0.1", "127.0.0.0/8"],
    ["127.255.0.2", "127.0.0.0/8"],
    ["169.254.169.254", "169.254.0.0/16"],
    ["172.16.0.1", "172.16.0.0/12"],
    ["172.31.255.255", "172.16.0.0/12"],
    ["192.0.0.170", "192.0.0.0/24"],
    ["192.0.2.1", "192.0.2.0/24"],
    ["192.88.99.1", "192.88.99.0/24"],
    ["192.168.1.1", "192.168.0.0/16"],
    ["198.18.0.1", "198.18.0.0/15"],
    ["198.19.255.255", "198.18.0.0/15"],
    ["198.51.100.7", "198.51.100.0/24"],
    ["203.0.113.9", "203.0.113.0/24"],
    ["224.0.0.1", "224.0.0.0/4"],
    ["239.255.255.250", "224.0.0.0/4"],
    ["240.0.0.1", "240.0.0.0/4"],
    ["255.255.255.255", "255.255.255.255/32"],
  ];
  for (const [address, cidr] of cases) assert.equal(specialRangeOf(address)?.cidr, cidr, address);
  assert.equal(specialRangeOf("255.255.255.255")?.name, "broadcast");
  assert.equal(specialRangeOf("224.0.0.1")?.name, "multicast");
  assert.equal(specialRangeOf("100.64.0.1")?.name, "carrier-grade NAT (shared address space)");
  assert.match(specialRangeOf("169.254.169.254")!.name, /^link-local/);
  assert.equal(specialRangeOf("0.0.0.0")?.name, "unspecified (this network)");
});

Deno.test("public IPv4 addresses, the neighbours of special ranges among them, pass", () => {
  for (
    const address of [
      "1.1.1.1",
      "8.8.8.8",
      "9.255.255.255",
      "11.0.0.0",
      "100.63.255.255",
      "100.128.0.0",
      "126.255.255.255",
      "128.0.0.0",
      "169.253.255.255",
      "169.255.0.0",
      "172.15.255.255",
      "172.32.0.0",
      "192.0.1.1",
      "192.167.255.255",
      "192.169.0.0",
      "198.17.255.255",
      "198.20.0.0",
      "223.255.255.255",
      "93.184.215.14",
    ]
  ) {
    assert.equal(specialRangeOf(address), undefined, address);
  }
});

Deno.test("every IPv6 range that is not the public internet is named", () => {
  const cases: [string, string, RegExp][] = [
    ["::", "::/128", /^unspecified$/],
    ["::1", "::1/128", /^loopback$/],
    ["::127.0.0.1", "::/96", /IPv4-compatible/],
    ["fe80::1", "fe80::/10", /^link-local$/],
    ["febf:ffff::1", "fe80::/10", /^link-local$/],
    ["fec0::1", "fec0::/10", /site-local/],
    ["fc00::1", "fc00::/7", /unique local/],
    ["fd12:3456:789a::1", "fc00::/7", /unique local/],
    ["ff02::1", "ff00::/8", /^multicast$/],
    ["64:ff9b:1::1", "64:ff9b:1::/48", /NAT64 local use/],
    ["100::1", "100::/64", /discard/],
    ["2001::1", "2001::/32", /Teredo/],
    ["2001:2::1", "2001:2::/48", /benchmarking/],
    ["2001:10::1", "2001:10::/28", /ORCHID/],
    ["2001:db8::1", "2001:db8::/32", /documentation/],
    ["3fff::1", "3fff::/20", /documentation/],
    ["4000::1", "2000::/3", /not global unicast/],
    ["1::1", "2000::/3", /not global unicast/],
  ];
  for (const [address, cidr, name] of cases) {
    const hit = specialRangeOf(address);
    assert.equal(hit?.cidr, cidr, address);
    assert.match(hit!.name, name, address);
  }
});

Deno.test("an IPv6 address standing for an IPv4 one is judged by it", () => {
  const cases: [string, string, RegExp][] = [
    ["::ffff:127.0.0.1", "127.0.0.0/8", /^loopback, as IPv4-mapped/],
    ["::ffff:7f00:1", "127.0.0.0/8", /^loopback, as IPv4-mapped/],
    ["[::ffff:169.254.169.254]", "169.254.0.0/16", /as IPv4-mapped/],
    ["::ffff:0:10.0.0.1", "10.0.0.0/8", /^private, as IPv4-translated/],
    ["64:ff9b::127.0.0.1", "127.0.0.0/8", /^loopback, as NAT64/],
    ["64:ff9b::c0a8:101", "192.168.0.0/16", /^private, as NAT64/],
    ["2002:7f00:1::", "127.0.0.0/8", /^loopback, as 6to4/],
    ["2002:a9fe:a9fe::1", "169.254.0.0/16", /as 6to4/],
  ];
  for (const [address, cidr, name] of cases) {
    const hit = specialRangeOf(address);
    assert.equal(hit?.cidr, cidr, address);
    assert.match(hit!.name, name, address);
  }
  for (
    const address of [
      "::ffff:8.8.8.8",
      "64:ff9b::808:808",
      "2002:808:808::1",
      "2606:4700::1111",
      "2a00:1450:4001:80b::200e",
    ]
  ) {
    assert.equal(specialRangeOf(address), undefined, address);
  }
  assert.equal(formatIp(embeddedIpv4(parseIp("::ffff:10.1.2.3")!)!.v4), "10.1.2.3");
  assert.equal(embeddedIpv4(parseIp("2606:4700::1111")!), undefined);
});

Deno.test("CIDR ranges parse and contain what they should", () => {
  const ten = parseCidr("10.0.0.0/8")!;
  assert.ok(inCidr(parseIp("10.200.3.4")!, ten));
  assert.ok(!inCidr(parseIp("11.0.0.0")!, ten));
  assert.ok(!inCidr(parseIp("::ffff:10.0.0.1")!, ten), "IPv6 is not matched against IPv4 ranges");
  const odd = parseCidr("172.16.0.0/12")!;
  assert.ok(inCidr(parseIp("172.31.0.1")!, odd));
  assert.ok(!inCidr(parseIp("172.32.0.1")!, odd));
  assert.ok(inCidr(parseIp("fd00::5")!, parseCidr("fc00::/7")!));
  assert.ok(inCidr(parseIp("1.2.3.4")!, parseCidr("0.0.0.0/0")!));
  for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "nope/8", "10.0.0.0"]) {
    assert.equal(parseCidr(bad), undefined, bad);
  }
});
