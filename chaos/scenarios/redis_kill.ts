import { type Scenario, size } from "../_scenario.ts";

/** Redis SIGKILL with appendfsync always: every acknowledged write survives the crash. */
export const redisKill: Scenario = {
  name: "redis-kill",
  about: "SIGKILL redis-server (appendfsync always), restart it 1 s later on the same data",
  async run(c, mode) {
    const count = size(mode, 3000, 40_000);
    await c.start({ flow: { source: { kind: "generator", count, seed: 11 } }, workers: 2 });
    const kills = size(mode, 2, 4);
    for (let k = 1; k <= kills && !c.signal.aborted; k++) {
      await c.until(() => c.published >= (count * 0.8 * k) / (kills + 1));
      await c.killRedis();
      await c.sleep(1000);
      await c.restartRedis();
      c.faultEnded();
    }
    c.notes.push(`${kills} Redis crashes`);
  },
};
