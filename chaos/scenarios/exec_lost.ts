import { type Scenario, size } from "../_scenario.ts";

/**
 * Lost EXEC replies: through a proxy, a transaction reaches Redis and runs,
 * and its reply is dropped with the connection. Every other drop hits a
 * transaction that writes dead letters (the generator's invalid items).
 */
export const execLost: Scenario = {
  name: "exec-lost",
  about: "drop the reply to an EXEC (a loopback proxy), every other one writing dead letters",
  async run(c, mode) {
    await c.start({
      flow: { source: { kind: "generator", count: size(mode, 3000, 40_000), seed: 23 } },
      workers: 2,
      proxy: true,
    });
    await c.until(() => c.published > 0);
    for (let k = 0; k < size(mode, 10, 60) && !c.nearlyDone && !c.signal.aborted; k++) {
      c.proxy!.arm(k % 2 === 0 ? /:dlq\r\n/ : undefined);
      await c.sleep(500);
      c.faultEnded();
    }
    c.notes.push(`${c.proxy!.dropped} EXEC replies dropped`);
  },
};
