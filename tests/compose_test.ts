import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { builtinRegistry } from "../builtins.ts";
import { loadFlow } from "../config/load_flow.ts";

// No container engine runs where millrace is developed: these check what
// can be checked without one, that compose.yaml, the Dockerfile and the
// flow the workers run agree with each other.

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
}
const compose = parse(Deno.readTextFileSync(join(ROOT, "compose.yaml"))) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const dockerfile = Deno.readTextFileSync(join(ROOT, "Dockerfile"));

/** `${NAME:-default}` as compose substitutes it with nothing set. */
function defaults(text: string): string {
  return text.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, "$1");
}

Deno.test("compose: Redis is append-only on a volume, Postgres has pgvector, Qdrant keeps its storage", () => {
  const { redis, postgres, qdrant } = compose.services;
  assert.ok(redis.command!.join(" ").includes("--appendonly yes"));
  assert.ok(redis.volumes!.some((v) => v.endsWith(":/data")));
  assert.match(postgres.image!, /^pgvector\/pgvector:/);
  assert.ok(postgres.volumes!.some((v) => v.endsWith(":/var/lib/postgresql/data")));
  assert.ok(qdrant.volumes!.some((v) => v.endsWith(":/qdrant/storage")));
  for (const volume of ["redis-data", "postgres-data", "qdrant-data", "out"]) {
    assert.ok(volume in compose.volumes, `volume ${volume} is declared`);
  }
});

Deno.test("compose: the workers' flow loads with their environment and writes to the out volume", async () => {
  const { worker } = compose.services;
  const [flowFile, ...args] = worker.command!;
  const env = Object.fromEntries(
    Object.entries(worker.environment!).map(([k, v]) => [k, defaults(v)]),
  );
  const flow = await loadFlow(join(ROOT, flowFile), builtinRegistry(), {
    ...env,
    HOSTNAME: "0123456789ab",
  });
  assert.equal(flow.durability, "redis", "workers scale only on a durable flow");
  assert.equal(flow.redis, "redis://redis:6379");
  const publish = flow.pipeline.find((s) => s.kind === "publish")!;
  assert.deepEqual((publish.config as { sinks: { kind: string }[] }).sinks.map((s) => s.kind), [
    "postgres",
    "qdrant",
    "jsonl",
  ]);
  assert.equal(flow.outDir, join(ROOT, "out", "stack", "0123456789ab"), "one directory per worker");
  assert.ok(worker.volumes!.includes("out:/app/out"), "out/ is the volume");
  // The HEALTHCHECK asks the port the workers serve.
  const port = args[args.indexOf("--port") + 1];
  assert.ok(dockerfile.includes(`http://127.0.0.1:${port}/healthz`));
});

Deno.test("Dockerfile: tini is PID 1 in front of deno task run", () => {
  assert.match(dockerfile, /apt-get install -y --no-install-recommends tini/);
  // -q: no "Task run ..." line ahead of the flow's own, which breaks --log-format json.
  assert.match(dockerfile, /ENTRYPOINT \["\/usr\/bin\/tini", "--", "deno", "task", "-q", "run"\]/);
  assert.match(dockerfile, /HEALTHCHECK /);
  // Run with the port's permission alone: `deno eval` grants every permission.
  assert.match(
    dockerfile,
    /CMD \["deno", "run", "--no-config", "--no-prompt", "--allow-net=127\.0\.0\.1:9464", "data:/,
  );
  assert.doesNotMatch(dockerfile, /"deno", "eval"/);
});
