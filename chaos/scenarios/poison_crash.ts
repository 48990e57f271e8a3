import { type Scenario, size } from "../_scenario.ts";

/**
 * Items that kill the process that handles them (a native crash, an OOM):
 * each must go to dead letters after maxDeliveries, alone.
 */
export const poisonCrash: Scenario = {
  name: "poison-crash",
  about: "a stage kills its process on 2 items: those 2 go to dead letters, nothing else",
  async run(c, mode) {
    const count = size(mode, 2000, 20_000);
    await c.start({
      flow: {
        source: { kind: "numbered", count, poison: [500, Math.floor(count * 0.75)] },
        extraStages: ["- poison: {}"],
      },
      workers: 2,
      env: { MILLRACE_TEST_POISON_EXIT: "1" },
    });
  },
};
