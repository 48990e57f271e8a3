import assert from "node:assert/strict";
import { join } from "node:path";
import { builtinRegistry } from "../../../builtins.ts";
import { generateItems } from "../../../adapters/sources/generator_source.ts";
import { HashingEmbedder } from "../../../adapters/embeddings/hashing_embedder.ts";
import {
  maskUrl,
  nearest,
  PostgresSink,
  postgresSink,
  postgresSinkSchema,
} from "../../../adapters/sinks/postgres_sink.ts";
import { defineFlow } from "../../../config/define_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { endingError, isAway } from "../../../engine/errors.ts";
import { type Envelope, envelope, itemId, type RawItem } from "../../../engine/item.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { FlowStartError, runFlow } from "../../../engine/run_flow.ts";
import { type PgScope, pgTest, withPglite, withPgSchema } from "../../_postgres.ts";
import { freePort } from "../../_redis_server.ts";

const signal = new AbortController().signal;
const embedder = new HashingEmbedder({ dimensions: 64 });
const T0 = Date.UTC(2024, 0, 1);

function sink(url: string, table: string, extra: Record<string, unknown> = {}): PostgresSink {
  return new PostgresSink(postgresSinkSchema.parse({ url, table, ...extra }));
}

/** Items with real titles and texts, embedded by the local hashing embedder. */
function items(n: number, from = 0): Envelope<RawItem>[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    const payload: RawItem = {
      title: `Story number ${i} about databases`,
      url: `https://example.com/story/${i}`,
      text: `Body of story ${i}.`,
      publishedAt: new Date(T0 + i * 60_000).toISOString(),
    };
    return { ...envelope(payload, "test", T0 + i), vector: embedder.embedOne(payload.title!) };
  });
}

/** Runs a flow that must fail to start; its FlowStartError. */
async function startError(
  flow: ReturnType<typeof defineFlow>,
  registry: ReturnType<typeof builtinRegistry>,
): Promise<FlowStartError> {
  const started = await runFlow(flow, {
    registry,
    log: memoryLogger(),
    deadLetters: new MemoryDeadLetters(),
  }).then(() => undefined, (e: Error) => e);
  assert.ok(started instanceof FlowStartError, "the flow does not start");
  return started;
}

/** With open and close around it. */
async function using<T>(s: PostgresSink, fn: (s: PostgresSink) => Promise<T>): Promise<T> {
  await s.open();
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

async function columnsOf(pg: PgScope, schema: string, table: string) {
  return await pg.sql<{ name: string; type: string; notnull: boolean }[]>`
    select a.attname as name, format_type(a.atttypid, a.atttypmod) as type,
      a.attnotnull as notnull
    from pg_attribute a join pg_class c on c.oid = a.attrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relname = ${table} and a.attnum > 0 and not a.attisdropped
    order by a.attnum`;
}

/** The stored vector as numbers, whether it is a pgvector column or a float8[] one. */
async function storedVector(pg: PgScope, table: string, id: string): Promise<number[]> {
  const [{ v }] = await pg.sql<{ v: string }[]>`
    select vector::text as v from ${pg.sql(pg.schema)}.${pg.sql(table)} where id = ${id}`;
  return v.slice(1, -1).split(",").map(Number);
}

/**
 * The cases that run twice: on the real server (each its own test) and on
 * PGlite with pgvector (as steps of one test at the end of this file), so
 * both ways of storing vectors are exercised whatever the server has.
 */
const cases: { name: string; fn: (pg: PgScope) => Promise<void> }[] = [];
function pgCase(name: string, fn: (pg: PgScope) => Promise<void>): void {
  cases.push({ name, fn });
  pgTest(name, fn);
}

function assertClose(actual: number[], expected: number[]) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) < 1e-6, `element ${i}: ${actual[i]}`);
  }
}

Deno.test("the config fills its defaults and parses a schema-qualified table", () => {
  const config = postgresSinkSchema.parse({ url: "postgres://u@h/db", table: "public.trends" });
  assert.deepEqual(config, {
    url: "postgres://u@h/db",
    table: { schema: "public", name: "trends" },
    columns: [
      { field: "title", column: "title", type: "text" },
      { field: "url", column: "url", type: "text" },
      { field: "publishedAt", column: "published_at", type: "timestamptz" },
      { field: "language", column: "language", type: "text" },
    ],
    vector: "auto",
    index: "hnsw",
    timeout: 30_000,
    maxConnections: 4,
  });
  const custom = postgresSinkSchema.parse({
    url: "postgresql://u@h/db",
    table: 'weird "name"; drop table x',
    columns: ["wordCount", { score: "float8" }, "tags", "mystery"],
    vector: "none",
    timeout: "5s",
  });
  assert.deepEqual(custom.table, { schema: undefined, name: 'weird "name"; drop table x' });
  assert.deepEqual(custom.columns, [
    { field: "wordCount", column: "word_count", type: "integer" },
    { field: "score", column: "score", type: "float8" },
    { field: "tags", column: "tags", type: "text[]" },
    { field: "mystery", column: "mystery", type: "text" },
  ]);
  assert.equal(custom.timeout, 5_000);
});

Deno.test("the config refuses bad tables, columns and URLs, never echoing a password", () => {
  const messages = (raw: unknown) => {
    const r = postgresSinkSchema.safeParse(raw);
    assert.ok(!r.success);
    return r.error.issues.map((i) => i.message).join("\n");
  };
  const url = "postgres://u@h/db";
  assert.match(messages({ url, table: "a.b.c" }), /NAME or SCHEMA\.NAME/);
  assert.match(messages({ url, table: "x".repeat(64) }), /longer than Postgres's 63 bytes/);
  assert.match(messages({ url, table: "t", columns: ["id"] }), /sink's own column "id"/);
  assert.match(messages({ url, table: "t", columns: ["seenAt"] }), /own column "seen_at"/);
  assert.match(messages({ url, table: "t", columns: ["a.b"] }), /cannot contain a dot/);
  assert.match(
    messages({ url, table: "t", columns: [{ x: "money" }] }),
    /unknown column type "money"; types: text, integer/,
  );
  assert.match(messages({ url, table: "t", columns: ["wordCount", "word_count"] }), /two fields/);
  const bad = messages({ url: "mysql://root:hunter2@h/db", table: "t" });
  assert.match(bad, /expected a postgres:\/\/.*got "mysql:\/\/root:\*\*\*@h\/db"/);
  assert.ok(!bad.includes("hunter2"));
});

Deno.test("a password holding a slash that is not percent-encoded: the check, or the run, says how to write it", async () => {
  // It passed check and failed the run at open.
  const checked = postgresSinkSchema.safeParse({
    url: "postgres://app:abc/def@127.0.0.1:5432/test",
    table: "t",
  });
  assert.ok(!checked.success);
  const said = checked.error.issues.map((i) => i.message).join("; ");
  assert.match(said, /percent-encoded: \/ as %2F/, said);
  assert.ok(!said.includes("abc"), said);
  // Digits before the slash parse as a port, the rest as the path: the URL is valid (a database
  // may be named with an @), and wrong (user "localhost", password "9/Secret9": so no lookup
  // leaves the machine, and port 9 refuses). The run says how to write it.
  const digits = new PostgresSink(postgresSinkSchema.parse({
    url: "postgres://localhost:9/Secret9@127.0.0.1:5432/test",
    table: "t",
    timeout: "3s",
  }));
  const wrong = await digits.open().catch((e) => e);
  assert.match(String(wrong), /cannot connect to .*the URL's path holds an @: .* \/ as %2F\)$/);
  assert.ok(!String(wrong).includes("Secret9"), "the password is in no error");
});

Deno.test("maskUrl hides the password in the user part and in parameters", () => {
  assert.equal(maskUrl("postgres://app:s3cret@db:5432/news"), "postgres://app:***@db:5432/news");
  assert.equal(maskUrl("postgres://app:p@ss@db/news"), "postgres://app:***@db/news");
  assert.equal(maskUrl("postgres://app@db/news"), "postgres://app@db/news");
  assert.equal(
    maskUrl("postgres://db/news?user=app&password=s3cret&sslmode=require"),
    "postgres://db/news?user=app&password=***&sslmode=require",
  );
});

pgCase(
  "the table is created with id, the lifted columns, payload, vector and times",
  async (pg) => {
    const s = sink(pg.url, pg.table("trends"));
    await using(s, async () => {
      await s.write(items(3), signal);
      const mode = s.table!.vector;
      assert.ok(mode === "pgvector" || mode === "array", `vectors are stored (${mode})`);
    });
    const columns = await columnsOf(pg, pg.schema, "trends");
    const vectorType = s.table!.vector === "pgvector" ? "vector(64)" : "double precision[]";
    const withoutVector = columns.filter((c) => c.name !== "vector").map((c) => [c.name, c.type]);
    assert.deepEqual(withoutVector, [
      ["id", "text"],
      ["title", "text"],
      ["url", "text"],
      ["published_at", "timestamp with time zone"],
      ["language", "text"],
      ["payload", "jsonb"],
      ["source", "text"],
      ["seen_at", "timestamp with time zone"],
      ["updated_at", "timestamp with time zone"],
    ]);
    assert.equal(columns.find((c) => c.name === "vector")?.type, vectorType);
    assert.ok(columns.find((c) => c.name === "payload")!.notnull, "payload is not null");
    const [pk] = await pg.sql`
    select 1 from pg_index i join pg_attribute a on a.attrelid = i.indrelid
      and a.attnum = i.indkey[0]
    where i.indrelid = ${pg.table("trends")}::regclass and i.indisprimary and a.attname = 'id'`;
    assert.ok(pk, "id is the primary key");
  },
);

pgCase("N items become N rows with their payload, lifted columns and vector", async (pg) => {
  const batch = items(50);
  batch[7] = { ...batch[7], payload: { ...batch[7].payload, language: "en" } };
  await using(sink(pg.url, pg.table("trends")), (s) => s.write(batch, signal));
  assert.equal(await pg.count("trends"), 50);
  const rows = await pg.sql`
    select id, title, url, published_at, language, payload, source, seen_at
    from ${pg.ident("trends")} order by seen_at`;
  assert.deepEqual(rows.map((r) => r.id), batch.map((e) => e.id));
  const [row] = rows.filter((r) => r.id === batch[7].id);
  assert.deepEqual(row.payload, batch[7].payload);
  assert.equal(row.title, batch[7].payload.title);
  assert.equal(row.url, batch[7].payload.url);
  assert.equal(row.language, "en");
  assert.equal(rows[0].language, null, "a field the item lacks is null");
  assert.equal((row.published_at as Date).toISOString(), batch[7].payload.publishedAt);
  assert.equal(row.source, "test");
  assert.equal((row.seen_at as Date).getTime(), batch[7].seenAt);
  for (const e of [batch[0], batch[7], batch[49]]) {
    assertClose(await storedVector(pg, "trends", e.id), e.vector!);
  }
});

pgCase(
  "replaying a batch leaves the row count unchanged and updates changed fields",
  async (pg) => {
    const first = items(20);
    const trends = pg.ident("trends");
    await using(sink(pg.url, pg.table("trends")), async (s) => {
      await s.write(first, signal);
      const before = await pg.sql`select id, updated_at from ${trends}`;
      await s.write(first, signal);
      assert.equal(await pg.count("trends"), 20, "a replay adds no row");
      const same = await pg.sql`select id, updated_at from ${trends}`;
      assert.deepEqual(
        new Map(same.map((r) => [r.id, r.updated_at.getTime()])),
        new Map(before.map((r) => [r.id, r.updated_at.getTime()])),
        "an unchanged row is not rewritten",
      );
      // The same articles scraped again later, by another source (a re-run whose copy of a story
      // reached dedupe from another feed first), two of them with new titles (so new vectors).
      const again = first.map((e, i) => {
        const copy: Envelope<RawItem> = { ...e, source: "mirror", seenAt: e.seenAt + 3_600_000 };
        if (i >= 2) return copy;
        const title = `Updated title ${i}`;
        return { ...copy, payload: { ...e.payload, title }, vector: embedder.embedOne(title) };
      });
      await new Promise((r) => setTimeout(r, 5)); // so now() moves on
      await s.write(again, signal);
    });
    assert.equal(await pg.count("trends"), 20);
    const rows = await pg
      .sql`select id, title, payload, source, seen_at, updated_at from ${trends}`;
    const byId = new Map(rows.map((r) => [r.id, r]));
    // The source of the sighting seen_at keeps: a later one from elsewhere rewrote every row.
    assert.deepEqual(new Set(rows.map((r) => r.source)), new Set(["test"]));
    for (let i = 0; i < 2; i++) {
      const row = byId.get(first[i].id)!;
      assert.equal(row.title, `Updated title ${i}`);
      assert.equal(row.payload.title, `Updated title ${i}`);
      assert.equal(row.seen_at.getTime(), first[i].seenAt, "seen_at keeps the first sighting");
      assertClose(await storedVector(pg, "trends", first[i].id), embedder.embedOne(row.title));
    }
    assert.equal(byId.get(first[5].id)!.title, first[5].payload.title);
    const changed = rows.filter((r) => r.updated_at > byId.get(first[5].id)!.updated_at);
    assert.deepEqual(
      changed.map((r) => r.id).sort(),
      [first[0].id, first[1].id].sort(),
      "only changed rows get a new updated_at",
    );
  },
);

pgCase("an id twice in one batch is written once, the later copy winning", async (pg) => {
  const [a, b] = items(2);
  const later = { ...a, payload: { ...a.payload, title: "The later copy" } };
  await using(sink(pg.url, pg.table("trends")), (s) => s.write([a, b, later], signal));
  assert.equal(await pg.count("trends"), 2);
  const [{ title }] = await pg.sql`select title from ${pg.ident("trends")} where id = ${a.id}`;
  assert.equal(title, "The later copy");
});

pgCase("a table and a column with odd characters are quoted, never run as SQL", async (pg) => {
  await pg.sql`create table ${pg.ident("x")} (n int)`;
  await pg.sql`insert into ${pg.ident("x")} values (1)`;
  const name = 'weird "name"; drop table x; --';
  const column = 'odd" col; drop table x';
  const batch = items(3).map((e) => ({ ...e, payload: { ...e.payload, [column]: "kept" } }));
  await using(
    sink(pg.url, pg.table(name), { columns: ["title", { [column]: "text" }] }),
    (s) => s.write(batch, signal),
  );
  const tables = await pg.sql`
    select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${pg.schema} and c.relkind = 'r'`;
  // The sink's table, the test's own, and the schema's record of deletes.
  assert.deepEqual(tables.map((t) => t.relname).sort(), [name, "x", "millrace_deleted"].sort());
  assert.equal(await pg.count(name), 3);
  assert.equal(await pg.count("x"), 1, "nothing was dropped");
  const rows = await pg.sql`select ${pg.sql(column)} as v from ${pg.ident(name)}`;
  assert.deepEqual(rows.map((r) => r.v), ["kept", "kept", "kept"]);
});

pgCase(
  "expire deletes exactly the rows first seen before the cutoff and counts them",
  async (pg) => {
    const day = 86_400_000;
    const old = items(3).map((item) => ({ ...item, seenAt: T0 - day }));
    const edge = items(1, 3).map((item) => ({ ...item, seenAt: T0 }));
    const fresh = items(2, 4).map((item) => ({ ...item, seenAt: T0 + day }));
    const table = pg.table("Old Trends");
    await using(sink(pg.url, table), async (s) => {
      await s.write([...old, ...edge, ...fresh], signal);
      assert.equal(await s.expire(T0, signal), 3, "the three old rows");
      assert.equal(await s.expire(T0, signal), 0, "a second sweep deletes nothing");
    });
    const rows = await pg.sql<{ id: string }[]>`select id from ${
      pg.ident("Old Trends")
    } order by id`;
    assert.deepEqual(
      rows.map((r) => r.id),
      [...edge, ...fresh].map((item) => item.id).sort(),
      "a row seen exactly at the cutoff stays",
    );
  },
);

pgTest(
  "an item's own revision that is not a small integer does not stop its later writes",
  async (pg) => {
    // A wiki edit's revision id, a version string: the comparison of merge revisions cast
    // them to int, and every write of the id after its first failed, then went to dead letters.
    const s = sink(pg.url, "edits", { vector: "none" });
    await using(s, async (s) => {
      for (const revision of [3_000_000_000, "v2", 1.5, { id: 7 }]) {
        const [item] = items(1, 0);
        item.payload = { ...item.payload, title: `Edit ${JSON.stringify(revision)}`, revision };
        await s.write([item], signal);
        await s.write([item], signal);
      }
    });
    const rows = await pg.sql`select payload->>'title' as title from ${pg.ident("edits")}`;
    assert.deepEqual(rows.map((r) => r.title), ['Edit {"id":7}'], "each write went through");
  },
);

pgCase(
  "a schema-qualified table is created in that schema; a missing schema is named",
  async (pg) => {
    const other = `${pg.schema}_b`;
    await pg.sql`create schema ${pg.sql(other)}`;
    try {
      await using(sink(pg.url, `${other}.trends`), (s) => s.write(items(4), signal));
      const [{ n }] = await pg.sql`select count(*)::int as n from ${pg.sql(other)}.trends`;
      assert.equal(n, 4);
      const [{ here }] = await pg.sql`select to_regclass(${pg.table("trends")}) as here`;
      assert.equal(here, null, "nothing was created in the test's own schema");
    } finally {
      await pg.sql`drop schema ${pg.sql(other)} cascade`;
    }
    await assert.rejects(
      sink(pg.url, `${pg.schema}_nope.trends`).open(),
      new RegExp(`schema "${pg.schema}_nope" does not exist`),
    );
  },
);

pgCase("deleted items remove their rows in the same batch as upserts", async (pg) => {
  const first = items(10);
  await using(sink(pg.url, pg.table("trends")), async (s) => {
    await s.write(first, signal);
    const gone = first.slice(0, 3).map((e) => ({
      ...e,
      payload: { ...e.payload, deleted: true },
    }));
    const never = { ...items(1, 99)[0], payload: { url: "https://never.example", deleted: true } };
    await s.write([...gone, never, ...items(2, 10)], signal);
  });
  assert.equal(await pg.count("trends"), 10 - 3 + 2);
  const ids = (await pg.sql`select id from ${pg.ident("trends")}`).map((r) => r.id);
  for (const e of first.slice(0, 3)) assert.ok(!ids.includes(e.id), "a deleted row is gone");
  for (const e of first.slice(3)) assert.ok(ids.includes(e.id), "the others stay");
});

pgCase(
  "a delete that reaches the sink before its item keeps the item out; the item seen after it comes back",
  async (pg) => {
    const [story] = items(1);
    const deletion = (at: number) => ({
      ...story,
      seenAt: at,
      payload: { url: story.payload.url, deleted: true },
    });
    await using(sink(pg.url, pg.table("trends")), async (s) => {
      // Two processes, or a durable edge that cut an entry: the delete (seen later) comes first.
      await s.write([deletion(story.seenAt + 60_000)], signal);
      await s.write([story], signal);
      await s.write([{ ...story, update: true, payload: { revision: 2, lastSeenAt: 1 } }], signal);
      // Before: the row was back, and the merge update's stub too.
      assert.equal(await pg.count("trends"), 0, "the deleted story stays deleted");
      // Seen again after its delete (republished): the row is back.
      await s.write([{ ...story, seenAt: story.seenAt + 120_000 }], signal);
      assert.equal(await pg.count("trends"), 1);
      // A delete older than the row's first sighting does not remove it.
      await s.write([deletion(story.seenAt + 90_000)], signal);
      assert.equal(await pg.count("trends"), 1);
      await s.write([deletion(story.seenAt + 180_000)], signal);
      assert.equal(await pg.count("trends"), 0);
    });
  },
);

pgCase(
  "a merge update seen after its story's delete brings back no row; once the item is back it applies",
  async (pg) => {
    const [story] = items(1);
    await using(sink(pg.url, pg.table("trends")), async (s) => {
      await s.write([story], signal);
      await s.write([{
        ...story,
        seenAt: story.seenAt + 60_000,
        payload: { url: story.payload.url, deleted: true },
      }], signal);
      // Another source's copy, later: the Deduper still holds the story and sends its update.
      // It made a row of merged fields alone (title and url null) that no first copy filled in.
      const late = { ...mergeUpdate(story, 2, ["a", "b"], 5), seenAt: story.seenAt + 120_000 };
      await s.write([late], signal);
      assert.equal(await pg.count("trends"), 0, "the deleted story stays deleted");
      // The item itself seen again after its delete: its row is back, and updates apply to it.
      await s.write([{ ...story, seenAt: story.seenAt + 180_000 }], signal);
      await s.write([{ ...late, payload: { ...late.payload, revision: 3 } }], signal);
      const rows = await pg.sql`select title, payload->'revision' as r from ${pg.ident("trends")}`;
      assert.deepEqual(rows.map((r) => [r.title, r.r]), [[story.payload.title, 3]]);
    });
  },
);

pgCase(
  "a delete and a later copy's merge update in one batch leave no row of merged fields alone",
  async (pg) => {
    // The merges ran before the deletes: finding neither row nor recorded delete, the update
    // made a row of merged fields (title and url null), seen after the delete, which it spared.
    const [story] = items(1);
    await using(sink(pg.url, pg.table("trends")), async (s) => {
      const deleted = {
        ...story,
        seenAt: story.seenAt + 60_000,
        payload: { url: story.payload.url, deleted: true },
      };
      const late = { ...mergeUpdate(story, 2, ["a", "b"], 5), seenAt: story.seenAt + 120_000 };
      await s.write([story, deleted, late], signal);
      assert.equal(await pg.count("trends"), 0, "the deleted story stays deleted");
    });
  },
);

pgTest(
  "a delete written while another process upserts its item keeps the item out",
  async (pg) => {
    const table = pg.table("trends");
    const [story] = items(1);
    const deletion = {
      ...story,
      seenAt: story.seenAt + 60_000,
      payload: { url: story.payload.url, deleted: true },
    };
    const [upserter, deleter] = [sink(pg.url, table), sink(pg.url, table)];
    await upserter.open();
    await deleter.open();
    try {
      // A session's uncommitted row of the same id holds the upsert inside
      // its statement, after it looked for a record of the delete: the
      // moment two processes' writes meet.
      let rollBack!: () => void;
      const held = new Promise<void>((r) => rollBack = r);
      let inserted!: () => void;
      const isInserted = new Promise<void>((r) => inserted = r);
      const blocker = pg.sql.begin(async (tx) => {
        await tx`insert into ${pg.ident("trends")} (id, payload, source, seen_at)
          values (${story.id}, '{}'::jsonb, 'blocker', now())`;
        inserted();
        await held;
        throw new Error("rolled back");
      }).catch(() => {});
      await isInserted;
      const upserted = upserter.write([story], signal);
      await until(async () => await waiting(pg, "transactionid") === 1);
      let deleted = false;
      const done = deleter.write([deletion], signal).then(() => deleted = true);
      // Before: the delete finished here, finding no row to delete.
      await until(async () => deleted || await waiting(pg, "advisory") === 1);
      rollBack();
      await blocker;
      await upserted;
      await done;
      assert.equal(
        await pg.count("trends"),
        0,
        "the story deleted after it was seen stays deleted",
      );
    } finally {
      await upserter.close();
      await deleter.close();
    }
  },
);

pgTest(
  "sinks opening one new table at once all open (their pool's writes are serializable)",
  async (pg) => {
    const failures: string[] = [];
    for (let round = 0; round < 20; round++) {
      const table = pg.table(`race_${round}`);
      const sinks = Array.from({ length: 4 }, () => sink(pg.url, table));
      const opened = await Promise.allSettled(sinks.map((s) => s.open()));
      for (const o of opened) if (o.status === "rejected") failures.push(String(o.reason?.message));
      await Promise.allSettled(sinks.map((s) => s.close()));
    }
    // Before: about a third failed "relation ... already exists" (the lock's
    // transaction took its snapshot before waiting, as serializable does).
    assert.deepEqual(failures, []);
  },
);

/** Sessions of millrace's sinks waiting for a lock of `type` (pg_locks.locktype). */
async function waiting(pg: PgScope, type: string): Promise<number> {
  const [{ n }] = await pg.sql<{ n: number }[]>`
    select count(*)::int as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
    where not l.granted and l.locktype = ${type} and a.application_name = 'millrace'`;
  return n;
}

/** Polls `ok` until it holds; fails after 10 s. */
async function until(ok: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("the condition never held");
}

pgCase(
  "a nearest-neighbour query over the stored vectors returns the closest item first",
  async (pg) => {
    const titles = [
      "Uber suspends self-driving car tests after a crash in Arizona",
      "Postgres 17 adds incremental backups and faster vacuum",
      "New battery chemistry doubles electric car range",
      "Rust compiler release speeds up incremental builds",
      "Football club signs striker for record transfer fee",
      "Central bank raises interest rates to fight inflation",
    ];
    const batch = titles.map((title, i) => ({
      ...envelope({ title, url: `https://news.example/${i}` }, "test", T0),
      vector: embedder.embedOne(title),
    }));
    await using(sink(pg.url, pg.table("news")), (s) => s.write(batch, signal));
    const query = embedder.embedOne("Uber self-driving crash: tests suspended");
    const found = await nearest(pg.sql, pg.table("news"), query, 3);
    assert.equal(found.length, 3);
    assert.equal(found[0].payload.title, titles[0]);
    assert.equal(found[0].id, batch[0].id);
    assert.ok(found[0].distance < found[1].distance, "ordered by distance");
    assert.ok(found[1].distance <= found[2].distance);
    const self = await nearest(pg.sql, pg.table("news"), embedder.embedOne(titles[3]), 1);
    assert.equal(self[0].payload.title, titles[3]);
    assert.ok(Math.abs(self[0].distance) < 1e-6, "an item is at distance 0 from itself");
  },
);

pgCase("vector: array and vector: none store vectors as asked", async (pg) => {
  await using(sink(pg.url, pg.table("arr"), { vector: "array" }), (s) => s.write(items(2), signal));
  await using(
    sink(pg.url, pg.table("plain"), { vector: "none" }),
    (s) => s.write(items(2), signal),
  );
  const arr = await columnsOf(pg, pg.schema, "arr");
  assert.equal(arr.find((c) => c.name === "vector")?.type, "double precision[]");
  const plain = await columnsOf(pg, pg.schema, "plain");
  assert.equal(plain.find((c) => c.name === "vector"), undefined);
  assert.equal(await pg.count("plain"), 2);
});

pgTest(
  "vector: pgvector is used when the server has it, and refused clearly when not",
  async (pg) => {
    const [{ available }] = await pg.sql`
    select count(*)::int as available from pg_available_extensions where name = 'vector'`;
    const s = sink(pg.url, pg.table("vec"), { vector: "pgvector" });
    if (available) {
      await using(s, (s) => s.write(items(1), signal));
      assert.equal(s.table!.vector, "pgvector");
    } else {
      await assert.rejects(
        s.open(),
        /vector: pgvector asks for the pgvector extension, which this server cannot create .*use vector: array/,
      );
    }
  },
);

pgCase(
  "a vector of another length than the table's is refused with a clear message",
  async (pg) => {
    const table = pg.table("trends");
    await using(sink(pg.url, table), (s) => s.write(items(2), signal));
    const short = items(1, 5).map((e) => ({ ...e, vector: e.vector!.slice(0, 32) }));
    await using(sink(pg.url, table), async (s) => {
      await assert.rejects(
        s.write(short, signal),
        /table "[^"]+"\."trends" holds vectors of 64 dimensions, and this flow's are 32/,
      );
      const mixed = [...items(1, 6), ...short];
      await assert.rejects(
        s.write(mixed, signal),
        /has a vector of 32 dimensions, the batch's are 64/,
      );
    });
    assert.equal(await pg.count("trends"), 2);
  },
);

pgCase(
  "in a flow, a table of another vector length stops the flow at start, before any item moves",
  async (pg) => {
    const table = pg.table("trends");
    await using(sink(pg.url, table), (s) => s.write(items(2), signal));
    const registry = builtinRegistry();
    const flow = defineFlow({
      name: "pg-dims",
      output: await Deno.makeTempDir(),
      sources: { gen: { kind: "generator", count: 50, seed: 3 } },
      pipeline: [
        { embed: { dimensions: 32 } },
        { publish: [{ postgres: { url: pg.url, table } }] },
      ],
    }, registry);
    const started = await startError(flow, registry);
    assert.match(
      started.message,
      /stage publish.*holds vectors of 64 dimensions, and this flow's are 32: embed with 64 dimensions/,
    );
    assert.equal(await pg.count("trends"), 2, "nothing written");
  },
);

pgCase("an existing table of another shape is refused, naming what does not fit", async (pg) => {
  await pg.sql`create table ${pg.ident("trends")} (id text, payload jsonb, title integer)`;
  const error = await sink(pg.url, pg.table("trends")).open().then(
    () => undefined,
    (e: Error) => e,
  );
  assert.ok(error, "open fails");
  assert.match(error.message, /table "[^"]+"\."trends" exists but cannot take the sink's rows/);
  assert.match(
    error.message,
    /missing columns url \(text\), published_at \(timestamp with time zone\), language \(text\)/,
  );
  // And how to take it as it is.
  assert.match(
    error.message,
    /title is integer, expected text \(or write the column entry \{ title: integer \} to keep it\)/,
  );
  assert.match(error.message, /id is not its primary key/);
});

pgCase(
  "a vector column the sink cannot write is refused with everything else that does not fit",
  async (pg) => {
    // Said alone, it was refused again, for the rest, once the column was altered.
    await pg.sql`create table ${
      pg.ident("trends")
    } (id integer primary key, vector real[], title int)`;
    const error = await sink(pg.url, pg.table("trends")).open().then(
      () => undefined,
      (e: Error) => e,
    );
    assert.ok(error, "open fails");
    assert.match(
      error.message,
      /exists but cannot take the sink's rows: vector is real\[\], expected vector\(n\) \(pgvector\) or double precision\[\]; missing columns url/,
    );
    assert.match(error.message, /id is integer, expected text/);
    assert.match(error.message, /title is integer, expected text/);
  },
);

pgCase("text Postgres would refuse (NUL, a lone surrogate) is cleaned, not fatal", async (pg) => {
  const [e] = items(1);
  const dirty = { ...e, payload: { ...e.payload, title: "nul\u0000here", text: "cut \ud83d" } };
  await using(sink(pg.url, pg.table("trends")), (s) => s.write([dirty], signal));
  const [row] = await pg.sql`select title, payload from ${pg.ident("trends")}`;
  assert.equal(row.title, "nulhere");
  assert.equal(row.payload.text, "cut \ufffd");
});

pgCase(
  "keys Postgres would refuse are cleaned too, and a date past year 9999 leaves its column null",
  async (pg) => {
    // Each was dead-lettered: "unsupported Unicode escape sequence", "time zone displacement out of range".
    const [a, b, c] = items(3);
    const odd = [
      { ...a, payload: { ...a.payload, ["k\u0000ey"]: 1, ["half \ud83d"]: 2 } },
      { ...b, payload: { ...b.payload, publishedAt: 1.7e15 } },
      { ...c, payload: { ...c.payload, publishedAt: -1e14 } },
    ];
    await using(
      sink(pg.url, pg.table("trends")),
      (s) => s.write(odd as unknown as Envelope<RawItem>[], signal),
    );
    const rows = await pg.sql`select id, published_at, payload from ${
      pg.ident("trends")
    } order by id`;
    assert.equal(rows.length, 3);
    const byId = new Map(rows.map((r) => [r.id, r]));
    assert.equal(byId.get(a.id)!.payload["key"], 1);
    assert.equal(byId.get(a.id)!.payload["half \ufffd"], 2);
    assert.equal(byId.get(b.id)!.published_at, null);
    assert.equal(byId.get(c.id)!.published_at, null);
  },
);

/** Holds an exclusive lock on a table until the returned function is called. */
async function lockTable(pg: PgScope, name: string): Promise<() => Promise<void>> {
  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => locked = r);
  const tx = pg.sql.begin(async (tx) => {
    await tx`lock table ${pg.ident(name)} in access exclusive mode`;
    locked();
    await held;
  });
  await isLocked;
  return async () => {
    release();
    await tx;
  };
}

pgTest(
  "a write stuck past the timeout on a table another session locked fails as Postgres busy, waited out; one whose signal aborts fails",
  async (pg) => {
    const s = sink(pg.url, pg.table("trends"), { timeout: "1s" });
    await using(s, async () => {
      await s.write(items(1), signal);
      const unlock = await lockTable(pg, "trends");
      try {
        // Before: a statement timeout, retried and split as the rows' fault: good items went to
        // dead letters while an ALTER TABLE or a CREATE INDEX held the table.
        const locked = await s.write(items(1, 1), signal).catch((e) => e);
        assert.match(
          locked.message,
          /cannot upsert 1 rows of "[^"]+"\."trends": canceling statement due to lock timeout/,
        );
        assert.equal(isAway(locked), true, "waited out by the stage runner");
        const ctl = new AbortController();
        setTimeout(() => ctl.abort(), 100);
        await assert.rejects(
          s.write(items(1, 2), ctl.signal),
          /canceling statement due to user request/,
        );
      } finally {
        await unlock();
      }
    });
    assert.equal(await pg.count("trends"), 1, "neither write went in");
  },
);

pgTest("with timeout 0s (none), a write waits on a lock as long as it is held", async (pg) => {
  // Its lock_timeout was 1 ms: every short lock another writer held was an outage. Then the
  // client gave up 5 s in, its statement still running: rows written went to dead letters.
  const s = sink(pg.url, pg.table("trends"), { timeout: "0s" });
  await using(s, async () => {
    await s.write(items(1), signal);
    const unlock = await lockTable(pg, "trends");
    const writing = s.write(items(1, 1), signal).then(() => "written", (e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 6_000));
    await unlock();
    assert.equal(await writing, "written");
  });
  assert.equal(await pg.count("trends"), 2);
});

/**
 * A TCP proxy to the server that fails as a server does: frozen, it keeps
 * every connection open and passes nothing back (a frozen server, or a
 * network path that drops packets); down, it closes every connection and
 * its port refuses new ones (a restart). Thawed, or up again on the same
 * port, new connections pass.
 */
function faultyProxy(target: URL) {
  const conns = new Set<Deno.Conn>();
  let frozen = false;
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (let n; (n = await from.read(buf)) !== null;) {
        if (frozen) continue; // read and dropped, both ways
        await to.write(buf.subarray(0, n));
      }
    } catch { /* closed */ }
  };
  let listener: Deno.Listener;
  let serving: Promise<void>;
  const listen = (port = 0) => {
    listener = Deno.listen({ hostname: "127.0.0.1", port });
    serving = (async () => {
      for await (const client of listener) {
        const server = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
        conns.add(client).add(server);
        pipe(client, server);
        pipe(server, client);
      }
    })().catch(() => {});
  };
  listen();
  const port = (listener!.addr as Deno.NetAddr).port;
  const url = new URL(target);
  url.hostname = "127.0.0.1";
  url.port = String(port);
  const down = async () => {
    listener.close();
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    conns.clear();
    await serving;
  };
  return {
    url: url.href,
    freeze: () => void (frozen = true),
    thaw: () => void (frozen = false),
    down,
    up: () => listen(port),
    close: down,
  };
}

pgTest(
  "a row a constraint refuses fails with why, not the row: its letter is the same at every run",
  async (pg) => {
    // The reason quoted Postgres's "Failing row contains (…)", whose times change at every run:
    // a re-run's letters never matched the file's, which doubled at each run.
    await using(sink(pg.url, pg.table("checked")), async (s) => {
      await s.write(items(1), signal);
      await pg.sql`alter table ${pg.ident("checked")}
        add constraint short_titles check (length(payload->>'title') < 5) not valid`;
      const refused = await s.write(items(1, 1), signal).then(() => "written", (e: Error) => e);
      assert.ok(refused instanceof Error);
      assert.match(refused.message, /violates check constraint "short_titles"/);
      assert.doesNotMatch(refused.message, /Failing row/);
    });
  },
);

pgTest(
  "a table dropped mid-run ends the run, rather than dead-letter every item to come",
  async (pg) => {
    // No item is to blame: each was split down to and dead-lettered (3,620 in the review's run).
    await using(sink(pg.url, pg.table("dropped")), async (s) => {
      await s.write(items(1), signal);
      await pg.sql`drop table ${pg.ident("dropped")}`;
      const refused = await s.write(items(1, 1), signal).then(() => "written", (e: Error) => e);
      assert.ok(refused instanceof Error);
      assert.match(refused.message, /does not exist/);
      assert.ok(endingError(refused), "the run ends");
    });
  },
);

pgTest(
  "a row a row-level security policy refuses is that item's fault: its batch splits, the run goes on",
  async (pg) => {
    // insufficient_privilege (42501) is also what a policy says of one row: taken for a table
    // no write can reach, it ended the run at the first long title.
    const role = `millrace_rls_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
    await pg.sql.unsafe(`create role ${role} login`);
    try {
      const table = pg.ident("policed");
      await pg.sql`create table ${table} (id text primary key, title text, payload jsonb not null,
        vector double precision[], source text, seen_at timestamptz,
        updated_at timestamptz not null default now())`;
      await pg.sql`alter table ${table} enable row level security`;
      await pg.sql.unsafe(`grant usage on schema "${pg.schema}" to ${role}`);
      await pg.sql`grant select, insert, update, delete on ${table} to ${pg.sql(role)}`;
      await pg.sql`create policy short on ${table} for all to ${pg.sql(role)} using (true)
        with check (length(title) < 30)`;
      const url = new URL(pg.url);
      url.username = role;
      await using(sink(url.href, pg.table("policed"), { columns: ["title"] }), async (s) => {
        const [long] = items(1);
        long.payload = { ...long.payload, title: "a title much longer than thirty characters" };
        const refused = await s.write([long], signal).then(() => "written", (e: Error) => e);
        assert.ok(refused instanceof Error);
        assert.match(refused.message, /row-level security/);
        assert.equal(endingError(refused), undefined, "not the end of the run");
      });
    } finally {
      await pg.sql.unsafe(`drop owned by ${role}`).catch(() => {});
      await pg.sql.unsafe(`drop role if exists ${role}`).catch(() => {});
    }
  },
);

pgTest(
  "a server that takes a write and goes silent fails it, and the next write connects again",
  async (pg) => {
    // statement_timeout is the server's: a silent server never sends its
    // error, and postgres.js has no deadline of its own; the write waited for ever.
    const proxy = faultyProxy(new URL(pg.url));
    const s = sink(proxy.url, pg.table("trends"), { timeout: "1s" });
    try {
      await s.open();
      await s.write(items(1), signal);
      proxy.freeze();
      const stuck = s.write(items(1, 1), signal).then(() => "written", (e: Error) => e.message);
      const guard = new Promise<string>((r) =>
        setTimeout(() => r("still waiting after 60s"), 60_000)
      );
      const ended = await Promise.race([stuck, guard]);
      assert.match(ended, /cannot upsert 1 rows of "[^"]+"\."trends": no answer within 6000ms/);
      proxy.thaw();
      await s.write(items(1, 2), signal);
    } finally {
      await s.close();
      await proxy.close();
    }
    assert.equal(await pg.count("trends"), 2, "the first and the last write went in");
  },
);

pgTest(
  "a server that went silent, then refuses connections while it restarts, is waited out as away",
  async (pg) => {
    // The silent statement dropped the pool; opening it again failed in plain words, which the
    // runner retried and split as any failure: a review's restart dead-lettered merge updates.
    const proxy = faultyProxy(new URL(pg.url));
    const s = sink(proxy.url, pg.table("trends"), { timeout: "1s" });
    try {
      await s.write(items(1), signal);
      proxy.freeze();
      await assert.rejects(s.write(items(1, 1), signal), /no answer within/);
      await proxy.down();
      const refused = await s.write(items(1, 2), signal).then(() => undefined, (e: Error) => e);
      assert.ok(refused, "the write fails while the port refuses");
      assert.match(refused.message, /cannot connect to .*ECONNREFUSED/);
      assert.equal(isAway(refused), true, "waited out, not split into dead letters");
      proxy.thaw();
      proxy.up();
      await s.write(items(1, 3), signal);
    } finally {
      await s.close();
      await proxy.close();
    }
    assert.equal(await pg.count("trends"), 2, "the first and the last write went in");
  },
);

pgTest(
  "writes queued behind a busy pool's slow statements are not taken for a silent server",
  async (pg) => {
    // One connection, and every insert sleeps 1.5 s (within the 2 s statement
    // timeout): five writes at once wait up to 6 s for it, past timeout + 5 s
    // counted from when they were sent, and none of that is silence.
    const s = sink(pg.url, pg.table("busy"), { timeout: "2s", maxConnections: 1 });
    await using(s, async () => {
      await s.write(items(1), signal); // creates the table
      const slow = pg.sql`${pg.sql(pg.schema)}.slow_insert`;
      await pg.sql`
      create function ${slow}() returns trigger language plpgsql as
      ${pg.sql.unsafe(`$$ begin perform pg_sleep(1.5); return null; end $$`)}`;
      await pg.sql`
      create trigger slow before insert on ${pg.ident("busy")}
      for each statement execute function ${slow}()`;
      const writes = Array.from({ length: 5 }, (_, k) => s.write(items(1, 1 + k), signal));
      const ended = await Promise.allSettled(writes);
      assert.deepEqual(ended.map((e) => e.status === "rejected" ? String(e.reason) : "written"), [
        "written",
        "written",
        "written",
        "written",
        "written",
      ]);
    });
    assert.equal(await pg.count("busy"), 6);
  },
);

Deno.test("an unreachable server fails at open with a masked URL, and so does the flow", async () => {
  const url = `postgres://app:s3cret@127.0.0.1:${freePort()}/news`;
  const error = await sink(url, "trends").open().then(() => undefined, (e: Error) => e);
  assert.ok(error, "open fails");
  assert.match(error.message, /^postgres sink: cannot connect to postgres:\/\/app:\*\*\*@127/);
  assert.ok(!error.message.includes("s3cret"), error.message);
  assert.ok(!error.message.includes("\n"), "one line");

  const registry = builtinRegistry();
  const flow = defineFlow({
    name: "pg-down",
    output: await Deno.makeTempDir(),
    sources: { gen: { kind: "generator", count: 10 } },
    pipeline: [{ publish: [{ postgres: { url, table: "trends" } }] }],
  }, registry);
  const started = await startError(flow, registry);
  assert.match(started.message, /cannot connect to postgres:\/\/app:\*\*\*@/);
  assert.ok(!started.message.includes("s3cret"));
});

pgCase(
  "a whole flow leaves each valid item once, and running it again adds nothing",
  async (pg) => {
    const count = 400;
    const { items: generated, labels } = generateItems({ count, seed: 7 });
    const expected = new Set(generated.filter((_, i) => labels[i] !== "invalid").map(itemId));
    const invalid = labels.filter((l) => l === "invalid").length;
    const registry = builtinRegistry();
    const out = await Deno.makeTempDir();
    const flow = defineFlow({
      name: "pg-flow",
      output: out,
      sources: { gen: { kind: "generator", count, seed: 7, batch: 64 } },
      pipeline: [
        { validate: { require: ["title", "url"], title: { min: 5 }, spam: ["casino"] } },
        { embed: { dimensions: 32, batch: { size: 50, maxWait: "50ms" } } },
        {
          publish: {
            sinks: [
              { postgres: { url: pg.url, table: pg.table("trends") } },
              { jsonl: { path: "items.jsonl", vectors: false } },
            ],
            batch: { size: 100, maxWait: "50ms" },
          },
        },
      ],
    }, registry);
    for (let run = 1; run <= 2; run++) {
      const log = memoryLogger();
      const report = await runFlow(flow, {
        registry,
        log,
        deadLetters: new MemoryDeadLetters(),
      });
      // Its lines start with the flow's name, as every line of a run does.
      const own = log.lines.filter((l) => l.includes("postgres sink: writing to"));
      assert.ok(own.length > 0 && own.every((l) => l.includes(`${flow.name}: postgres sink:`)));
      assert.equal(report.deadLettered, invalid, `run ${run}: only the invalid items`);
      assert.equal(await pg.count("trends"), expected.size, `run ${run}: one row per valid id`);
    }
    const ids = (await pg.sql`select id from ${pg.ident("trends")}`).map((r) => r.id as string);
    assert.deepEqual(new Set(ids), expected);
    const lines = (await Deno.readTextFile(join(out, "items.jsonl"))).trim().split("\n");
    assert.deepEqual(
      new Set(lines.map((l) => JSON.parse(l).id)),
      expected,
      "the same as the jsonl",
    );
    const [{ missing }] = await pg.sql`
    select count(*)::int as missing from ${pg.ident("trends")} where vector is null`;
    assert.equal(missing, 0, "every row has its vector");
  },
);

Deno.test("with pgvector, the sink indexes the column it adds with HNSW, which nearest's query uses", async () => {
  await withPglite((url) =>
    withPgSchema(async (pg) => {
      const indexes = async (table: string) =>
        (await pg.sql<{ def: string }[]>`
          select indexdef as def from pg_indexes
          where schemaname = ${pg.schema} and tablename = ${table} and indexdef like '%hnsw%'`)
          .map((r) => r.def);
      await using(sink(pg.url, pg.table("trends")), (s) => s.write(items(20), signal));
      const [def] = await indexes("trends");
      assert.match(def ?? "", /USING hnsw \(vector vector_cosine_ops\)/);

      // The shape nearest() sends; with scans off the planner takes the index if it can serve it.
      const query = `[${items(1)[0].vector!.join(",")}]`;
      const plan = await pg.sql.begin(async (tx) => {
        await tx`set local enable_seqscan = off`;
        return (await tx`explain select id from ${pg.ident("trends")}
          where vector is not null order by vector <=> ${query}::text::vector limit 3`)
          .map((r) => String(r["QUERY PLAN"])).join("\n");
      });
      assert.match(plan, /Index Scan using "?trends_vector_hnsw/);
      const found = await nearest(pg.sql, pg.table("trends"), items(1)[0].vector!, 3);
      assert.equal(found[0].id, items(1)[0].id);

      await using(
        sink(pg.url, pg.table("plain"), { index: "none" }),
        (s) => s.write(items(2), signal),
      );
      assert.deepEqual(await indexes("plain"), [], "index: none makes none");
    }, url)
  );
});

Deno.test("the spec is registered as a built-in sink needing no vectors", () => {
  assert.equal(builtinRegistry().sinks.get("postgres"), postgresSink);
  assert.equal(postgresSink.needs, undefined);
});

Deno.test("every pgvector case again on PGlite with the vector extension", async (t) => {
  await withPglite(async (url) => {
    for (const c of cases) {
      await t.step(c.name, () =>
        withPgSchema(async (pg) => {
          await c.fn(pg);
          if (c.name.startsWith("the table is created")) {
            const [{ type }] = await pg.sql`
              select format_type(atttypid, atttypmod) as type from pg_attribute
              where attrelid = ${pg.table("trends")}::regclass and attname = 'vector'`;
            assert.equal(type, "vector(64)", "auto picks pgvector where it is installed");
          }
        }, url));
    }
  });
});

pgTest(
  "a write whose backend is terminated mid-insert is written again, not failed",
  async (pg) => {
    await using(sink(pg.url, pg.table("killed")), async (s) => {
      await s.write(items(1), signal); // creates the table
      const slow = pg.sql`${pg.sql(pg.schema)}.slow_once`;
      // The first insert after this sleeps, so it can be caught in flight; later ones do not.
      await pg.sql`create table ${pg.ident("slept")} (n int)`;
      await pg.sql`
      create function ${slow}() returns trigger language plpgsql as
      ${
        pg.sql.unsafe(
          `$$ begin if not exists (select 1 from ${pg.schema}.slept) then ` +
            `insert into ${pg.schema}.slept values (1); perform pg_sleep(2); end if; ` +
            `return null; end $$`,
        )
      }`;
      await pg.sql`
      create trigger slow before insert on ${pg.ident("killed")}
      for each statement execute function ${slow}()`;
      const writing = s.write(items(20, 1), signal);
      let killed = 0;
      for (let tries = 0; killed === 0 && tries < 100; tries++) {
        await new Promise((r) => setTimeout(r, 50));
        killed = (await pg.sql`
        select pg_terminate_backend(pid) from pg_stat_activity
        where state = 'active' and pid <> pg_backend_pid() and application_name = 'millrace'
          and query ilike ${"%insert into%killed%"}`).length;
      }
      assert.equal(killed, 1, "the insert was caught in flight and its backend terminated");
      await writing;
      assert.equal(await pg.count("killed"), 21);
    });
  },
);

/** A merge update of `item`'s story as a Deduper sends it: the merged fields only. */
function mergeUpdate(item: Envelope<RawItem>, revision: number, sources: string[], score: number) {
  const payload = {
    sources: sources.map((source) => ({
      source,
      url: item.payload.url,
      seenAt: "2024-01-01T00:00:00.000Z",
    })),
    engagement: { score },
    lastSeenAt: new Date(T0 + revision).toISOString(),
    revision,
  };
  return { ...item, vector: undefined, update: true as const, payload: payload as RawItem };
}

pgTest(
  "a merge update changes the row's merged fields only, and only to a higher revision",
  async (pg) => {
    await using(
      sink(pg.url, pg.table("merged"), {
        columns: ["title", "url", "engagement", "sources", "revision", "lastSeenAt"],
      }),
      async (s) => {
        const [a, b] = items(2);
        a.payload = {
          ...a.payload,
          engagement: { score: 1, comments: 7 },
          sources: [],
          revision: 1,
        };
        // b's update overtakes b: it leaves a row of merged fields alone, which b then fills in.
        await s.write([a, mergeUpdate(b, 2, ["x", "y"], 5)], signal);
        const early = await pg.sql`select title, payload from ${
          pg.ident("merged")
        } where id = ${b.id}`;
        assert.equal(early[0].title, null);
        await s.write([{ ...b, payload: { ...b.payload, revision: 1, sources: [] } }], signal);
        await s.write([mergeUpdate(a, 3, ["x", "z"], 9), mergeUpdate(a, 2, ["x"], 4)], signal);
        await s.write([mergeUpdate(a, 2, ["x"], 4)], signal); // late and stale: ignored
        const rows = await pg.sql<
          {
            id: string;
            title: string;
            engagement: unknown;
            payload: Record<string, unknown>;
            has: boolean;
          }[]
        >`select id, title, engagement, payload, vector is not null as has
      from ${pg.ident("merged")} order by title`;
        assert.equal(rows.length, 2);
        const [ra, rb] = rows;
        assert.equal(ra.title, a.payload.title);
        assert.ok(ra.has && rb.has, "vectors kept");
        assert.equal(ra.payload.revision, 3);
        assert.deepEqual((ra.payload.sources as { source: string }[]).map((x) => x.source), [
          "x",
          "z",
        ]);
        assert.deepEqual(ra.payload.engagement, { score: 9, comments: 7 }, "other fields stay");
        assert.deepEqual(
          ra.engagement,
          { score: 9, comments: 7 },
          "a lifted merged column follows",
        );
        assert.equal(ra.payload.text, a.payload.text, "the rest of the payload is untouched");
        // The merged fields' own columns, typed: revision sorts as a number (it was text), and
        // sources is the update's union (a jsonb column appended it to what it held).
        const [cols] = await pg.sql`select revision, sources, last_seen_at,
          pg_typeof(revision)::text as rt, pg_typeof(last_seen_at)::text as lt
          from ${pg.ident("merged")} where id = ${a.id}`;
        assert.equal(cols.revision, 3);
        assert.equal(cols.rt, "integer");
        assert.equal(cols.lt, "timestamp with time zone");
        assert.deepEqual(
          (cols.sources as { source: string }[]).map((x) => x.source),
          ["x", "z"],
        );
        assert.equal(cols.last_seen_at.toISOString(), new Date(T0 + 3).toISOString());
        assert.equal(rb.title, b.payload.title);
        assert.equal(rb.payload.revision, 2, "the first copy kept the update's higher revision");
        assert.deepEqual((rb.payload.sources as { source: string }[]).map((x) => x.source), [
          "x",
          "y",
        ]);
        // The flow run again: a's first copy comes at revision 1, which the row's revision 3
        // outranks. The row stays as it is, updated_at too (before, every story was rewritten).
        const stamp = async () =>
          (await pg.sql`select updated_at, payload from ${pg.ident("merged")} where id = ${a.id}`)[
            0
          ];
        const was = await stamp();
        await new Promise((r) => setTimeout(r, 20));
        await s.write([a], signal);
        const now = await stamp();
        assert.deepEqual(now.payload, was.payload);
        assert.equal(now.updated_at.getTime(), was.updated_at.getTime());
        // A later update over a row that holds sources already: the column is the new union.
        await s.write([mergeUpdate(b, 3, ["x", "y", "w"], 6)], signal);
        const [bc] = await pg.sql`select sources from ${pg.ident("merged")} where id = ${b.id}`;
        assert.deepEqual((bc.sources as { source: string }[]).map((x) => x.source), [
          "x",
          "y",
          "w",
        ]);
      },
    );
  },
);

pgTest(
  "a re-run's first copy, at the revision the row holds, rewrites nothing and keeps the row's sightings",
  async (pg) => {
    // A memory flow run again starts its Deduper afresh: each story's first copy comes at
    // revision 1 again, its sighting stamped now, perhaps from another source. Before, it won
    // at equal revision: updated_at moved on every run and the row's sightings were replaced.
    await using(
      sink(pg.url, pg.table("rerun"), { columns: ["title", "engagement"] }),
      async (s) => {
        const [a] = items(1);
        const copy = (source: string, seenAt: number, score: number): Envelope<RawItem> => ({
          ...a,
          source,
          seenAt,
          payload: {
            ...a.payload,
            sources: [{ source, url: a.payload.url!, seenAt: new Date(seenAt).toISOString() }],
            engagement: { score },
            lastSeenAt: new Date(seenAt).toISOString(),
            revision: 1,
          },
        });
        const row = async () =>
          (await pg.sql`select source, updated_at, payload, engagement from ${
            pg.ident("rerun")
          } where id = ${a.id}`)[0];
        await s.write([copy("wire", T0, 5)], signal);
        const first = await row();
        for (const again of [copy("wire", T0 + 60_000, 5), copy("mirror", T0 + 120_000, 5)]) {
          await new Promise((r) => setTimeout(r, 20));
          await s.write([again], signal);
          const now = await row();
          assert.equal(now.source, "wire");
          assert.deepEqual(now.payload, first.payload, `${again.source}'s copy changed nothing`);
          assert.equal(now.updated_at.getTime(), first.updated_at.getTime());
        }
        // A score grown since is news: engagement by maximum, the sightings kept.
        await s.write([copy("mirror", T0 + 180_000, 8)], signal);
        const grown = await row();
        assert.deepEqual(grown.payload.engagement, { score: 8 });
        assert.deepEqual(grown.engagement, { score: 8 }, "the lifted column follows");
        assert.deepEqual(grown.payload.sources, first.payload.sources);
        await s.write([copy("wire", T0 + 240_000, 6)], signal);
        assert.deepEqual((await row()).payload.engagement, { score: 8 }, "never lowered");
        // A merge update's lower count leaves both the payload's and the column's at the highest.
        await s.write([mergeUpdate(a, 2, ["wire", "x"], 3)], signal);
        const updated = await row();
        assert.equal(updated.payload.revision, 2);
        assert.deepEqual(updated.payload.engagement, { score: 8 });
        assert.deepEqual(updated.engagement, { score: 8 }, "the lifted column follows");
        // An item's own field named revision, with no sightings, is content: its latest copy wins.
        const [b] = items(1, 1);
        const own = (score: number): Envelope<RawItem> => ({
          ...b,
          payload: { ...b.payload, revision: 7, engagement: { score } },
        });
        await s.write([own(50)], signal);
        await s.write([own(40)], signal);
        const [ob] = await pg.sql`select engagement, payload from ${
          pg.ident("rerun")
        } where id = ${b.id}`;
        assert.deepEqual(ob.payload.engagement, { score: 40 });
        assert.deepEqual(ob.engagement, { score: 40 });
        assert.ok(!("sources" in ob.payload) && !("lastSeenAt" in ob.payload), "no fields added");
      },
    );
  },
);

pgTest(
  "Postgres away for a while (refusing connections) is waited out: no item goes to dead letters",
  async (pg) => {
    const proxy = faultyProxy(new URL(pg.url));
    const registry = builtinRegistry().source({
      kind: "trickle",
      summary: "20 batches of 10 items, 200 ms apart",
      schema: postgresSinkSchema.pick({}),
      create: () => ({
        async *read() {
          for (let b = 0; b < 20; b++) {
            yield items(10, b * 10).map((e) => e.payload);
            await new Promise((r) => setTimeout(r, 200));
          }
        },
      }),
    });
    const flow = defineFlow({
      name: "pg-away",
      output: await Deno.makeTempDir(),
      sources: { t: { kind: "trickle" } },
      pipeline: [{
        publish: {
          sinks: [{ postgres: { url: proxy.url, table: pg.table("away") } }],
          batch: { size: 10, maxWait: "50ms" },
        },
      }],
    }, registry);
    const deadLetters = new MemoryDeadLetters();
    const log = memoryLogger();
    const running = runFlow(flow, { registry, log, deadLetters, backoffBase: 1 });
    try {
      // Down once the first rows are in, for longer than the sink's own tries (about 6 s).
      for (let i = 0; i < 200 && await pg.count("away").catch(() => 0) === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await proxy.down();
      await new Promise((r) => setTimeout(r, 9_000));
      proxy.up();
      const report = await running;
      // Before: every batch written while it was away went to dead letters.
      assert.deepEqual(deadLetters.entries.map((l) => l.reason), []);
      assert.equal(report.published, 200);
      assert.equal(await pg.count("away"), 200);
      assert.ok(log.lines.some((l) => l.includes("met an outage")), "the wait was said");
    } finally {
      await proxy.close();
    }
  },
);

pgTest(
  "a role that may write its table but not create in the schema opens and writes; the record of deletes is made only when missing",
  async (pg) => {
    const role = `millrace_writer_${crypto.randomUUID().slice(0, 8)}`;
    const writerUrl = (() => {
      const u = new URL(pg.url);
      u.username = role;
      u.password = "";
      return u.href;
    })();
    await pg.sql`create role ${pg.sql(role)} login`;
    try {
      // The owner makes the table (and the record of deletes), then grants the writer DML only.
      await using(sink(pg.url, pg.table("trends")), async (s) => await s.write(items(1), signal));
      await pg.sql`grant usage on schema ${pg.sql(pg.schema)} to ${pg.sql(role)}`;
      await pg.sql`grant select, insert, update, delete on all tables in schema ${
        pg.sql(pg.schema)
      } to ${pg.sql(role)}`;
      // Before: "permission denied for schema" at every open (CREATE … IF NOT EXISTS needs CREATE).
      await using(sink(writerUrl, pg.table("trends")), async (s) => {
        await s.write(items(2, 1), signal);
        await s.write([{
          ...items(1)[0],
          payload: { url: items(1)[0].payload.url, deleted: true },
        }], signal);
      });
      assert.equal(await pg.count("trends"), 2);

      // Without the record of deletes, and no right to make it: the sink says so and writes on.
      await pg.sql`drop table ${pg.ident("millrace_deleted")}`;
      const warned: string[] = [];
      const s = new PostgresSink(
        postgresSinkSchema.parse({ url: writerUrl, table: pg.table("trends") }),
        { info() {}, warn: (m: string) => void warned.push(m) },
      );
      await using(s, async (s) => {
        await s.write(items(1, 5), signal);
        await s.write([{
          ...items(1, 5)[0],
          payload: { url: items(1, 5)[0].payload.url, deleted: true },
        }], signal);
      });
      assert.equal(await pg.count("trends"), 2);
      assert.match(warned.join("\n"), /cannot create "[^"]+"\."millrace_deleted" .*will not hold/);

      // There, but not this role's to write: said too, and the sink writes on without it.
      await pg.sql`create table ${pg.ident("millrace_deleted")} (
        tbl text not null, id text not null, seen_at timestamptz not null, primary key (tbl, id))`;
      warned.length = 0;
      await using(s, async (s) => await s.write(items(1, 6), signal));
      assert.equal(await pg.count("trends"), 3);
      assert.match(
        warned.join("\n"),
        /"millrace_deleted" is there but this role may not read and write it/,
      );
    } finally {
      await pg.sql`drop owned by ${pg.sql(role)}`;
      await pg.sql`drop role ${pg.sql(role)}`;
    }
  },
);
