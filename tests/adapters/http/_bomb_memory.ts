/**
 * Run as a subprocess by bomb_memory_test.ts (and by hand to measure):
 * serves a decompression bomb on 127.0.0.1, fetches it with a cap, and
 * prints how much the process's resident memory rose at its peak (Linux
 * VmHWM, reset before the fetch) and the error the fetch ended with.
 *
 *   deno run -A tests/adapters/http/_bomb_memory.ts gzip 50 [module of fetchLimited]
 *
 * MILLRACE_BOMB_FILE serves that file instead (e.g. a one-member gzip of
 * 1 GiB of zeros: fetch() before this module decoded only the first member
 * of the default multi-member bomb). Before and after, as measured:
 *
 *   head -c 1073741824 /dev/zero | gzip -9 > /tmp/bomb.gz
 *   git show 0ebbb68:adapters/http/http_fetch.ts > adapters/http/_before.ts
 *   MILLRACE_BOMB_FILE=/tmp/bomb.gz deno run -A tests/adapters/http/_bomb_memory.ts gzip 50 \
 *     ../../../adapters/http/_before.ts     # rise ≈ 596 MiB
 *   MILLRACE_BOMB_FILE=/tmp/bomb.gz deno run -A tests/adapters/http/_bomb_memory.ts gzip 50
 *                                           # rise ≈ 83 MiB
 */

import zlib from "node:zlib";

const [encoding = "gzip", capMiB = "50", module = "../../../adapters/http/http_fetch.ts"] =
  Deno.args;
const { fetchLimited } = await import(new URL(module, import.meta.url).href);
const MiB = 1024 * 1024;

/** 1 GiB of zeros, compressed: never inflated here, sent as it is. */
function bomb(): { pieces: Uint8Array[]; encoding: string } {
  const file = Deno.env.get("MILLRACE_BOMB_FILE");
  if (file) return { pieces: [Deno.readFileSync(file)], encoding };
  if (encoding === "br") {
    return {
      pieces: [Deno.readFileSync(new URL("testdata/zeros_1gib.br", import.meta.url))],
      encoding: "br",
    };
  }
  // A gzip file may hold several members, decoded one after the other: 64 × 16 MiB.
  const member = zlib.gzipSync(new Uint8Array(16 * MiB), { level: 9 });
  return { pieces: Array(64).fill(member), encoding: "gzip" };
}

function status(field: string): number {
  const line = Deno.readTextFileSync("/proc/self/status").split("\n")
    .find((l) => l.startsWith(field + ":"));
  return Number(line?.split(/\s+/)[1]) * 1024;
}

const { pieces, encoding: header } = bomb();
let sent = 0;
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
  let i = 0;
  return new Response(
    new ReadableStream({
      pull(c) {
        if (i === pieces.length) return c.close();
        sent += pieces[i].byteLength;
        c.enqueue(pieces[i++]);
      },
    }),
    { headers: { "content-encoding": header, "content-type": "application/xml" } },
  );
});

Deno.writeTextFileSync("/proc/self/clear_refs", "5"); // VmHWM := VmRSS
const before = status("VmRSS");
let error = "";
try {
  await fetchLimited(`http://127.0.0.1:${server.addr.port}/bomb.xml`, {
    maxBytes: Number(capMiB) * MiB,
    timeout: 120_000,
    allow: ["127.0.0.1"],
  });
} catch (err) {
  error = String(err);
}
const peak = status("VmHWM");
await server.shutdown();
console.log(
  JSON.stringify({
    encoding,
    capMiB: Number(capMiB),
    before,
    peak,
    rise: peak - before,
    sent,
    error,
  }),
);
