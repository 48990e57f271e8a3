import type { StepModules } from "./step_modules.ts";

/**
 * What a component schema may need to know about the flow being checked
 * but cannot see from its own block: whether the flow came from a file
 * (durations there must carry a unit) and its durability (a sink that has
 * no Redis of its own needs a `url` in a memory flow). Set only while
 * checkFlow runs its (synchronous) schemas; a schema parsed on its own sees
 * undefined and checks nothing that depends on the flow.
 */
export interface CheckContext {
  /** The flow is a flow file: bare numbers in duration fields are refused. */
  fromFile: boolean;
  durability?: "memory" | "redis";
  /** The flow's output folder, resolved (a memory flow's dead letters are a file of it). */
  outDir?: string;
  /**
   * The flow's step modules, imported before the check (config/step_modules.ts);
   * absent for a flow checked without importing them (parseFlow, defineFlow).
   */
  steps?: StepModules;
  /**
   * The length of the vectors items carry when they reach the stage being
   * checked, as the last stage before it that gives vectors says
   * (StageSpec.vectorLength); absent when none says.
   */
  vectorLength?: number;
}

let current: CheckContext | undefined;

/** Runs `fn` (synchronous, like zod's safeParse) with `ctx` as the check context. */
export function withCheckContext<T>(ctx: CheckContext, fn: () => T): T {
  const outer = current;
  current = ctx;
  try {
    return fn();
  } finally {
    current = outer;
  }
}

/** The flow being checked, when a schema runs inside checkFlow. */
export function checkContext(): CheckContext | undefined {
  return current;
}
