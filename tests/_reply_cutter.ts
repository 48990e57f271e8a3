/**
 * A loopback TCP proxy in front of a Redis server that can lose replies:
 * the first `cuts` times a client sends a chunk matching `match`, the
 * proxy forwards it, lets Redis run it, then drops the connection without
 * passing the reply on. That is what a network cut between a command and
 * its reply looks like to a client: the command ran, the client cannot
 * know, and it sends it again on a new connection.
 */
export class ReplyCutter {
  readonly port: number;
  /** How many replies were dropped so far. */
  cut = 0;
  readonly #listener: Deno.Listener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #serving: Promise<void>;

  constructor(
    readonly target: { port: number },
    readonly opts: { match: (chunk: string) => boolean; cuts: number },
  ) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#serving = this.#serve();
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async #serve(): Promise<void> {
    for await (const client of this.#listener) {
      this.#pair(client).catch(() => {});
    }
  }

  async #pair(client: Deno.Conn): Promise<void> {
    const server = await Deno.connect({ hostname: "127.0.0.1", port: this.target.port });
    this.#conns.add(client).add(server);
    let cutting = false;
    const close = () => {
      for (const c of [client, server]) {
        this.#conns.delete(c);
        try {
          c.close();
        } catch { /* already closed */ }
      }
    };
    const toClient = (async () => {
      for await (const chunk of server.readable.values({ preventCancel: true })) {
        if (cutting) continue;
        await writeAll(client, chunk);
      }
    })().catch(() => {}).finally(close); // the server hung up (QUIT): so does the proxy
    const decoder = new TextDecoder();
    try {
      for await (const chunk of client.readable.values({ preventCancel: true })) {
        const lose = this.cut < this.opts.cuts && this.opts.match(decoder.decode(chunk));
        if (lose) {
          cutting = true;
          this.cut++;
        }
        await writeAll(server, chunk);
        if (lose) {
          // Long enough for Redis to run it; its reply is swallowed.
          await new Promise((r) => setTimeout(r, 100));
          break;
        }
      }
    } finally {
      close();
      await toClient;
    }
  }

  async close(): Promise<void> {
    this.#listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    await this.#serving.catch(() => {});
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}
