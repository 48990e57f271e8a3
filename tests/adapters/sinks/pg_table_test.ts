import assert from "node:assert/strict";
import postgres from "postgres";
import { prepareTable } from "../../../adapters/sinks/_pg_table.ts";
import { PG_OPTIONS, pgTest } from "../../_postgres.ts";

/**
 * Several processes opening one sink at once (two `run`s of a flow, or
 * workers started together) each find no table and create it. Postgres's
 * `if not exists` does not cover that race: the loser fails on the catalog
 * with "type ... already exists" or a duplicate key. Each client here is
 * its own connection, as each process would be.
 */
pgTest("sinks opening one new table at once all open it, and it is made once", async (pg) => {
  const clients = Array.from(
    { length: 6 },
    () => postgres(pg.url, { ...PG_OPTIONS, max: 1 }),
  );
  try {
    await Promise.all(clients.map((sql) => sql`select 1`));
    for (let round = 0; round < 300; round++) {
      const name = `race_${round}`;
      const logged: string[] = [];
      // The schema's record of deletes is made at the same time, by one of them.
      await pg.sql`drop table if exists ${pg.ident("millrace_deleted")}`;
      const tables = await Promise.all(
        clients.map((sql) => prepareTable(sql, { name }, [], "array", (m) => logged.push(m))),
      );
      assert.ok(tables.every((t) => t.vectorColumn && t.vector === "array" && t.deletes));
      assert.deepEqual(logged, [`created table "${pg.schema}"."${name}"`]);
      assert.equal(await pg.count(name), 0);
    }
  } finally {
    await Promise.all(clients.map((sql) => sql.end({ timeout: 5 })));
  }
});
