import { join } from "node:path";
import { builtinRegistry } from "../../builtins.ts";
import { countHttpRequests } from "../../cli/counted_http.ts";
import { FlowWatch } from "../../cli/flow_watch.ts";
import { serveWatch } from "../../cli/watch_server.ts";
import { loadFlow } from "../../config/load_flow.ts";
import { MemoryDeadLetters } from "../../engine/dead_letters.ts";
import { memoryLogger } from "../../engine/log.ts";
import { type RunningFlow, startFlow } from "../../engine/run_flow.ts";

/** A flow of `count` generated items every `every`, validated (some rejected), embedded and written. */
export function generatorFlow(
  name: string,
  opts: { count?: number; every?: string; redis?: string } = {},
): string {
  return [
    `name: ${name}`,
    ...(opts.redis ? ["durability: redis", `redis: ${opts.redis}`] : []),
    "sources:",
    `  gen: { kind: generator, count: ${opts.count ?? 100}, seed: 7` +
    (opts.every ? `, every: ${opts.every}` : "") + " }",
    "pipeline:",
    "  - validate: { require: [title, url], title: { min: 5, max: 500 }, spam: [casino] }",
    "  - embed: { provider: local, dimensions: 16, batch: { size: 32, maxWait: 20ms } }",
    "  - publish:",
    "      - jsonl: { path: items.jsonl }",
  ].join("\n") + "\n";
}

/** A flow started in this process with its HTTP server, as `run --port 0` starts them. */
export interface WatchedFlow {
  url: string;
  running: RunningFlow;
  watch: FlowWatch;
  get(path: string, token?: string): Promise<Response>;
  close(): Promise<void>;
}

export async function startWatched(
  yaml: string,
  opts: { token?: string; eventsEveryMs?: number; hostname?: string } = {},
): Promise<WatchedFlow> {
  const dir = await Deno.makeTempDir({ prefix: "millrace-watch-" });
  await Deno.writeTextFile(join(dir, "flow.yaml"), `output: ${dir}/out\n` + yaml);
  const registry = builtinRegistry();
  const flow = await loadFlow(join(dir, "flow.yaml"), registry);
  const watch = new FlowWatch(flow, { replay: opts.token !== undefined });
  const log = watch.logger(memoryLogger());
  countHttpRequests(registry, (h, s) => watch.metrics.countRequest(h, s));
  const server = serveWatch(watch, {
    port: 0,
    hostname: opts.hostname ?? "127.0.0.1",
    token: opts.token,
    eventsEveryMs: opts.eventsEveryMs,
  });
  const url = `http://127.0.0.1:${server.addr.port}`;
  const running = await startFlow(flow, {
    registry,
    log,
    deadLetters: watch.deadLetters(new MemoryDeadLetters()),
    onBatch: watch.onBatch,
    backoffBase: 1,
  });
  await watch.started(running, log);
  return {
    url,
    running,
    watch,
    get: (path, token) =>
      fetch(url + path, { headers: token ? { authorization: `Bearer ${token}` } : {} }),
    async close() {
      running.stop();
      await running.done.catch(() => {});
      await watch.finished();
      await server.close();
      await watch.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Polls `check` every 20 ms until it returns true; fails after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
