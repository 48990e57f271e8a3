/**
 * One HTTP GET (one hop: redirects are the caller's) that connects only to
 * an address the request's AddressRule accepts, the very address checked.
 *
 * Why node:http(s) with a `lookup` hook and not fetch(): a check of a name
 * followed by fetch(url) resolves the name twice, and the second answer
 * (DNS rebinding, a TTL of 0) may be 127.0.0.1. Measured in Deno 2.9.6:
 *  - node:http and node:https call the `lookup` option and connect to the
 *    address it returns (a lookup answering 127.0.0.2 for `foo.invalid`
 *    reached a server bound only to 127.0.0.2), and node:https still
 *    verifies the certificate against the URL's host name (SNI from the
 *    host; a certificate for `localhost` failed for another name with
 *    ERR_TLS_CERT_ALTNAME_INVALID, a self-signed one failed);
 *  - the socket's `remoteAddress` is known on `connect`, before a byte of
 *    the request is sent over TLS, so it is checked again there;
 *  - fetch() with Deno.createHttpClient({ proxy: { transport: "tcp" } })
 *    connects to a given IP but then speaks plain HTTP to https URLs
 *    ("invalid HTTP version parsed"), and createHttpClient has no resolver
 *    hook; Deno.resolveDns skips /etc/hosts and would need an HTTP/1.1
 *    client written here over Deno.connect + Deno.startTls.
 * A fresh connection per request (`agent: false`): a pooled socket opened
 * under one request's allow list must not serve another's.
 */

import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http, { type ClientRequest, type IncomingMessage } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import type { AddressRule, RefusedAddressError } from "./address_guard.ts";
import { formatIp, parseIp } from "./ip_address.ts";

type LookupCallback = (
  err: Error | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** An answered request: the response, its body not read yet. */
export interface OpenResponse {
  request: ClientRequest;
  response: IncomingMessage;
}

/**
 * GETs `url` with `headers` (sent as given, Host set from the URL), once.
 * Rejects with the RefusedAddressError when the host is, or resolves only
 * to, addresses the rule refuses; `signal` destroys the connection at any
 * point, the body's reading included.
 */
export function checkedGet(
  url: URL,
  headers: Record<string, string>,
  rule: AddressRule,
  signal: AbortSignal,
): Promise<OpenResponse> {
  signal.throwIfAborted();
  const host = url.hostname;
  const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
  const literal = parseIp(host);
  if (literal) {
    const refused = rule.check(host, formatIp(literal), port);
    if (refused) return Promise.reject(refused);
  }
  let refused: RefusedAddressError | undefined;

  /** Resolves like the system does (/etc/hosts, then DNS), and hands on only accepted addresses. */
  const lookup = (
    name: string,
    options: { all?: boolean; family?: number; hints?: number },
    callback: LookupCallback,
  ) => {
    dnsLookup(
      name,
      { all: true, family: options.family ?? 0, hints: options.hints },
      (err, all) => {
        if (err) return callback(err, []);
        const accepted = all.filter((a) => rule.check(host, a.address, port) === undefined);
        if (accepted.length === 0) {
          refused = all.length ? rule.check(host, all[0].address, port) : undefined;
          return callback(refused ?? new Error(`${name} resolved to no address`), []);
        }
        if (options.all) callback(null, accepted);
        else callback(null, accepted[0].address, accepted[0].family);
      },
    );
  };

  return new Promise<OpenResponse>((resolve, reject) => {
    const request = (url.protocol === "https:" ? https : http).request({
      method: "GET",
      hostname: literal ? formatIp(literal) : host,
      port: url.port || undefined,
      path: url.pathname + url.search,
      headers,
      agent: false,
      lookup,
    } as http.RequestOptions);
    const onAbort = () => request.destroy(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    request.on("close", () => signal.removeEventListener("abort", onAbort));
    request.on("socket", (socket: Socket) => {
      socket.once("connect", () => {
        // What the socket reached, whatever resolved it: checked again.
        const address = socket.remoteAddress;
        const again = address === undefined ? undefined : rule.check(host, address, port);
        if (again) {
          refused = again;
          request.destroy(again);
        }
      });
    });
    request.on("response", (response) => {
      // A body left unread (a redirect, an error status) and then cut off must not throw
      // unhandled; whoever reads the body sees its errors through its own listeners.
      response.on("error", () => {});
      resolve({ request, response });
    });
    request.on("error", (err) => reject(refused ?? err));
    request.end();
  });
}
