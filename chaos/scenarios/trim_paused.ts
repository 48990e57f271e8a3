import { type Scenario, size } from "../_scenario.ts";

/**
 * Trimming while a consumer is frozen holding entries: its entries are
 * claimed by the others after claimAfter (1 s) while every trim loop (2 s)
 * runs; then it thaws and carries on with what it held.
 */
export const trimPaused: Scenario = {
  name: "trim-paused",
  about: "SIGSTOP a worker for 2.5 s (past claimAfter and a trim), SIGCONT, repeat",
  async run(c, mode) {
    await c.start({
      flow: {
        source: { kind: "generator", count: size(mode, 5000, 60_000), seed: 29 },
        extraStages: ["- slow: { ms: 150 }"],
      },
      workers: 3,
    });
    await c.until(() => c.published > 0);
    let pauses = 0;
    for (; pauses < size(mode, 4, 20) && !c.nearlyDone && !c.signal.aborted; pauses++) {
      const alive = c.running;
      if (alive.length === 0) break;
      const w = alive[Math.floor(Math.random() * alive.length)];
      c.signalWorker(w, "SIGSTOP");
      await c.sleep(2500);
      c.signalWorker(w, "SIGCONT");
      c.faultEnded();
      await c.sleep(500);
    }
    c.notes.push(`${pauses} pauses`);
  },
};
