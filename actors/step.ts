import { z } from "zod";
import { checkContext } from "../config/check_context.ts";
import { MAX_TIMER_MS } from "../config/units.ts";
import { check } from "../config/zod_issues.ts";
import { errorMessage, fileFrame } from "../engine/errors.ts";
import { type Registry, schemaOf, type StageSpec } from "../engine/registry.ts";

/** A step's config once checked: its module's stage and that stage's own config. */
export interface StepConfig {
  module: string;
  spec: StageSpec;
  config: unknown;
}

const blockSchema = z.strictObject({
  module: z.string().min(1)
    .describe("Path of the .ts module, relative to the flow file (./steps/tag.ts). Required."),
  options: z.unknown().optional()
    .describe("The module's own options, checked by the schema it exports. Default {}."),
});

/**
 * The block `{ module, options }`, checked against the module loadFlow
 * imported for it (config/step_modules.ts): `options` passes the module's
 * own schema, so a bad option is an error at its line like any other.
 */
function stepSchema(registry: Registry): z.ZodType<StepConfig> {
  return blockSchema.transform((block, ctx): StepConfig => {
    const steps = checkContext()?.steps;
    if (!steps) {
      ctx.addIssue({
        code: "custom",
        path: ["module"],
        message: "step modules are imported by loadFlow, parseFlowWithSteps and runTestFlow; " +
          "a flow built in code registers its stage with registry.stage() instead",
      });
      return z.NEVER;
    }
    const spec = steps.get(block.module);
    if (!spec) {
      // Reported already, at this place, by the import (and hidden here as said twice).
      ctx.addIssue({ code: "custom", path: ["module"], message: "the module did not load" });
      return z.NEVER;
    }
    let options: ReturnType<typeof check>;
    try {
      options = check(schemaOf(spec, registry), block.options ?? {}, ["options"]);
    } catch (error) {
      // The module's schema is its own code: one that is no zod schema, or whose refine or
      // transform throws, is the module's mistake, said at its line, not a stack trace.
      const at = error instanceof Error ? fileFrame(error) : undefined;
      ctx.addIssue({
        code: "custom",
        path: ["module"],
        message: `its schema could not check the options: ${errorMessage(error)}${
          at ? ` (at ${at})` : ""
        } (a step's schema is a zod schema: z.object({...}))`,
      });
      return z.NEVER;
    }
    if (!options.ok) {
      for (const p of options.problems) {
        ctx.addIssue({
          code: "custom",
          path: p.path as (string | number)[],
          message: p.message,
          params: { at: p.at },
        });
      }
      return z.NEVER;
    }
    const window = windowProblem(spec, options.value);
    if (window !== undefined) {
      ctx.addIssue({ code: "custom", path: ["module"], message: window });
      return z.NEVER;
    }
    return { module: block.module, spec, config: options.value };
  });
}

/** What a stage's window may hold (engine/window.ts's WindowOptions), checked at the flow's load. */
const windowSchema = z.strictObject({
  size: z.int().positive(),
  maxWeight: z.number().positive().optional(),
  weigh: z.function().optional(),
  maxWait: z.number().min(0).max(MAX_TIMER_MS).optional(),
});

/**
 * Why the module's `window(options)` cannot make a window, or undefined: a
 * size of 0 or "10", or a maxWait of "2s" (NaN to a timer, so every batch
 * went out at once), passed `check` and failed the run at its start with a
 * stack, or not at all.
 */
function windowProblem(spec: StageSpec, config: unknown): string | undefined {
  let window: unknown;
  try {
    window = spec.window?.(config);
  } catch (error) {
    return `its window(options) threw: ${errorMessage(error)}`;
  }
  if (window === undefined) return undefined;
  const checked = check(windowSchema, window);
  if (checked.ok) return undefined;
  const [problem] = checked.problems;
  const field = problem.path.length > 0 ? `${problem.path.join(".")}: ` : "";
  return `its window(options) gave ${field}${problem.message} (size: items, a positive ` +
    "integer; maxWait: milliseconds, a number; maxWeight: a number)";
}

/**
 * A stage from a TypeScript module beside the flow file, for logic that is
 * the user's own. The module's default export is a stage as a registered
 * one is written; this spec hands every question (what it needs and adds,
 * its window, its actor) to it.
 *
 * ```yaml
 * - step:
 *     module: ./steps/tag.ts
 *     options: { tags: { ai: [llm, gpt] } }
 * ```
 */
export const stepStage: StageSpec<StepConfig> = {
  kind: "step",
  summary: "Runs a stage from your own TypeScript module (module: ./steps/x.ts, options: {...}).",
  schema: stepSchema,
  needs: (c) => c.spec.needs?.(c.config) ?? [],
  adds: (c) => typeof c.spec.adds === "function" ? c.spec.adds(c.config) : c.spec.adds ?? [],
  defaultId: (c) => c.spec.kind,
  window: (c) => c.spec.window?.(c.config),
  // The flow holds the module's actor to account, as any stage of the user's own (build_flow.ts).
  create: (c, env) => c.spec.create(c.config, env),
  // A worker builds its stage from the built-in registry by kind and config;
  // the module a step loads is the flow's, which a worker does not load.
  workers: () =>
    "a step's module is loaded by the flow, and a worker builds stages only from the built-in " +
    "registry: remove workers, or run the step on the main thread",
};
