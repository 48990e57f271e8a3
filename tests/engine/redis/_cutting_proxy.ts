/**
 * A TCP proxy in front of a test's redis-server that cuts a connection the
 * moment a chosen command goes through it: the command never reaches Redis
 * and its caller sees the connection drop with the command in flight. Each
 * command is cut once, the first time it is seen, so a test can hit exactly
 * the call it means (a done check, a lease check) instead of racing a loop
 * of CLIENT KILLs against it.
 */
export class CuttingProxy {
  readonly port: number;
  /** Commands cut so far, in the order they were cut. */
  readonly cut: string[] = [];
  readonly #listener: Deno.TcpListener;
  readonly #pending: Map<string, string[]>;
  readonly #open = new Set<Deno.Conn>();
  readonly #pipes: Promise<void>[] = [];
  readonly #serving: Promise<void>;

  /** `commands`: each one as its words, e.g. ["exists", "millrace:{f}:done:news"]. */
  constructor(readonly upstreamPort: number, commands: string[][]) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#pending = new Map(commands.map((words) => [resp(words), words]));
    this.#serving = this.#serve();
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Stops listening, hangs up every connection and waits for its pipes to end. */
  async close(): Promise<void> {
    this.#listener.close();
    for (const conn of this.#open) closeQuietly(conn);
    await this.#serving;
    await Promise.all(this.#pipes);
  }

  async #serve(): Promise<void> {
    try {
      for await (const client of this.#listener) this.#pipes.push(this.#pipe(client));
    } catch {
      // closed
    }
  }

  async #pipe(client: Deno.Conn): Promise<void> {
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.upstreamPort });
    } catch {
      closeQuietly(client);
      return;
    }
    this.#open.add(client).add(upstream);
    const hangUp = () => {
      for (const c of [client, upstream]) {
        this.#open.delete(c);
        closeQuietly(c);
      }
    };
    const forward = async (from: Deno.Conn, to: Deno.Conn, inspect: boolean) => {
      const buf = new Uint8Array(64 * 1024);
      try {
        for (;;) {
          const n = await from.read(buf);
          if (n === null) break;
          const chunk = buf.subarray(0, n);
          if (inspect && this.#shouldCut(chunk)) break;
          for (let off = 0; off < chunk.length;) off += await to.write(chunk.subarray(off));
        }
      } catch {
        // one side closed
      }
      hangUp();
    };
    await Promise.all([forward(upstream, client, false), forward(client, upstream, true)]);
  }

  #shouldCut(chunk: Uint8Array): boolean {
    const text = new TextDecoder("latin1").decode(chunk).toLowerCase();
    for (const [wire, words] of this.#pending) {
      if (text.includes(wire)) {
        this.#pending.delete(wire);
        this.cut.push(words.join(" "));
        return true;
      }
    }
    return false;
  }
}

/** A command as a client writes it (RESP array of bulk strings), lower-cased. */
function resp(words: string[]): string {
  const bulk = words.map((w) => `$${new TextEncoder().encode(w).length}\r\n${w}\r\n`);
  return `*${words.length}\r\n${bulk.join("")}`.toLowerCase();
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
