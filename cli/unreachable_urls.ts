import { AddressRule } from "../adapters/http/address_guard.ts";
import { formatIp, parseIp } from "../adapters/http/ip_address.ts";
import type { Flow } from "../engine/flow.ts";
import { maskUrl } from "../engine/mask_url.ts";

/** Source config fields that hold URLs to fetch. */
const URL_FIELDS = ["url", "sitemap"];

/**
 * What `check` can tell without a lookup: the URLs of the flow's sources
 * whose host is an address (or `localhost`) that `http.allow` does not let
 * the flow reach, so every fetch of them would be refused at run time. A
 * host name is left to the run, which resolves it.
 */
export function unreachableUrls(flow: Flow): string[] {
  const rule = new AddressRule(flow.http?.allow ?? []);
  const out: string[] = [];
  for (const source of flow.sources) {
    const config = (source.config ?? {}) as Record<string, unknown>;
    for (const field of URL_FIELDS) {
      const value = config[field];
      const urls = typeof value === "string" ? [value] : Array.isArray(value) ? value : [];
      for (const url of urls) {
        const refusal = typeof url === "string" ? refusalOf(rule, url) : undefined;
        if (refusal) out.push(`sources.${source.name}.${field}: ${maskUrl(url)}: ${refusal}`);
      }
    }
  }
  return out;
}

function refusalOf(rule: AddressRule, url: string): string | undefined {
  const u = URL.parse(url);
  if (!u || (u.protocol !== "http:" && u.protocol !== "https:")) return undefined;
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  const ip = host.toLowerCase() === "localhost" ? parseIp("127.0.0.1") : parseIp(host);
  if (!ip) return undefined;
  const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
  return rule.check(host, formatIp(ip), port)?.message;
}
