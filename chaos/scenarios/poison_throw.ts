import { type Scenario, size } from "../_scenario.ts";

/** Items whose stage throws every time: each must go to dead letters alone. */
export const poisonThrow: Scenario = {
  name: "poison-throw",
  about: "a stage throws on 3 items: those 3 go to dead letters, their batch-mates on",
  async run(c, mode) {
    const count = size(mode, 2000, 20_000);
    await c.start({
      flow: {
        source: { kind: "numbered", count, poison: [137, Math.floor(count / 2), count - 1] },
        extraStages: ["- poison: {}"],
      },
      workers: 2,
    });
  },
};
