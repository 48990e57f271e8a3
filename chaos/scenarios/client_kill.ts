import { type Scenario, size } from "../_scenario.ts";

/** Every worker connection dropped by Redis itself (CLIENT KILL), again and again. */
export const clientKill: Scenario = {
  name: "client-kill",
  about: "CLIENT KILL TYPE normal (every worker connection) every 700 ms",
  async run(c, mode) {
    await c.start({
      flow: { source: { kind: "generator", count: size(mode, 3000, 40_000), seed: 19 } },
      workers: 2,
    });
    await c.until(() => c.published > 0);
    let killed = 0;
    for (let k = 0; k < size(mode, 8, 40) && !c.nearlyDone && !c.signal.aborted; k++) {
      await c.sleep(700);
      killed += Number(
        await c.admin().client("KILL", "TYPE", "normal", "SKIPME", "yes").catch(() => 0),
      );
      c.faultEnded();
    }
    c.notes.push(`${killed} connections killed`);
  },
};
