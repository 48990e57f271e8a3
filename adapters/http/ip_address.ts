/**
 * IP addresses as bytes, and which of them are not the public internet.
 * A scraper fetches URLs that others wrote (a feed's links, a redirect's
 * Location), so an address that only makes sense inside a network (the
 * metadata service at 169.254.169.254, a database on 10.0.0.5, the host's
 * own 127.0.0.1) must not be reached by accident.
 */

/** An IPv4 (4 bytes) or IPv6 (16 bytes) address. */
export type IpBytes = Uint8Array;

/** A range that is not the public internet, and what it is for. */
export interface SpecialRange {
  /** The range in CIDR notation, e.g. `127.0.0.0/8`. */
  cidr: string;
  /** What the range is, e.g. `loopback`. */
  name: string;
}

/**
 * Parses an IP address the way the WHATWG URL parser reads a host, so every
 * spelling a URL may carry counts: `2130706433`, `0x7f.1`, `017700000001`
 * and `127.1` are all 127.0.0.1; IPv6 with or without brackets, with an
 * embedded IPv4 tail (`::ffff:127.0.0.1`) or a zone (`fe80::1%eth0`).
 * Undefined for anything that is not an address (a host name).
 */
export function parseIp(text: string): IpBytes | undefined {
  const t = text.trim();
  if (t.includes(":")) return parseIpv6(t);
  return parseIpv4(t);
}

function parseIpv4(text: string): IpBytes | undefined {
  // Only digits, dots and hex: anything else is a host name for the URL parser.
  if (!/^[0-9a-fx.]+$/i.test(text)) return undefined;
  let host: string;
  try {
    host = new URL(`http://${text}/`).hostname;
  } catch {
    return undefined; // "256.1.1.1", "0x1g": the URL parser refuses them as hosts too
  }
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host);
  return m ? Uint8Array.from(m.slice(1).map(Number)) : undefined;
}

function parseIpv6(text: string): IpBytes | undefined {
  let t = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const zone = t.indexOf("%");
  if (zone >= 0) t = t.slice(0, zone);
  let canonical: string;
  try {
    // The URL parser validates and writes it canonically: lowercase hex, no IPv4 tail.
    canonical = new URL(`http://[${t}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const [head, tail] = canonical.includes("::") ? canonical.split("::") : [canonical, undefined];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined
    ? left
    : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    bytes[2 * i] = v >> 8;
    bytes[2 * i + 1] = v & 0xff;
  });
  return bytes;
}

/** The address written canonically: dotted IPv4, compressed lowercase IPv6. */
export function formatIp(ip: IpBytes): string {
  if (ip.length === 4) return ip.join(".");
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip[i] << 8) | ip[i + 1]).toString(16));
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}

/** A parsed CIDR range: its first bytes and the length of its prefix in bits. */
export interface Cidr {
  base: IpBytes;
  bits: number;
}

/** Parses `10.0.0.0/8` or `fc00::/7`; undefined when it is not one. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.lastIndexOf("/");
  if (slash < 0) return undefined;
  const base = parseIp(text.slice(0, slash));
  const bitsText = text.slice(slash + 1);
  if (!base || !/^\d{1,3}$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  return bits <= base.length * 8 ? { base, bits } : undefined;
}

/** Whether `ip` is in the range (IPv4 against IPv4 ranges, IPv6 against IPv6). */
export function inCidr(ip: IpBytes, range: Cidr): boolean {
  if (ip.length !== range.base.length) return false;
  let bits = range.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ip[i] & mask) !== (range.base[i] & mask)) return false;
  }
  return true;
}

/**
 * The IPv4 address inside an IPv6 one that stands for it: IPv4-mapped
 * (`::ffff:a.b.c.d`, which the kernel connects to as IPv4), IPv4-translated
 * (`::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`, which a gateway forwards
 * to a.b.c.d) and 6to4 (`2002:AABB:CCDD::`).
 */
export function embeddedIpv4(ip: IpBytes): { v4: IpBytes; via: string } | undefined {
  if (ip.length !== 16) return undefined;
  for (const [cidr, via] of EMBEDDING_V4) {
    if (inCidr(ip, cidr)) return { v4: ip.slice(12, 16), via };
  }
  if (inCidr(ip, SIX_TO_FOUR)) return { v4: ip.slice(2, 6), via: "6to4 (2002::/16)" };
  return undefined;
}

const cidr = (text: string): Cidr => parseCidr(text)!;

const EMBEDDING_V4: [Cidr, string][] = [
  [cidr("::ffff:0:0/96"), "IPv4-mapped IPv6 (::ffff:0:0/96)"],
  [cidr("::ffff:0:0:0/96"), "IPv4-translated IPv6 (::ffff:0:0:0/96)"],
  [cidr("64:ff9b::/96"), "NAT64 (64:ff9b::/96)"],
];
const SIX_TO_FOUR = cidr("2002::/16");

const range = (text: string, name: string) => ({ cidr: text, name, parsed: cidr(text) });

/** IANA's special-purpose IPv4 ranges that are not the public internet; the first match names it. */
const V4_RANGES = [
  range("0.0.0.0/8", "unspecified (this network)"),
  range("10.0.0.0/8", "private"),
  range("100.64.0.0/10", "carrier-grade NAT (shared address space)"),
  range("127.0.0.0/8", "loopback"),
  range("169.254.0.0/16", "link-local (cloud metadata services live here)"),
  range("172.16.0.0/12", "private"),
  range("192.0.0.0/24", "IETF protocol assignments (NAT64 discovery among them)"),
  range("192.0.2.0/24", "documentation (TEST-NET-1)"),
  range("192.88.99.0/24", "6to4 relay anycast (deprecated)"),
  range("192.168.0.0/16", "private"),
  range("198.18.0.0/15", "benchmarking"),
  range("198.51.100.0/24", "documentation (TEST-NET-2)"),
  range("203.0.113.0/24", "documentation (TEST-NET-3)"),
  range("224.0.0.0/4", "multicast"),
  range("255.255.255.255/32", "broadcast"),
  range("240.0.0.0/4", "reserved"),
];

/** IPv6 ranges that are not the public internet; anything outside 2000::/3 is not either. */
const V6_RANGES = [
  range("::/128", "unspecified"),
  range("::1/128", "loopback"),
  range("::/96", "IPv4-compatible IPv6 (deprecated)"),
  range("64:ff9b:1::/48", "NAT64 local use"),
  range("100::/64", "discard-only"),
  range("2001::/32", "Teredo"),
  range("2001:2::/48", "benchmarking"),
  range("2001:10::/28", "ORCHID (deprecated)"),
  range("2001:20::/28", "ORCHIDv2"),
  range("2001:db8::/32", "documentation"),
  range("3fff::/20", "documentation"),
  range("fc00::/7", "unique local (ULA)"),
  range("fe80::/10", "link-local"),
  range("fec0::/10", "site-local (deprecated)"),
  range("ff00::/8", "multicast"),
];
const GLOBAL_UNICAST = cidr("2000::/3");

/**
 * The special range `ip` lies in, or undefined for a public address. An
 * IPv6 address that stands for an IPv4 one (mapped, NAT64, 6to4) is judged
 * by that IPv4 address. Accepts bytes or any spelling `parseIp` reads;
 * throws for text that is not an IP address.
 *
 * @example
 * ```ts
 * import { specialRangeOf } from "./ip_address.ts";
 * if (specialRangeOf("0x7f.1")?.name !== "loopback") throw new Error("127.0.0.1 is loopback");
 * if (specialRangeOf("93.184.215.14") !== undefined) throw new Error("public");
 * ```
 */
export function specialRangeOf(address: string | IpBytes): SpecialRange | undefined {
  const ip = typeof address === "string" ? parseIp(address) : address;
  if (!ip) throw new Error(`not an IP address: ${JSON.stringify(address)}`);
  if (ip.length === 4) {
    const hit = V4_RANGES.find((r) => inCidr(ip, r.parsed));
    return hit && { cidr: hit.cidr, name: hit.name };
  }
  const inner = embeddedIpv4(ip);
  if (inner) {
    const hit = specialRangeOf(inner.v4);
    return hit && { cidr: hit.cidr, name: `${hit.name}, as ${inner.via}` };
  }
  const hit = V6_RANGES.find((r) => inCidr(ip, r.parsed));
  if (hit) return { cidr: hit.cidr, name: hit.name };
  if (!inCidr(ip, GLOBAL_UNICAST)) {
    return { cidr: "2000::/3", name: "reserved (not global unicast)" };
  }
  return undefined;
}
