/**
 * PGlite (Postgres compiled to WASM) with pgvector, served over the wire
 * protocol on a free port of 127.0.0.1: prints `host:port` on a line once
 * it listens, and stops when its stdin closes.
 *
 * It runs as a child of the test (see withPglite in tests/_postgres.ts),
 * with the deno.json beside it, which is the only place its packages are
 * named, and its own lock file: the project's deno.lock never lists them,
 * and Deno fetches every package its lock file lists, so `deno task run`
 * and the image would otherwise download these 28 MB of test tools.
 */
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

const db = await PGlite.create({ extensions: { vector } });
const server = new PGLiteSocketServer({ db, port: 0, host: "127.0.0.1", maxConnections: 16 });
await server.start();
console.log(server.getServerConn());
for await (const _ of Deno.stdin.readable) {
  // Nothing is read: the test closes stdin to stop the server.
}
await server.stop();
await db.close();
