import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { flowKeys } from "../../../engine/redis/keys.ts";
import { redisTest, withRedis } from "../../_redis_server.ts";
import { withServer } from "../../_http_server.ts";
import { runTestFlow } from "../../../testing.ts";
import { mostInWindow } from "./_fake_clock.ts";
import { fetchingRegistry, flowYaml, type Made, site } from "./_fetching.ts";

const WORKER = fileURLToPath(new URL("./_shared_bucket_worker.ts", import.meta.url));
const PROCESSES = 3;
const EACH = 6;

/**
 * Starts the workers, lets them go together once all are ready, and
 * returns what each printed last (its successful GETs).
 */
async function runWorkers(port: number, prefix: string, url: string): Promise<number[]> {
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
      return Number(out.trim());
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
  "3 processes with perHost.rps 5 and burst 1 share one bucket per host through Redis",
  async () => {
    await withRedis(async (server) => {
      const arrivals: number[] = [];
      const paths: string[] = [];
      await withServer((req) => {
        if (new URL(req.url).pathname === "/warmup") return new Response("warm");
        arrivals.push(performance.now());
        paths.push(new URL(req.url).pathname);
        return new Response(new URL(req.url).pathname === "/robots.txt" ? "User-agent: *\n" : "ok");
      }, async (origin) => {
        const prefix = `t${crypto.randomUUID().slice(0, 8)}`;
        const done = await runWorkers(server.port, prefix, `${origin}/page`);
        assert.deepEqual(done, Array(PROCESSES).fill(EACH), "every GET succeeded");
        assert.equal(
          paths.filter((p) => p === "/robots.txt").length,
          PROCESSES,
          "one read per process",
        );
        assert.equal(arrivals.length, PROCESSES * (EACH + 1));

        // The bucket is one key under the flow's keys, expiring once idle.
        const redis = new Redis({ port: server.port, host: "127.0.0.1" });
        try {
          const key = flowKeys("polite", prefix).host(new URL(origin).host);
          assert.ok(Number(await redis.pttl(key)) > 0, `${key} holds the bucket, with an expiry`);
        } finally {
          redis.disconnect();
        }
      });
      // Slots are 220 ms apart on Redis's clock (1/rps and the limiter's 10%
      // slack), so 6 span 1,100 ms; a request reaches the server some ms
      // after its slot, by a delay that varies with the machine's load (6
      // arrivals within 969 ms were seen once in 21 runs on 2 loaded cores).
      // A window of 850 ms leaves 250 ms for that; without the shared bucket
      // 3 processes send about 12 in it, and at twice the rate 8.
      const most = mostInWindow(arrivals, 850);
      assert.ok(most <= 5, `at most 5 requests in any 850 ms, saw ${most}`);
      const span = Math.max(...arrivals) - Math.min(...arrivals);
      assert.ok(span >= (arrivals.length - 1) * 200 - 50, `21 requests at 5 rps take 4 s: ${span}`);
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
