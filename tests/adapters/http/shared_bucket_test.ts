import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { flowKeys } from "../../../engine/redis/keys.ts";
import { redisTest, withRedis } from "../../_redis_server.ts";
import { withServer } from "../../_http_server.ts";
import { runTestFlow } from "../../../testing.ts";
import { intervalOf } from "../../../adapters/http/gcra.ts";
import { RedisHostBuckets } from "../../../adapters/http/redis_host_buckets.ts";
import { fetchingRegistry, flowYaml, type Made, site } from "./_fetching.ts";

const WORKER = fileURLToPath(new URL("./_shared_bucket_worker.ts", import.meta.url));
const PROCESSES = 3;
const EACH = 6;

/**
 * A rate so slow that a slot lasts 110 s: however loaded the machine, all 21
 * requests take theirs within the first half of one, so a request's wait,
 * in slots, is its place in the shared queue.
 */
const RPS = 0.01;

/** What a worker printed last: its successful GETs and the waits its bucket asked for, in ms. */
interface Done {
  ok: number;
  waits: number[];
}

/** Starts the workers, lets them go together once all are ready; returns what each printed last. */
async function runWorkers(port: number, prefix: string, url: string): Promise<Done[]> {
  const children = Array.from({ length: PROCESSES }, () =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        "--allow-env",
        "--allow-read",
        "--allow-sys",
        WORKER,
        String(port),
        prefix,
        url,
        String(EACH),
        String(RPS),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn());
  try {
    const readers = children.map((c) => c.stdout.pipeThrough(new TextDecoderStream()).getReader());
    for (const r of readers) assert.equal((await r.read()).value?.trim(), "ready");
    const go = new TextEncoder().encode("go\n");
    await Promise.all(children.map(async (c) => {
      const w = c.stdin.getWriter();
      await w.write(go);
      await w.close();
    }));
    const printed = await Promise.all(readers.map(async (r) => {
      let out = "";
      for (let chunk = await r.read(); !chunk.done; chunk = await r.read()) out += chunk.value;
      return JSON.parse(out) as Done;
    }));
    for (const c of children) assert.equal((await c.status).code, 0);
    return printed;
  } finally {
    for (const c of children) {
      try {
        c.kill();
      } catch { /* already gone */ }
    }
  }
}

redisTest(
  "3 processes with perHost.rps 0.01 and burst 1 share one bucket per host through Redis",
  async () => {
    await withRedis(async (server) => {
      const paths: string[] = [];
      await withServer((req) => {
        if (new URL(req.url).pathname === "/warmup") return new Response("warm");
        paths.push(new URL(req.url).pathname);
        return new Response(new URL(req.url).pathname === "/robots.txt" ? "User-agent: *\n" : "ok");
      }, async (origin) => {
        const prefix = `t${crypto.randomUUID().slice(0, 8)}`;
        const done = await runWorkers(server.port, prefix, `${origin}/page`);
        assert.deepEqual(done.map((d) => d.ok), Array(PROCESSES).fill(EACH), "every GET succeeded");
        assert.equal(
          paths.filter((p) => p === "/robots.txt").length,
          PROCESSES,
          "one read per process",
        );
        assert.equal(paths.length, PROCESSES * (EACH + 1));

        // Each request (robots.txt's too) took the next slot of the one bucket:
        // the first went at once, each other waited for its own slot, 1 to 20
        // slots on. A bucket per process would give each its own 1 to 6; no
        // limit, no wait at all.
        const slots = done.flatMap((d) => d.waits).map((ms) => Math.round(ms / intervalOf(RPS)));
        const n = PROCESSES * (EACH + 1);
        assert.deepEqual(
          slots.sort((a, b) => a - b),
          Array.from({ length: n - 1 }, (_, i) => i + 1),
        );

        // The bucket is one key under the flow's keys, expiring once idle.
        const redis = new Redis({ port: server.port, host: "127.0.0.1" });
        try {
          const key = flowKeys("polite", prefix).host(new URL(origin).host);
          assert.ok(Number(await redis.pttl(key)) > 0, `${key} holds the bucket, with an expiry`);
        } finally {
          redis.disconnect();
        }
      });
    });
  },
);

redisTest(
  "a durable flow's HTTP client keeps its buckets in Redis, under the flow's keys",
  async () => {
    await withRedis(async (server) => {
      const seen: { path: string; ua: string | null }[] = [];
      const made: Made[] = [];
      await withServer(site(seen), async (origin) => {
        const { published } = await runTestFlow(
          flowYaml(origin).replace("name: polite\n", "name: polite\ndurability: redis\n"),
          { registry: fetchingRegistry(made), redis: server.url },
        );
        assert.equal(published.get("out")!.length, 3);
      });
      assert.equal(made.length, 1);
      const durable = made[0].ctx?.durable;
      assert.ok(durable, "the factory was given the flow's Redis");
      assert.match(durable.keys.host("127.0.0.1:80"), /:\{polite\}:host:127\.0\.0\.1:80$/);
      assert.ok(seen.every((s) => s.ua === "flowbot/1.0"));
    });
  },
);

redisTest(
  "a Retry-After pause one process writes is what another asks just before it sends",
  async () => {
    // A request that had its turn before the pause went out in the middle of it (0.27 s into a
    // 429's 5 s), its process having no way to see the pause but its own bucket's next turn.
    await withRedis(async (server) => {
      const [a, b] = [1, 2].map(() => new Redis({ port: server.port, host: "127.0.0.1" }));
      try {
        const keys = flowKeys("paused", "pausetest");
        const [one, two] = [a, b].map((r) => new RedisHostBuckets(r, keys));
        assert.equal(await two.pausedFor("example.com"), 0);
        await one.pause("example.com", 5_000, 500, 1);
        const left = await two.pausedFor("example.com");
        assert.ok(left > 4_000 && left <= 5_000, `${left} ms left`);
        assert.equal(await two.pausedFor("example.org"), 0, "another host is not paused");
        await one.pause("example.com", 1_000, 500, 1); // a shorter one does not cut it short
        assert.ok(await two.pausedFor("example.com") > 4_000);
      } finally {
        a.disconnect();
        b.disconnect();
      }
    });
  },
);
