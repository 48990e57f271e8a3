import { HostPausedError, RobotsDisallowedError } from "../adapters/http/polite_http.ts";
import type { CountRequest, HttpClient } from "../engine/http.ts";
import type { Registry } from "../engine/registry.ts";

/**
 * Makes the registry's HTTP client (the HttpClient seam every web source
 * goes through) count its requests: wraps the pool's clients, so the
 * polite client's limits, robots.txt and address checks stay as they are.
 * A refused status (HttpStatusError) carries its status; a URL robots.txt
 * keeps from being sent counts as "robots" (no request went out), whether
 * its rules rule it out or robots.txt could not be read (the host is then
 * taken to disallow everything: its own failed read is counted as made);
 * other failures (timeouts, refusals, caps) as "error".
 * The pool's own reads of robots.txt are counted too, through its context.
 */
export function countHttpRequests(registry: Registry, count: CountRequest): void {
  const make = registry.http;
  if (!make) return;
  registry.httpClient((options, ctx) => {
    const pool = make(options, { ...ctx, count });
    return { client: (perHost) => counted(pool.client(perHost), count) };
  });
}

function counted(client: HttpClient, count: CountRequest): HttpClient {
  return {
    perHost: client.perHost, // sources pace themselves by it (the html source's pages per host)
    async get(url, request) {
      const host = hostOf(url);
      try {
        const response = await client.get(url, request);
        count(host, response.status);
        return response;
      } catch (error) {
        if (error instanceof HostPausedError) throw error; // not sent: no request to count
        const status = (error as { status?: unknown })?.status;
        count(
          host,
          error instanceof RobotsDisallowedError
            ? "robots"
            : typeof status === "number"
            ? status
            : "error",
        );
        throw error;
      }
    },
  };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "invalid";
  }
}
