import { ChaosSchema, PG_URL } from "../_postgres.ts";
import { type Scenario, size } from "../_scenario.ts";

/** Postgres backends killed mid-insert (pg_terminate_backend while the insert sleeps). */
export const pgKill: Scenario = {
  name: "pg-kill",
  about: "Postgres sink; pg_terminate_backend on the backends mid-insert every 400 ms",
  needsPostgres: true,
  async run(c, mode) {
    const pg = await ChaosSchema.create(c);
    await c.start({
      flow: {
        source: { kind: "generator", count: size(mode, 3000, 30_000), seed: 41 },
        postgres: { url: PG_URL, table: pg.table, timeout: "10s" },
      },
      workers: 2,
    });
    await pg.slowInserts(c, 0.2);
    let killed = 0;
    for (let k = 0; k < size(mode, 12, 60) && !c.nearlyDone && !c.signal.aborted; k++) {
      await c.sleep(400);
      const n = await pg.killInserts();
      killed += n;
      if (n > 0) c.faultEnded();
    }
    c.notes.push(`${killed} backends killed mid-insert`);
    return { secondSink: () => pg.ids() };
  },
};
