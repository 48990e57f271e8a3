import { type Scenario, size } from "../_scenario.ts";

/** Worker SIGKILL loop: a random worker is killed every 1.2 s and restarted. */
export const workerKill: Scenario = {
  name: "worker-kill",
  about: "SIGKILL a random worker every 1.2 s (restarted like a supervisor would)",
  async run(c, mode) {
    await c.start({
      flow: { source: { kind: "generator", count: size(mode, 3000, 40_000), seed: 7 } },
      workers: size(mode, 2, 3),
    });
    let kills = 0;
    for (; kills < size(mode, 5, 25) && !c.nearlyDone && !c.signal.aborted; kills++) {
      await c.sleep(1200);
      const alive = c.running;
      if (alive.length === 0) break;
      c.signalWorker(alive[Math.floor(Math.random() * alive.length)], "SIGKILL");
      c.faultEnded();
    }
    c.notes.push(`${kills} kills`);
  },
};
