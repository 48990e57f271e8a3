/**
 * A TCP proxy on 127.0.0.1 in front of a Redis that can lose the reply to
 * a commit: an EXEC, or a script call that commits (a stage's commit names
 * the flow's `tries` key, a source's append its `emitted` key). Once armed,
 * the next client write that holds one is forwarded to Redis, which runs
 * it, and then both sides of that connection are closed before the reply
 * comes back. The client sees a
 * dropped connection and cannot know whether its transaction ran: the case
 * a retry must not turn into a second copy of the transaction's effects.
 */

/** `*1\r\n$4\r\nEXEC\r\n` in any case, as RESP carries the command. */
const EXEC = /\$4\r\nexec\r\n/i;
/** A script call that commits: EVAL or EVALSHA naming a `tries` or `emitted` key. */
const SCRIPT = /\$(4\r\neval|7\r\nevalsha)\r\n/i;
const COMMIT_KEY = /:tries\r\n|:emitted:/;
const isCommit = (text: string) => EXEC.test(text) || (SCRIPT.test(text) && COMMIT_KEY.test(text));

export class ExecDropProxy {
  readonly port: number;
  /** EXEC replies dropped so far. */
  dropped = 0;
  readonly #listener: Deno.TcpListener;
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #accepting: Promise<void>;

  constructor(readonly target: () => number) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#accepting = this.#accept();
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /**
   * Makes the next commit on any connection lose its reply; with `match`,
   * the next commit whose commands match it (e.g. a dead letter's `reason`
   * field, to hit a commit that writes dead letters).
   */
  arm(match?: RegExp): void {
    this.#arms.push(match);
  }

  /** Drops still to make, each with what its transaction must hold (undefined: anything). */
  readonly #arms: (RegExp | undefined)[] = [];

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) this.#pipe(client);
    } catch {
      // listener closed
    }
  }

  async #pipe(client: Deno.TcpConn): Promise<void> {
    let server: Deno.TcpConn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: this.target() });
    } catch {
      client.close();
      return;
    }
    this.#conns.add(client).add(server);
    let cut = false;
    const close = () => {
      for (const c of [client, server]) {
        this.#conns.delete(c);
        try {
          c.close();
        } catch {
          // closed already
        }
      }
    };
    const up = (async () => {
      const buf = new Uint8Array(64 * 1024);
      const decoder = new TextDecoder("latin1");
      // What the client sent since its last EXEC (the transaction's commands).
      let tx = "";
      while (true) {
        const n = await client.read(buf);
        if (n === null) break;
        const chunk = buf.subarray(0, n);
        const text = decoder.decode(chunk);
        tx = (tx + text).slice(-256 * 1024);
        const exec = isCommit(text);
        const arm = exec ? this.#arms.findIndex((m) => m === undefined || m.test(tx)) : -1;
        if (arm >= 0) {
          // Set before the write, so no byte of the reply is passed on.
          cut = true;
          this.#arms.splice(arm, 1);
          this.dropped++;
          await writeAll(server, chunk);
          // Let Redis run the transaction, then drop its reply with the connection.
          await new Promise((r) => setTimeout(r, 50));
          break;
        }
        if (exec) tx = "";
        await writeAll(server, chunk);
      }
    })();
    const down = (async () => {
      const buf = new Uint8Array(64 * 1024);
      while (!cut) {
        const n = await server.read(buf);
        if (n === null || cut) break;
        await writeAll(client, buf.subarray(0, n));
      }
    })();
    await Promise.race([up, down]).catch(() => {});
    close();
    await Promise.allSettled([up, down]);
  }

  async close(): Promise<void> {
    this.#listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // closed already
      }
    }
    this.#conns.clear();
    await this.#accepting;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}
