import { z } from "zod";
import { duration } from "../../config/units.ts";
import { Registry } from "../../engine/registry.ts";

/**
 * A small registry for the loader's tests, independent of actors/: two
 * sources and five stages with strict schemas, where `embed` adds the
 * "embedded" fact and `publish` needs it when one of its sinks is a vector
 * store.
 */
export function fakeRegistry(): Registry {
  const actor = () => ({ handle() {} });
  const source = () => ({ async *read() {} });
  const sinks = z.array(
    z.union([
      z.strictObject({ jsonl: z.strictObject({ path: z.string() }) }),
      z.strictObject({ vector: z.strictObject({ collection: z.string() }) }),
    ]),
  ).min(1);
  return new Registry()
    .source({
      kind: "json",
      summary: "JSON over HTTP",
      schema: z.strictObject({
        url: z.string().optional(),
        preset: z.enum(["hackernews", "reddit"]).optional(),
      }),
      create: source,
    })
    .source({
      kind: "rss",
      summary: "an RSS or Atom feed",
      schema: z.strictObject({ url: z.url() }),
      create: source,
    })
    .stage({
      kind: "validate",
      summary: "checks fields",
      schema: z.strictObject({
        require: z.array(z.string()).default([]),
        title: z.strictObject({ min: z.number().int().min(0), max: z.number().max(1000) })
          .optional(),
      }),
      adds: ["valid"],
      create: actor,
    })
    .stage({
      kind: "dedupe",
      summary: "drops duplicates",
      schema: z.strictObject({
        key: z.array(z.string()).min(1).default(["url"]),
        ttl: duration().default(86_400_000),
        near: z.strictObject({ threshold: z.number().min(0).max(1) }).optional(),
      }),
      needs: () => ["valid"],
      adds: ["unique"],
      create: actor,
    })
    .stage({
      kind: "enrich",
      summary: "adds facts",
      schema: z.strictObject({ steps: z.array(z.string()).default([]) }),
      adds: ["enriched"],
      create: actor,
    })
    .stage({
      kind: "embed",
      summary: "adds vectors",
      schema: z.strictObject({
        batch: z.strictObject({ size: z.int().positive(), maxWait: duration() })
          .default({ size: 64, maxWait: 1000 }),
      }),
      adds: ["embedded"],
      create: actor,
    })
    .stage({
      kind: "publish",
      summary: "writes to sinks",
      schema: sinks,
      needs: (config: z.output<typeof sinks>) =>
        config.some((sink) => "vector" in sink) ? ["embedded"] : [],
      create: actor,
    });
}
