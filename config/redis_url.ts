import { z } from "zod";
import { redisOptions } from "../engine/redis/connection.ts";
import { maskSecretsOf } from "../engine/mask_url.ts";
import { show } from "./zod_issues.ts";

const SCHEME = /^(rediss?|unix):\/\//;

/**
 * A Redis URL as the connection reads it (engine/redis/connection.ts
 * redisOptions), checked when the flow is: a password with an unencoded
 * `/`, a port past 65535 or a path that is no database number passed
 * `check` and failed the run, naming no file, line or field. Reading a URL
 * opens nothing, so `check` can refuse it. The message shows the URL masked.
 */
export function redisUrl(): z.ZodString {
  return z.string()
    .regex(SCHEME, {
      error: (iss) =>
        `expected a Redis URL such as redis://127.0.0.1:6379, got ${
          show(typeof iss.input === "string" ? maskSecretsOf(iss.input, iss.input) : iss.input)
        }`,
    })
    .superRefine((url, ctx) => {
      if (!SCHEME.test(url)) return; // said above
      try {
        redisOptions(url);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: maskSecretsOf((error as Error).message, url) });
      }
    });
}
