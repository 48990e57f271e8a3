/**
 * Which addresses one request may connect to: every public address, and
 * an internal one only when the flow names it (its host, the address or a
 * range containing it) in `http: { allow: [...] }`.
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
  constructor(message: string, readonly host: string, readonly address: string) {
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
 * Why an `allow` entry is unusable, or undefined when it is a host name,
 * an IP address or a CIDR range. For the flow file's schema and for
 * fetchLimited, which refuses a bad list rather than ignore an entry.
 */
export function allowEntryProblem(entry: string): string | undefined {
  if (entry.includes("/") && parseIp(entry.slice(0, entry.lastIndexOf("/")))) {
    return parseCidr(entry) ? undefined : `${JSON.stringify(entry)} is not a valid CIDR range`;
  }
  if (parseIp(entry)) return undefined;
  if (entry.includes("*")) {
    return `${
      JSON.stringify(entry)
    }: wildcards are not supported; list each host, or its address range`;
  }
  if (!/[\s/\\@:?#%]/.test(entry) && URL.canParse(`http://${entry}/`)) return undefined;
  return `${JSON.stringify(entry)} is not a host name, an IP address or a CIDR range ` +
    `(e.g. "intranet.example", "127.0.0.1", "10.0.0.0/8")`;
}

/** The allow list of one request, parsed once. */
export class AddressRule {
  readonly #hosts = new Set<string>();
  readonly #ranges: Cidr[] = [];

  /** Throws naming the first entry that is neither a host, an address nor a range. */
  constructor(allow: readonly string[] = []) {
    for (const entry of allow) {
      const problem = allowEntryProblem(entry);
      if (problem) throw new Error(`http.allow: ${problem}`);
      const ip = entry.includes("/") ? undefined : parseIp(entry);
      if (entry.includes("/")) this.#ranges.push(parseCidr(entry)!);
      else if (ip) this.#ranges.push({ base: ip, bits: ip.length * 8 });
      else this.#hosts.add(hostKey(entry));
    }
  }

  /** Whether the URL's host is allowed by name, so any address it resolves to may be reached. */
  allowsHost(host: string): boolean {
    return this.#hosts.has(hostKey(host));
  }

  /**
   * Undefined when `host` (as the URL names it) may connect to `address`;
   * else the refusal, which names both and says how to allow them.
   */
  check(host: string, address: string): RefusedAddressError | undefined {
    const ip = parseIp(address);
    if (!ip) return new RefusedAddressError(`${address} is not an IP address`, host, address);
    const special = specialRangeOf(ip);
    if (!special || this.allowsHost(host) || this.#allowsIp(ip)) return undefined;
    const shown = formatIp(ip);
    const isLiteral = parseIp(host) !== undefined;
    const what = isLiteral ? shown : `${host} (${shown})`;
    const entries = isLiteral ? [shown, special.cidr] : [host, shown, special.cidr];
    return new RefusedAddressError(
      `refused to connect to ${what}: ${special.name} address (${special.cidr}), not the public ` +
        `internet; to let this flow reach it, add it to the flow file: ` +
        `http: { allow: [${JSON.stringify(entries[0])}] }` +
        ` (or ${entries.slice(1).map((e) => JSON.stringify(e)).join(" or ")})`,
      host,
      shown,
    );
  }

  #allowsIp(ip: IpBytes): boolean {
    const inner = embeddedIpv4(ip)?.v4;
    return this.#ranges.some((r) => inCidr(ip, r) || (inner !== undefined && inCidr(inner, r)));
  }
}
