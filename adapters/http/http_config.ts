import { z } from "zod";
import type { HttpOptions, PerHost } from "../../engine/http.ts";
import { show } from "../../config/zod_issues.ts";
import { USER_AGENT } from "./http_fetch.ts";
import { allowEntryProblem } from "./address_guard.ts";

/**
 * Default per-host limits. One request a second is the rate polite
 * crawlers keep to a site they do not own (and what a `Crawl-delay: 1`
 * asks); a burst of 5 lets a source that polls a handful of URLs of one
 * host every few minutes fetch them together rather than over 5 s; 2 at
 * once is the old HTTP/1.1 advice of two connections per server.
 */
export const DEFAULT_PER_HOST: PerHost = { rps: 1, burst: 5, concurrency: 2 };

export const DEFAULT_HTTP: HttpOptions = {
  userAgent: USER_AGENT,
  allow: [],
  perHost: DEFAULT_PER_HOST,
  robots: true,
};

const positive = () =>
  z.number({ error: (iss) => `expected a number above 0, got ${show(iss.input)}` })
    .positive({ error: (iss) => `expected a number above 0, got ${show(iss.input)}` });
const positiveInt = () =>
  z.number({ error: (iss) => `expected a positive integer, got ${show(iss.input)}` })
    .int({ error: (iss) => `expected a positive integer, got ${show(iss.input)}` })
    .positive({ error: (iss) => `expected a positive integer, got ${show(iss.input)}` });

/** The fields of `perHost`, each optional: a source's block overrides the flow's field by field. */
export const perHostFields = {
  rps: positive()
    .describe("Requests per second to one host, sustained; 0.2 is one every 5 s. Default: 1."),
  burst: positiveInt()
    .describe("Requests that may go at once after a quiet spell. Default: 5."),
  concurrency: positiveInt()
    .describe("Requests to one host in flight at once, per process. Default: 2."),
};

/** A source's `perHost:`, over the flow's `http.perHost`. */
export const sourcePerHostSchema = z.strictObject({
  rps: perHostFields.rps.optional(),
  burst: perHostFields.burst.optional(),
  concurrency: perHostFields.concurrency.optional(),
}).optional()
  .describe("This source's per-host limits, field by field over http.perHost. Default: none.");

/** The flow's `http:` block: how every source that reads the web behaves towards hosts. */
export const httpSchema = z.strictObject({
  userAgent: z.string().trim().min(1, { error: "expected a user agent such as mybot/1.0" })
    .default(USER_AGENT)
    .describe(
      `User-Agent of every request; its first word is the name robots.txt groups are matched against. Default: ${USER_AGENT}.`,
    ),
  allow: z.array(
    z.string().trim().min(1, { error: "expected a host or CIDR range such as 10.0.0.0/8" })
      .superRefine((entry, ctx) => {
        const problem = allowEntryProblem(entry);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      }),
  ).default([])
    .describe(
      "Internal hosts or address ranges (127.0.0.1, 10.0.0.0/8, intranet.example) requests may reach. Default: none.",
    ),
  perHost: z.strictObject({
    rps: perHostFields.rps.default(DEFAULT_PER_HOST.rps),
    burst: perHostFields.burst.default(DEFAULT_PER_HOST.burst),
    concurrency: perHostFields.concurrency.default(DEFAULT_PER_HOST.concurrency),
  }).prefault({})
    .describe(
      "Limits per host, for every source: { rps: 1, burst: 5, concurrency: 2 } by default.",
    ),
  robots: z.boolean().default(true)
    .describe("Read each host's robots.txt and obey its rules and Crawl-delay. Default: true."),
}).prefault({})
  .describe("How sources that read the web treat hosts: user agent, limits, robots.txt.");
