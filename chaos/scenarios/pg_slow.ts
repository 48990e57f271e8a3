import { ChaosSchema, PG_URL } from "../_postgres.ts";
import { type Scenario, size } from "../_scenario.ts";

/** A slow Postgres sink: every insert sleeps 150 ms, and the table is locked for 3 s twice. */
export const pgSlow: Scenario = {
  name: "pg-slow",
  about: "Postgres sink beside JSONL; each insert sleeps 150 ms, two 3 s table locks",
  needsPostgres: true,
  async run(c, mode) {
    const pg = await ChaosSchema.create(c);
    await c.start({
      flow: {
        source: { kind: "generator", count: size(mode, 3000, 30_000), seed: 37 },
        postgres: { url: PG_URL, table: pg.table, timeout: "10s" },
      },
      workers: 2,
    });
    await pg.slowInserts(c, 0.15);
    for (let k = 0; k < size(mode, 2, 6) && !c.nearlyDone && !c.signal.aborted; k++) {
      await c.sleep(1500);
      await pg.stall(3000);
      c.faultEnded();
    }
    return { secondSink: () => pg.ids() };
  },
};
