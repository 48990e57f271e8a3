import { type Scenario, size } from "../_scenario.ts";

/** Scaling out to 4 workers and back in to 1 with SIGTERM (graceful stops), repeatedly. */
export const scale: Scenario = {
  name: "scale",
  about: "scale 1 -> 4 workers, SIGTERM back to 1, repeat",
  async run(c, mode) {
    await c.start({
      flow: { source: { kind: "generator", count: size(mode, 4000, 60_000), seed: 31 } },
      workers: 1,
    });
    let stops = 0;
    for (let round = 0; round < size(mode, 1, 5) && !c.signal.aborted; round++) {
      await c.sleep(1000);
      while (c.running.length < 4) c.spawn();
      await c.sleep(2000);
      for (const w of c.running.slice(0, -1)) {
        if (c.nearlyDone) break;
        c.signalWorker(w, "SIGTERM");
        stops++;
        c.faultEnded();
        await c.sleep(700);
      }
    }
    c.notes.push(`${stops} SIGTERM stops`);
  },
};
