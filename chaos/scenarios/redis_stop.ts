import { type Scenario, size } from "../_scenario.ts";

/** Redis frozen with SIGSTOP (a stalled host, a long fork) and thawed with SIGCONT. */
export const redisStop: Scenario = {
  name: "redis-stop",
  about: "SIGSTOP redis-server for 3 s (long mode: 3 s, 10 s, 40 s), then SIGCONT",
  async run(c, mode) {
    const count = size(mode, 3000, 40_000);
    await c.start({ flow: { source: { kind: "generator", count, seed: 17 } }, workers: 2 });
    const pauses = size(mode, [3000, 3000], [3000, 10_000, 40_000]);
    for (const [k, ms] of pauses.entries()) {
      await c.until(() => c.published >= (count * 0.8 * (k + 1)) / (pauses.length + 1));
      c.redis.signal("SIGSTOP");
      await c.sleep(ms);
      c.redis.signal("SIGCONT");
      c.faultEnded();
    }
    c.notes.push(`paused ${pauses.map((ms) => ms / 1000).join(", ")} s`);
  },
};
