/**
 * Which addresses one request may connect to: every public address, and
 * an internal one only when the flow names it (its host, the address or a
 * range containing it; a host or an address on one port, `host:8080`) in
 * `http: { allow: [...] }`.
 */

import {
  type Cidr,
  embeddedIpv4,
  formatIp,
  inCidr,
  type IpBytes,
  parseCidr,
  parseIp,
  specialRangeOf,
} from "./ip_address.ts";

/** An address a request may not reach, with what it is and how to allow it. */
export class RefusedAddressError extends Error {
  constructor(
    message: string,
    readonly host: string,
    readonly address: string,
    /** The address was a redirect's, not the URL the caller asked for. */
    readonly redirected = false,
  ) {
    super(message);
    this.name = "RefusedAddressError";
  }
}

/** The host name as URLs carry it (lowercase, punycode), without a trailing dot. */
function hostKey(host: string): string {
  let h = host.toLowerCase();
  try {
    h = new URL(`http://${host}/`).hostname;
  } catch {
    // not a valid host: compared as written, and never matches a URL's host
  }
  return h.endsWith(".") ? h.slice(0, -1) : h;
}

/**
 * An `allow` entry split into what it names and its port, if it gives one:
 * `host:8080`, `127.0.0.1:8080`, `[::1]:8080`. A bare IPv6 address has
 * colons of its own, so its port needs the brackets, as in a URL.
 */
function splitPort(entry: string): { name: string; port?: number } {
  const bracketed = /^\[([^\]]*)\](?::(\d+))?$/.exec(entry);
  if (bracketed) {
    return bracketed[2] === undefined
      ? { name: bracketed[1] }
      : { name: bracketed[1], port: Number(bracketed[2]) };
  }
  const hostPort = /^([^:]*):(\d+)$/.exec(entry);
  return hostPort ? { name: hostPort[1], port: Number(hostPort[2]) } : { name: entry };
}

/**
 * Why an `allow` entry is unusable, or undefined when it is a host name,
 * an IP address or a CIDR range, a host or an address with a port. For
 * the flow file's schema and for fetchLimited, which refuses a bad list
 * rather than ignore an entry.
 */
export function allowEntryProblem(given: string): string | undefined {
  const { name: entry, port } = splitPort(given);
  if (port !== undefined && (port < 1 || port > 65535)) {
    return `${JSON.stringify(given)}: ${port} is not a port (1 to 65535)`;
  }
  if (entry.includes("/") && parseIp(entry.slice(0, entry.lastIndexOf("/")))) {
    if (port !== undefined) {
      return `${JSON.stringify(given)}: a range takes no port; list host:port or address:port`;
    }
    return parseCidr(entry) ? undefined : `${JSON.stringify(entry)} is not a valid CIDR range`;
  }
  // "::1:8401" is an IPv6 address, ::1:8401, though it reads as ::1 on port 8401.
  const tail = given.startsWith("[") ? null : /^(.*::.*):(\d{1,5})$/.exec(entry);
  if (tail && parseIp(entry) && parseIp(tail[1])) {
    return `${JSON.stringify(given)} is the IPv6 address ${entry}; for ${tail[1]} on port ` +
      `${tail[2]} write "[${tail[1]}]:${tail[2]}" (or "[${entry}]" for that address)`;
  }
  if (parseIp(entry)) return undefined;
  if (entry.includes("*")) {
    return `${
      JSON.stringify(given)
    }: wildcards are not supported; list each host, or its address range`;
  }
  if (!/[\s/\\@:?#%]/.test(entry) && URL.canParse(`http://${entry}/`)) return undefined;
  return `${JSON.stringify(given)} is not a host name, an IP address or a CIDR range, ` +
    `with a port or without (e.g. "intranet.example", "127.0.0.1:8080", "10.0.0.0/8")`;
}

/** Every port, for an entry that names none. */
const ANY_PORT = 0;

/** The allow list of one request, parsed once. */
export class AddressRule {
  /** Host names allowed, each with the ports it is allowed on (ANY_PORT: all). */
  readonly #hosts = new Map<string, Set<number>>();
  readonly #ranges: { cidr: Cidr; port: number }[] = [];

  /** Throws naming the first entry that is neither a host, an address nor a range. */
  constructor(allow: readonly string[] = []) {
    for (const given of allow) {
      const problem = allowEntryProblem(given);
      if (problem) throw new Error(`http.allow: ${problem}`);
      const { name: entry, port = ANY_PORT } = splitPort(given);
      const ip = entry.includes("/") ? undefined : parseIp(entry);
      if (entry.includes("/")) this.#ranges.push({ cidr: parseCidr(entry)!, port });
      else if (ip) this.#ranges.push({ cidr: { base: ip, bits: ip.length * 8 }, port });
      else {
        const key = hostKey(entry);
        const ports = this.#hosts.get(key) ?? new Set();
        this.#hosts.set(key, ports.add(port));
      }
    }
  }

  /**
   * Whether the URL's host is allowed by name on `port`, so any address it
   * resolves to may be reached there.
   */
  allowsHost(host: string, port: number): boolean {
    const ports = this.#hosts.get(hostKey(host));
    return ports !== undefined && (ports.has(ANY_PORT) || ports.has(port));
  }

  /**
   * Undefined when `host` (as the URL names it) may connect to `address`
   * on `port`; else the refusal, which names both and says how to allow them.
   */
  check(host: string, address: string, port: number): RefusedAddressError | undefined {
    const ip = parseIp(address);
    if (!ip) return new RefusedAddressError(`${address} is not an IP address`, host, address);
    const special = specialRangeOf(ip);
    if (!special || this.allowsHost(host, port) || this.#allowsIp(ip, port)) return undefined;
    const shown = formatIp(ip);
    const isLiteral = parseIp(host) !== undefined;
    const what = isLiteral ? `${shown} port ${port}` : `${host} (${shown}) port ${port}`;
    const withPort = (name: string) => `${name.includes(":") ? `[${name}]` : name}:${port}`;
    const entries = isLiteral
      ? [withPort(shown), shown, special.cidr]
      : [withPort(host), host, shown, special.cidr];
    return new RefusedAddressError(
      `refused to connect to ${what}: ${special.name} address (${special.cidr}), not the public ` +
        `internet; to let this flow reach it, add it to the flow file: ` +
        `http: { allow: [${JSON.stringify(entries[0])}] }` +
        ` (or ${entries.slice(1).map((e) => JSON.stringify(e)).join(" or ")}: every port)`,
      host,
      shown,
    );
  }

  #allowsIp(ip: IpBytes, port: number): boolean {
    const inner = embeddedIpv4(ip)?.v4;
    return this.#ranges.some((r) =>
      (r.port === ANY_PORT || r.port === port) &&
      (inCidr(ip, r.cidr) || (inner !== undefined && inCidr(inner, r.cidr)))
    );
  }
}
