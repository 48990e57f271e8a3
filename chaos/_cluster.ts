/**
 * One scenario's world: its own redis-server (append-only, on a free port
 * of 127.0.0.1), the flow file, worker processes kept alive like a
 * restart-on-failure supervisor would, and the measurements taken while
 * faults land (published count over time, peak RSS of the workers). Every
 * process and server it starts is stopped by `close()`, whatever happened.
 */
import { join } from "node:path";
import { Redis } from "ioredis";
import { FlowWorker, RedisServer, type WorkerResult } from "../tests/engine/redis/_harness.ts";
import { type Expected, expectedOf } from "./_expected.ts";
import { type FlowOptions, flowYaml, publishedPath } from "./_flow.ts";
import { RedisProxy } from "../tests/_redis_proxy.ts";
import { peakRssBytes } from "./_rss.ts";

export type Fsync = "always" | "everysec";

export interface ClusterStart {
  flow: Omit<FlowOptions, "name" | "redisUrl" | "dir">;
  workers: number;
  /** Redis fsync policy; default always. */
  fsync?: Fsync;
  /** Put a proxy that can lose commit replies between the workers and Redis. */
  proxy?: boolean;
  env?: Record<string, string>;
}

/** A worker as the supervisor sees it. */
interface Managed {
  worker: FlowWorker;
  /** A signal the scenario sent on purpose (the exit is not a crash). */
  induced?: Deno.Signal;
}

export class Cluster {
  readonly name: string;
  readonly dir: string;
  readonly stop = new AbortController();
  redis!: RedisServer;
  proxy?: RedisProxy;
  expected!: Expected;
  flowPath = "";
  /** Exits nobody asked for (a crash, an error exit), with their code or signal. */
  readonly crashes: string[] = [];
  /** Facts for the report (faults injected, etc.); a function is read when the run ends. */
  readonly notes: (string | (() => string))[] = [];
  #workers: Managed[] = [];
  #restarts = 0;
  #env: Record<string, string> = {};
  #fsync: Fsync = "always";
  #peakRss = 0;
  #faultEnds: number[] = [];
  #samples: { at: number; published: number }[] = [];
  #published = 0;
  #offset = 0;
  #timers: ReturnType<typeof setTimeout>[] = [];
  #cleanups: (() => Promise<void> | void)[] = [];
  #admin?: Redis;

  /** Every flow it writes has this `durable.fuse`. */
  readonly fuse: boolean | "all";

  constructor(name: string, dir: string, fuse: boolean | "all" = false) {
    this.name = name;
    this.dir = dir;
    this.fuse = fuse;
  }

  get signal(): AbortSignal {
    return this.stop.signal;
  }

  /** Starts Redis (and the proxy), writes the flow file and starts the workers. */
  async start(opts: ClusterStart): Promise<void> {
    this.#fsync = opts.fsync ?? "always";
    this.#env = opts.env ?? {};
    await Deno.mkdir(this.redisDir, { recursive: true });
    this.redis = await RedisServer.start({ args: this.#redisArgs() });
    if (opts.proxy) this.proxy = new RedisProxy(() => this.redis.port);
    const url = this.proxy?.url ?? this.redis.url;
    // A stage that throws dead-letters the item itself; a process that dies
    // is charged to its step, which a fused step's first stage names.
    const crashes = this.#env.MILLRACE_TEST_POISON_EXIT === "1";
    this.expected = expectedOf(opts.flow.source, crashes && this.fuse ? "validate" : "poison");
    const full: FlowOptions = {
      ...opts.flow,
      name: this.name,
      redisUrl: url,
      dir: this.dir,
      fuse: this.fuse,
    };
    this.flowPath = join(this.dir, "flow.yaml");
    await Deno.writeTextFile(this.flowPath, flowYaml(full));
    for (let i = 0; i < opts.workers; i++) this.spawn();
    this.#timers.push(setInterval(() => this.#sample(), 100));
  }

  get redisDir(): string {
    return join(this.dir, "redis");
  }

  get jsonlPath(): string {
    return publishedPath(this.dir);
  }

  /** A client of the scenario's own (not through the proxy); closed with the cluster. */
  admin(): Redis {
    if (!this.#admin) {
      this.#admin = new Redis({
        port: this.redis.port,
        host: "127.0.0.1",
        maxRetriesPerRequest: 1,
      });
      this.#admin.on("error", () => {}); // a fault of the scenario's own making
    }
    return this.#admin;
  }

  #redisArgs(): string[] {
    return [
      "--appendonly",
      "yes",
      "--appendfsync",
      this.#fsync,
      "--dir",
      this.redisDir,
      "--aof-load-truncated",
      "yes",
    ];
  }

  /** SIGKILLs Redis (a crash); `restart` brings it back on the same port and data. */
  async killRedis(): Promise<void> {
    this.#admin?.disconnect();
    this.#admin = undefined;
    await this.redis.stop();
  }

  async restartRedis(): Promise<void> {
    this.redis = await RedisServer.start({ port: this.redis.port, args: this.#redisArgs() });
  }

  /** Starts one more worker. */
  spawn(): FlowWorker {
    const worker = new FlowWorker(this.flowPath, { env: this.#env });
    const managed: Managed = { worker };
    this.#workers.push(managed);
    worker.result.then((r) => {
      if (this.signal.aborted) return;
      const asked = managed.induced !== undefined;
      if (r.code === 0 && r.signal === null) return; // finished, or stopped by SIGTERM
      if (!asked) this.crashes.push(crashOf(r));
      // Restart on failure, as a container runtime or systemd would.
      this.#restarts++;
      const t = setTimeout(() => {
        this.#restarts--;
        if (!this.signal.aborted) this.spawn();
      }, 200);
      this.#timers.push(t);
    });
    return worker;
  }

  /** Workers still running. */
  get running(): FlowWorker[] {
    return this.#workers.filter((m) => !m.worker.exited).map((m) => m.worker);
  }

  /** Sends `signal` to a worker on purpose; a killed one is restarted, a SIGTERMed one is not. */
  signalWorker(worker: FlowWorker, signal: Deno.Signal): void {
    const m = this.#workers.find((x) => x.worker === worker);
    if (m && signal !== "SIGSTOP" && signal !== "SIGCONT") m.induced = signal;
    worker.kill(signal);
  }

  /** Marks the end of a fault: time to recover is measured from here. */
  faultEnded(): void {
    this.#faultEnds.push(performance.now());
  }

  /** Lines published to JSONL so far. */
  get published(): number {
    return this.#published;
  }

  /** Whether the source's items are all through (nothing left to hit with faults). */
  get nearlyDone(): boolean {
    return this.#published >= this.expected.published.size * 0.95;
  }

  /** Sleeps, cut short when the scenario is stopped. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.signal.aborted) return resolve();
      const t = setTimeout(done, ms);
      const signal = this.signal;
      function done() {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Waits until `check` holds (or the scenario is stopped). */
  async until(check: () => boolean | Promise<boolean>, every = 50): Promise<void> {
    while (!this.signal.aborted && !(await check())) await this.sleep(every);
  }

  /** Runs `fn` when the cluster closes (a fake server, a Postgres schema). */
  onClose(fn: () => Promise<void> | void): void {
    this.#cleanups.push(fn);
  }

  /** Waits for every worker to exit by itself (the flow drained). */
  async drained(): Promise<void> {
    await this.until(() => this.#workers.every((m) => m.worker.exited) && this.#restarts === 0);
  }

  #sample(): void {
    this.#countPublished();
    this.#samples.push({ at: performance.now(), published: this.#published });
    if (++this.#ticks % 5 !== 0 || this.#sampling) return;
    // Peak RSS every 500 ms; VmHWM keeps the peak between samples.
    this.#sampling = true;
    const pids = this.#workers.filter((m) => !m.worker.exited).map((m) => m.worker.pid);
    peakRssBytes(pids).then((peaks) => {
      for (const bytes of peaks.values()) this.#peakRss = Math.max(this.#peakRss, bytes);
    }).finally(() => this.#sampling = false);
  }

  #ticks = 0;
  #sampling = false;

  /** Counts newlines appended since the last look, reading only the new bytes. */
  #countPublished(): void {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(this.jsonlPath, { read: true });
    } catch {
      return;
    }
    try {
      file.seekSync(this.#offset, Deno.SeekMode.Start);
      const buf = new Uint8Array(1 << 20);
      while (true) {
        const n = file.readSync(buf);
        if (n === null || n === 0) break;
        for (let i = 0; i < n; i++) if (buf[i] === 10) this.#published++;
        this.#offset += n;
      }
    } finally {
      file.close();
    }
  }

  get peakRssMiB(): number {
    return this.#peakRss / 2 ** 20;
  }

  /**
   * Seconds from each fault's end to the next rise of the published count;
   * the worst of them. Undefined when no fault ended while items remained.
   */
  get recoverSecs(): number | undefined {
    let worst: number | undefined;
    for (const end of this.#faultEnds) {
      const at = this.#samples.findLast((s) => s.at <= end);
      const base = at?.published ?? 0;
      if (base >= this.expected.published.size) continue;
      const next = this.#samples.find((s) => s.at > end && s.published > base);
      const secs = next ? (next.at - end) / 1000 : (performance.now() - end) / 1000;
      worst = Math.max(worst ?? 0, secs);
    }
    return worst;
  }

  /** Kills every worker still running (no restarts: the cluster is stopped first). */
  async killWorkers(): Promise<void> {
    this.stop.abort();
    for (const t of this.#timers) clearTimeout(t);
    for (const m of this.#workers) {
      m.worker.kill("SIGCONT");
      m.worker.kill("SIGKILL");
    }
    await Promise.allSettled(this.#workers.map((m) => m.worker.result));
  }

  /** Stops every process and server it started, and removes its files; once. */
  close(keep = false): Promise<void> {
    this.#closed ??= this.#close(keep);
    return this.#closed;
  }

  #closed?: Promise<void>;

  async #close(keep: boolean): Promise<void> {
    await this.killWorkers();
    for (const fn of this.#cleanups.reverse()) await Promise.resolve(fn()).catch(() => {});
    this.#admin?.disconnect();
    await this.proxy?.close();
    if (this.redis) {
      this.redis.signal("SIGCONT");
      await this.redis.stop();
    }
    if (!keep) return await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    // Kept for a look: each worker's log beside Redis's files and the output.
    for (const [i, m] of this.#workers.entries()) {
      const r = await m.worker.result;
      await Deno.writeTextFile(join(this.dir, `worker-${i + 1}.log`), r.stderr);
    }
  }
}

/** A crash in a few words: its signal or exit code, and its last error line. */
function crashOf(r: WorkerResult): string {
  const errors = r.stderr.split("\n").filter((l) => /"level":"error"|error:/i.test(l));
  const last = errors.at(-1)?.replace(/^.*"msg":"([^"]*)".*$/, "$1").slice(0, 120);
  return `${r.signal ?? `exit ${r.code}`}${last ? ` (${last})` : ""}`;
}
