/**
 * A private redis-server per test: started on a free port, keeping nothing
 * on disk, killed at the end. Tests never touch a Redis they did not start,
 * so they can run beside a real one and beside each other.
 *
 * When redis-server is not on PATH, tests declared with `redisTest` are
 * ignored with a printed reason, except in CI (CI=true), where they fail:
 * a CI run that silently skipped the durable tests would prove nothing.
 */

async function probe(): Promise<boolean> {
  try {
    const out = await new Deno.Command("redis-server", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** Whether redis-server can be started here. */
export const haveRedis: boolean = await probe();
const inCI = Deno.env.get("CI") === "true";
if (!haveRedis && !inCI) {
  console.warn("redis-server is not on PATH: tests that need Redis are ignored");
}

/** A Deno.test that needs redis-server (see the module comment for when it is ignored). */
export function redisTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name,
    ignore: !haveRedis && !inCI,
    fn: async () => {
      if (!haveRedis) throw new Error("redis-server is not on PATH, and CI=true requires it");
      await fn();
    },
  });
}

/** A TCP port nobody listens on right now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

export interface RedisServerOptions {
  /** Port to listen on; default: a free one. Pass a stopped server's port to restart it. */
  port?: number;
  /** Extra arguments, e.g. ["--requirepass", "s3cret"]. */
  args?: string[];
}

/** One redis-server process. */
export class RedisServer {
  readonly port: number;
  readonly #child: Deno.ChildProcess;
  readonly #output: Promise<string>;
  #stopped?: Promise<void>;

  private constructor(port: number, child: Deno.ChildProcess) {
    this.port = port;
    this.#child = child;
    this.#output = new Response(child.stdout).text();
  }

  /** The redis-server process id (for signals such as SIGSTOP, and /proc). */
  get pid(): number {
    return this.#child.pid;
  }

  /** Sends a signal, e.g. SIGSTOP / SIGCONT to freeze and thaw it; ignored once it exited. */
  signal(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // already exited
    }
  }

  /** redis://127.0.0.1:<port> (no credentials). */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts a server and waits until it accepts connections. */
  static async start(opts: RedisServerOptions = {}): Promise<RedisServer> {
    const port = opts.port ?? freePort();
    const child = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        ...(opts.args ?? []),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const server = new RedisServer(port, child);
    let exited = false;
    child.status.then(() => exited = true);
    for (const deadline = Date.now() + 5000; Date.now() < deadline && !exited;) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        return server;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const output = await server.#stop();
    throw new Error(`redis-server on port ${port} did not start:\n${output}`);
  }

  /** Freezes the server (SIGSTOP): it keeps its connections open but answers nothing. */
  pause(): void {
    this.#child.kill("SIGSTOP");
  }

  /** Lets a paused server run again (SIGCONT). */
  resume(): void {
    this.#child.kill("SIGCONT");
  }

  /** Kills the server at once (SIGKILL: as a crash looks) and waits for it to exit. */
  async stop(): Promise<void> {
    await this.#stop();
  }

  async #stop(): Promise<string> {
    this.#stopped ??= (async () => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await this.#child.status;
    })();
    await this.#stopped;
    return await this.#output;
  }
}

/** Runs `fn` with a fresh server, stopped afterwards whatever happens. */
export async function withRedis<T>(
  fn: (server: RedisServer) => Promise<T>,
  opts: RedisServerOptions = {},
): Promise<T> {
  const server = await RedisServer.start(opts);
  try {
    return await fn(server);
  } finally {
    await server.stop();
  }
}
