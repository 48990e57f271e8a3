import { z } from "zod";
import type { StageSpec } from "../engine/registry.ts";

/** `kind: hangs`: a stage whose handle never returns, for tests of timeouts and hard stops. */
export const hangingStage: StageSpec<Record<string, never>> = {
  kind: "hangs",
  summary: "never returns",
  schema: z.strictObject({}),
  create: () => ({ handle: () => new Promise<void>(() => {}) }),
};
