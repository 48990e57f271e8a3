/**
 * What the durable end-to-end tests share: a private redis-server (see
 * tests/_redis_server.ts), worker processes running a flow file, and ways
 * to look at the flow's streams and its JSONL output afterwards. Every test
 * stops every process it started, whatever happens.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { type FlowKeys, flowKeys } from "../../../engine/redis/keys.ts";
import { groupState } from "../../../engine/redis/redis_info.ts";
import type { FlowReport } from "../../../engine/run_flow.ts";
import { RedisServer } from "../../_redis_server.ts";

export { freePort, haveRedis, RedisServer, redisTest, withRedis } from "../../_redis_server.ts";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const MAIN = join(ROOT, "main.ts");
export const WORKER = fileURLToPath(new URL("./_worker.ts", import.meta.url));
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"];

/** redis-server arguments for a server that keeps every write on disk in `dir`. */
export function persistentArgs(dir: string): string[] {
  return ["--appendonly", "yes", "--appendfsync", "always", "--dir", dir];
}

/** A test's own client; the caller quits it. */
export function client(server: { port: number }): Redis {
  return new Redis({ port: server.port, host: "127.0.0.1", maxRetriesPerRequest: 1 });
}

/** Writes a flow file into `dir` and returns its path. */
export async function writeFlow(dir: string, yaml: string): Promise<string> {
  const path = join(dir, "flow.yaml");
  await Deno.writeTextFile(path, yaml);
  return path;
}

export interface WorkerResult {
  code: number;
  signal: Deno.Signal | null;
  /** The report of a worker that finished (the last JSON log line's `report`). */
  report?: FlowReport;
  stderr: string;
}

/**
 * One process running a flow file: `main.ts` itself, or the test worker
 * (tests/engine/redis/_worker.ts) whose registry has the test-only
 * stages. Its stderr is kept, for the report and for failure messages.
 */
export class FlowWorker {
  readonly #child: Deno.ChildProcess;
  readonly result: Promise<WorkerResult>;
  #exited = false;

  constructor(
    flowPath: string,
    opts: { main?: boolean; env?: Record<string, string>; args?: string[] } = {},
  ) {
    const script = opts.main ? MAIN : WORKER;
    const args = ["run", ...PERMS, script, ...(opts.main ? ["run"] : []), flowPath];
    if (opts.main) args.push("--log-format", "json", ...opts.args ?? []);
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1", ...opts.env },
    }).spawn();
    const output = new Response(child.stderr).text();
    this.#child = child;
    this.result = (async () => {
      const status = await child.status;
      this.#exited = true;
      const stderr = await output;
      return { code: status.code, signal: status.signal, report: lastReport(stderr), stderr };
    })();
  }

  get pid(): number {
    return this.#child.pid;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** Sends a signal unless the process is gone already. */
  kill(signal: Deno.Signal = "SIGKILL"): void {
    if (this.#exited) return;
    try {
      this.#child.kill(signal);
    } catch {
      // exited meanwhile
    }
  }

  /** Waits for the process to exit by itself; kills it past `timeoutMs` and fails. */
  async finished(timeoutMs: number): Promise<WorkerResult> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), timeoutMs));
    const first = await Promise.race([this.result, late]);
    clearTimeout(timer);
    if (first !== "late") return first;
    this.kill("SIGKILL");
    const r = await this.result;
    throw new Error(`worker ${this.pid} did not finish within ${timeoutMs} ms:\n${tail(r.stderr)}`);
  }
}

/** Kills every worker still running and waits for them all. */
export async function killAll(workers: Iterable<FlowWorker>): Promise<void> {
  const list = [...workers];
  for (const w of list) w.kill("SIGKILL");
  await Promise.allSettled(list.map((w) => w.result));
}

/** The last lines of a process's output, for failure messages. */
export function tail(text: string, lines = 30): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

function lastReport(stderr: string): FlowReport | undefined {
  const lines = stderr.trimEnd().split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const parsed = JSON.parse(lines[i]);
      if (parsed?.report) return parsed.report as FlowReport;
    } catch {
      // not a JSON line
    }
  }
  return undefined;
}

/** Polls `check` every `every` ms until it is true; throws naming `what` past `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
  every = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

/**
 * Every item line of a JSONL file, parsed; merge update lines (`update:
 * true`, a dedupe stage's news about an item already written) are left out
 * unless `updates` is set. A line that does not parse fails the test (two
 * writers interleaved, a torn line run into the next), unless the sink
 * closed it off, as it does a write a kill cut short.
 */
export async function readJsonl(
  path: string,
  { updates = false } = {},
): Promise<Record<string, unknown>[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  if (text === "") return [];
  if (!text.endsWith("\n")) throw new Error(`${path} ends in a torn line: ${text.slice(-200)}`);
  const lines = text.slice(0, -1).split("\n").flatMap((line, i) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      // A write a kill cut short, closed off by the next writer with " \n" (README, "Sinks"):
      // its item was written again on a later line, which the tests' counts check.
      if (line.endsWith(" ")) return [];
      throw new Error(`${path}: line ${i + 1} is not JSON: ${line.slice(0, 200)}`);
    }
  });
  return updates ? lines : lines.filter((l) => l.update !== true);
}

/** Lines in a file so far (cheap progress check while workers write it). */
export async function countLines(path: string): Promise<number> {
  try {
    const bytes = await Deno.readFile(path);
    let n = 0;
    for (const b of bytes) if (b === 10) n++;
    return n;
  } catch {
    return 0;
  }
}

/** How many times each value occurs more than once. */
export function repeats(values: Iterable<string>): Map<string, number> {
  const seen = new Map<string, number>();
  for (const v of values) seen.set(v, (seen.get(v) ?? 0) + 1);
  for (const [k, n] of seen) if (n === 1) seen.delete(k);
  return seen;
}

export { type FlowKeys, flowKeys };

/** One consumer group on one stage stream, as XINFO GROUPS tells it. */
export interface EdgeState {
  key: string;
  group: string;
  /** Entries in the stream (acknowledged ones included until trimmed). */
  length: number;
  /** Entries not yet delivered to the group. */
  lag: number;
  /** Entries delivered and not acknowledged. */
  pending: number;
}

/**
 * Every stage stream of a flow (both lanes) and its group's state. The lag
 * is the engine's checked one (`groupState`): the raw XINFO lag of Redis 7
 * can stay above 0 for ever after an append-only file reload, or be null
 * after deletions, and a test must neither fail on the first nor pass on
 * the second.
 */
export async function edges(redis: Redis, keys: FlowKeys): Promise<EdgeState[]> {
  const streams = await scanKeys(redis, `${keys.prefix}:{${keys.flow}}:in:*`);
  const out: EdgeState[] = [];
  for (const key of streams.sort()) {
    const length = await redis.xlen(key);
    const groups = await redis.xinfo("GROUPS", key) as unknown[][];
    for (const g of groups) {
      const group = String(fields(g).name);
      const { undelivered, pending } = await groupState(redis, key, group);
      out.push({ key, group, length, lag: undelivered, pending });
    }
  }
  return out;
}

/** Keys matching a pattern (SCAN, so it never blocks the server). */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== "0");
  return out;
}

function fields(reply: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = reply[i + 1];
  return out;
}

/** A dead letter as the flow's dlq stream holds it, with its item parsed. */
export interface StoredDeadLetter {
  id: string;
  stage: string;
  reason: string;
  attempts: number;
  item: { id: string; payload: unknown };
}

/** Every entry of the flow's dead-letter stream. */
export async function deadLetters(redis: Redis, keys: FlowKeys): Promise<StoredDeadLetter[]> {
  const entries = await redis.xrange(keys.dlq, "-", "+");
  return entries.map(([id, list]) => {
    const f = fields(list);
    return {
      id,
      stage: String(f.stage),
      reason: String(f.reason),
      attempts: Number(f.attempts),
      item: JSON.parse(String(f.item)),
    };
  });
}

/** Starts a redis-server (optionally keeping its data in `dir`), for a test to stop. */
export function startRedis(opts: { port?: number; dir?: string } = {}): Promise<RedisServer> {
  return RedisServer.start({ port: opts.port, args: opts.dir ? persistentArgs(opts.dir) : [] });
}
