import { z } from "zod";

/**
 * The `baseUrl` of an OpenAI-compatible API (embed and llm stages): an
 * http(s) URL without a user:password. Given one, the request carried it as
 * a second Authorization beside apiKey's (`Basic …, Bearer …`, which no
 * server reads as meant), and Deno's HTTP spans exported it with the URL to
 * the trace store, which masks nothing.
 */
export function apiBaseUrl(describe: string) {
  return z.url({ protocol: /^https?$/ })
    .refine((url) => {
      const u = URL.parse(url);
      return !u || (u.username === "" && u.password === "");
    }, {
      error: "baseUrl holds a user:password, which would go beside apiKey as a second " +
        "Authorization and out with the URL in traces: put the key in apiKey",
    })
    .optional()
    .describe(describe);
}
