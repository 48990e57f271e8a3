import type { Flow } from "../engine/flow.ts";
import type { FlowWarning } from "./short_retention.ts";

/**
 * A flow that names a Redis (`redis:`) and runs in memory, which `check`
 * and the start of a run warn of: the likeliest cause is a forgotten
 * `durability: redis`, and the run then kept nothing in Redis without a
 * word (its `durable:` settings too). Not an error: a flow whose
 * durability comes from a variable (`durability: ${MODE:-memory}`) names
 * its Redis for the durable runs.
 */
export function unusedRedis(flow: Flow): FlowWarning[] {
  if (flow.durability !== "memory" || flow.redis === undefined) return [];
  return [{
    ...flow.locate?.(["redis"], "key"),
    message: "redis: is read only by a durable flow, and this one runs in memory " +
      "(its durability is memory): its items and the durable: settings are not kept in " +
      "Redis; add durability: redis to run it over Redis",
  }];
}
