import { commit } from "../../tests/_redis_proxy.ts";
import { type Scenario, size } from "../_scenario.ts";

/**
 * Lost commit replies: through a proxy, a commit reaches Redis and runs,
 * and its reply is dropped with the connection. The first drops hit
 * transactions that write dead letters (the generator's invalid items).
 */
export const execLost: Scenario = {
  name: "exec-lost",
  about: "drop commit replies (a loopback proxy); the first drops hit dead-letter writes",
  async run(c, mode) {
    await c.start({
      flow: { source: { kind: "generator", count: size(mode, 3000, 40_000), seed: 23 } },
      workers: 2,
      proxy: true,
    });
    // Transactions that write dead letters run early (validate is the first stage).
    for (let k = 0; k < size(mode, 4, 20); k++) c.proxy!.loseReply(commit(/\r\nreason\r\n/));
    await c.until(() => c.published > 0);
    for (let k = 0; k < size(mode, 10, 60) && !c.nearlyDone && !c.signal.aborted; k++) {
      c.proxy!.loseReply(commit());
      await c.sleep(400);
      c.faultEnded();
    }
    c.notes.push(`${c.proxy!.repliesLost} commit replies dropped`);
  },
};
