import { AddressRule } from "../adapters/http/address_guard.ts";
import { formatIp, parseIp } from "../adapters/http/ip_address.ts";
import type { Flow } from "../engine/flow.ts";
import { maskUrl } from "../engine/mask_url.ts";

/** Source config fields that hold URLs to fetch. */
const URL_FIELDS = ["url", "sitemap"];

/** A source URL no fetch can reach, and where the flow file writes it (when it came from one). */
export interface UnreachableUrl {
  line?: number;
  column?: number;
  /** `sources.<name>.<field>: <url, masked>: <the refusal, saying how to allow it>`. */
  message: string;
}

/**
 * What `check` can tell without a lookup: the URLs of the flow's sources
 * whose host is an address (or `localhost`) that `http.allow` does not let
 * the flow reach, so every fetch of them would be refused at run time. A
 * host name is left to the run, which resolves it.
 */
export function unreachableUrls(flow: Flow): UnreachableUrl[] {
  const rule = new AddressRule(flow.http?.allow ?? []);
  const out: UnreachableUrl[] = [];
  for (const source of flow.sources) {
    const config = (source.config ?? {}) as Record<string, unknown>;
    for (const field of URL_FIELDS) {
      const value = config[field];
      const urls = typeof value === "string" ? [value] : Array.isArray(value) ? value : [];
      for (const [i, url] of urls.entries()) {
        const refusal = typeof url === "string" ? refusalOf(rule, url) : undefined;
        if (!refusal) continue;
        const path = ["sources", source.name, field, ...(Array.isArray(value) ? [i] : [])];
        out.push({
          ...flow.locate?.(path, "value"),
          message: `sources.${source.name}.${field}: ${maskUrl(url)}: ${refusal}`,
        });
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
