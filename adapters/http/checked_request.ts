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
 * Bytes the socket may read beyond `maxBytes` of body: the status line,
 * headers and chunk framing of a reply whose body is within the cap.
 */
export function wireAllowance(maxBytes: number): number {
  return 64 * 1024 + Math.ceil(maxBytes / 4);
}

/** More bytes came over the socket than a reply within the cap can take (see checkedGet). */
export class WireTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(
      `the server sent more than ${maxBytes} bytes (maxBytes) with its headers and framing ` +
        `(endless 1xx replies, chunk extensions or headers)`,
    );
    this.name = "WireTooLargeError";
  }
}

/**
 * GETs `url` with `headers` (sent as given, Host set from the URL), once.
 * Rejects with the RefusedAddressError when the host is, or resolves only
 * to, addresses the rule refuses; `signal` destroys the connection at any
 * point, the body's reading included. The socket reads at most `maxBytes`
 * and wireAllowance more in all: the body's own cap (capped_body.ts) sees
 * only body bytes, and a server sending endless `100 Continue` lines or a
 * chunk extension that never ends kept the parser reading, and buffering,
 * until the timeout (about 800 MB of memory in a 10 s timeout, in review).
 */
export function checkedGet(
  url: URL,
  headers: Record<string, string>,
  rule: AddressRule,
  signal: AbortSignal,
  maxBytes = Number.POSITIVE_INFINITY,
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

  let answered: IncomingMessage | undefined;
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
      const limit = maxBytes + wireAllowance(maxBytes);
      let read = 0;
      socket.on("data", (chunk: Uint8Array) => {
        read += chunk.length;
        if (read <= limit) return;
        // The body's reader (if the headers came) fails with this error, not "aborted".
        const error = new WireTooLargeError(maxBytes);
        answered?.destroy(error);
        request.destroy(error);
      });
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
      answered = response;
      // A body left unread (a redirect, an error status) and then cut off must not throw
      // unhandled; whoever reads the body sees its errors through its own listeners.
      response.on("error", () => {});
      resolve({ request, response });
    });
    request.on("error", (err) => reject(refused ?? err));
    request.end();
  });
}
