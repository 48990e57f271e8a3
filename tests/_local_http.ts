import type { HttpClient } from "../engine/http.ts";
import { fetchLimited } from "../adapters/http/http_fetch.ts";

/**
 * An HTTP client that may reach the tests' own servers on 127.0.0.1, which
 * fetchLimited refuses unless allowed: the `http` of a unit test's BuildEnv.
 */
export const localHttp: HttpClient = {
  get: (url, request) => fetchLimited(url, { ...request, allow: ["127.0.0.1"] }),
};
