import type { HttpClient } from "../../engine/http.ts";
import type { BuildEnv } from "../../engine/registry.ts";
import { fetchLimited } from "./http_fetch.ts";

/** Each GET is one bounded fetch, with no state between requests. */
export const directHttp: HttpClient = { get: (url, request) => fetchLimited(url, request) };

/** The flow run's HTTP client; a component built without a flow (a unit test) fetches directly. */
export function httpOf(env: BuildEnv): HttpClient {
  return env.http ?? directHttp;
}
