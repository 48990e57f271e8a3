/**
 * An example of your own step: adds tags to an item when its title or text
 * names one of a tag's words. A flow uses it as
 *
 * ```yaml
 * - step:
 *     module: ./steps/tag.ts
 *     options: { tags: { ai: [llm, model], security: [breach, cve] } }
 * ```
 *
 * A step module's default export is a stage as `registry.stage()` takes
 * one (see mod.ts), with `kind` optional: a zod schema of its options
 * (checked when the flow loads, errors at their line), and `create`, which
 * makes the actor that handles batches.
 */
import { z } from "zod";
import type { StepSpec } from "../../mod.ts";

const options = z.strictObject({
  tags: z.record(z.string(), z.array(z.string().min(1)).min(1))
    .describe("tag -> words; an item whose title or text has one of the words gets the tag"),
  field: z.string().default("tags").describe("Payload field of the tag list; default tags."),
});

export default {
  kind: "tag",
  summary: "Tags items whose title or text names a tag's words.",
  schema: options,
  create(config) {
    const rules = Object.entries(config.tags).map(([tag, words]) => ({
      tag,
      match: new RegExp(`\\b(${words.map((w) => w.replace(/\W/g, "\\$&")).join("|")})\\b`, "i"),
    }));
    return {
      handle(batch, out) {
        for (const item of batch) {
          const { payload } = item;
          const text = `${payload.title ?? ""}\n${payload.text ?? ""}`;
          const had = Array.isArray(payload[config.field]) ? payload[config.field] as string[] : [];
          const tags = [
            ...new Set([...had, ...rules.filter((r) => r.match.test(text)).map((r) => r.tag)]),
          ];
          out.emit({ ...item, payload: { ...payload, [config.field]: tags } });
        }
      },
    };
  },
} satisfies StepSpec<z.output<typeof options>>;
