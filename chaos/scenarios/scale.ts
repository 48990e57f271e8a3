import { type Scenario, size } from "../_scenario.ts";

/**
 * Scaling out to 4 workers and back in to 1 with SIGTERM (graceful stops),
 * repeatedly. Each round scales out and in at set shares of the items
 * published, not after set times: on a fast machine (or a fused flow) a
 * short run used to finish before its first stop and test nothing.
 */
export const scale: Scenario = {
  name: "scale",
  about: "scale 1 -> 4 workers, SIGTERM back to 1, repeat",
  async run(c, mode) {
    const count = size(mode, 4000, 60_000);
    await c.start({
      flow: { source: { kind: "generator", count, seed: 31 } },
      workers: 1,
    });
    const rounds = size(mode, 1, 5);
    const unique = c.expected.published.size;
    const at = (share: number) => c.until(() => c.nearlyDone || c.published >= unique * share);
    let stops = 0;
    for (let round = 0; round < rounds && !c.signal.aborted; round++) {
      const share = (part: number) => (round + part) * 0.8 / rounds;
      await at(share(0.05));
      while (c.running.length < 4) c.spawn();
      await at(share(0.3));
      for (const w of c.running.slice(0, -1)) {
        if (c.nearlyDone) break;
        c.signalWorker(w, "SIGTERM");
        stops++;
        c.faultEnded();
        await c.sleep(300);
      }
    }
    c.notes.push(`${stops} SIGTERM stops`);
    if (stops === 0) throw new Error("no worker was stopped: the flow finished first");
  },
};
