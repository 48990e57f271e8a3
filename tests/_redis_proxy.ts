/**
 * A TCP proxy on 127.0.0.1 in front of a test's redis-server that loses,
 * on purpose, what a flaky network loses: the first time a client's write
 * matches an armed loss, both sides of that connection are closed, with
 *
 * - `loseRequest`: the write never reaching Redis. The caller sees its
 *   connection drop with the command in flight and must retry it; a test
 *   hits exactly the call it means (a source's done check, lease check or
 *   position read) instead of racing CLIENT KILLs against it.
 * - `loseReply`: the write forwarded, Redis given time to run it, and its
 *   reply dropped. The caller cannot know whether its command ran and
 *   sends it again on a new connection: a retried commit must not append
 *   its outputs or dead letters twice.
 *
 * When Redis hangs up (QUIT, a restart), the proxy hangs up on the client
 * too, so the client sees what it would see without the proxy. The target
 * may be a function: a restarted Redis can come back on another port.
 */

/**
 * What a loss waits for, tested against each chunk a client writes:
 * a command as its words (e.g. ["exists", "millrace:{f}:done:news"], matched
 * case-insensitively), a RegExp, or a function also given `tx`, what the
 * connection wrote since its last commit (this chunk included), as a
 * transaction's commands may come in several chunks. Text is latin1.
 */
export type Match = string[] | RegExp | ((chunk: string, tx: string) => boolean);

/** One loss the proxy made: which kind, and what it matched (a command's words, a RegExp's source). */
export interface Loss {
  lose: "request" | "reply";
  what: string;
}

interface Arm {
  lose: Loss["lose"];
  what: string;
  test: (chunk: string, tx: string) => boolean;
  left: number;
}

/** `EXEC`, or EVAL/EVALSHA naming a `tries` (a stage's commit) or `emitted` (a source's append) key. */
export function isCommit(text: string): boolean {
  return /\$4\r\nexec\r\n/i.test(text) ||
    (/\$(4\r\neval|7\r\nevalsha)\r\n/i.test(text) && /:tries\r\n|:emitted:/.test(text));
}

/** A commit, and with `tx`, one whose transaction matches it (e.g. a dead letter's `reason` field). */
export function commit(tx?: RegExp): Match {
  return (chunk, sent) => isCommit(chunk) && (tx?.test(sent) ?? true);
}

/** How long a forwarded command whose reply is lost is given to run before the cut. */
const RUN_MS = 100;
/** How much of a connection's transaction text is kept for matching. */
const TX_CHARS = 256 * 1024;

export class RedisProxy {
  readonly port: number;
  /** Every loss so far, in order. */
  readonly lost: Loss[] = [];
  readonly #target: () => number;
  readonly #arms: Arm[] = [];
  readonly #listener: Deno.TcpListener;
  readonly #open = new Set<Deno.Conn>();
  readonly #pipes = new Set<Promise<void>>();
  readonly #serving: Promise<void>;

  constructor(target: number | (() => number)) {
    this.#target = typeof target === "number" ? () => target : target;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#serving = this.#serve();
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Cuts the next `times` matching writes before they reach Redis. */
  loseRequest(match: Match, times = 1): void {
    this.#arm("request", match, times);
  }

  /** Lets the next `times` matching writes run on Redis, then cuts them before their reply. */
  loseReply(match: Match, times = 1): void {
    this.#arm("reply", match, times);
  }

  get requestsLost(): number {
    return this.lost.filter((l) => l.lose === "request").length;
  }

  get repliesLost(): number {
    return this.lost.filter((l) => l.lose === "reply").length;
  }

  /** Stops listening, hangs up every connection and waits for its pipes to end. */
  async close(): Promise<void> {
    this.#listener.close();
    for (const conn of this.#open) closeQuietly(conn);
    await this.#serving;
    await Promise.all(this.#pipes);
  }

  #arm(lose: Loss["lose"], match: Match, left: number): void {
    if (Array.isArray(match)) {
      const wire = latin1(resp(match)).toLowerCase();
      const what = match.join(" ");
      this.#arms.push({ lose, what, left, test: (chunk) => chunk.toLowerCase().includes(wire) });
    } else if (match instanceof RegExp) {
      this.#arms.push({ lose, what: match.source, left, test: (chunk) => match.test(chunk) });
    } else {
      this.#arms.push({ lose, what: match.name || "a match", left, test: match });
    }
  }

  /** The first armed loss this write matches, used up; undefined: pass it on. */
  #take(chunk: string, tx: string): Loss | undefined {
    const arm = this.#arms.find((a) => a.left > 0 && a.test(chunk, tx));
    if (!arm) return undefined;
    arm.left--;
    const loss = { lose: arm.lose, what: arm.what };
    this.lost.push(loss);
    return loss;
  }

  async #serve(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        const pipe = this.#pipe(client);
        this.#pipes.add(pipe);
        pipe.finally(() => this.#pipes.delete(pipe));
      }
    } catch {
      // listener closed
    }
  }

  async #pipe(client: Deno.Conn): Promise<void> {
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: this.#target() });
    } catch {
      closeQuietly(client);
      return;
    }
    this.#open.add(client).add(server);
    let replying = true;
    const hangUp = () => {
      for (const c of [client, server]) {
        this.#open.delete(c);
        closeQuietly(c);
      }
    };
    const down = async () => {
      const buf = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await server.read(buf);
        if (n === null) break;
        // A lost reply is read and thrown away until the cut: unread, it would make
        // the cut a reset, which may stop Redis before it ran the whole write.
        if (replying) await writeAll(client, buf.subarray(0, n));
      }
    };
    const up = async () => {
      const buf = new Uint8Array(64 * 1024);
      let tx = "";
      for (;;) {
        const n = await client.read(buf);
        if (n === null) break;
        const chunk = buf.subarray(0, n);
        const text = latin1(chunk);
        tx = (tx + text).slice(-TX_CHARS);
        const loss = this.#take(text, tx);
        if (loss?.lose === "request") break;
        if (loss) {
          replying = false; // before the write, so no byte of the reply is passed on
          await writeAll(server, chunk);
          await new Promise((r) => setTimeout(r, RUN_MS));
          break;
        }
        if (isCommit(text)) tx = "";
        await writeAll(server, chunk);
      }
    };
    // Whichever side ends first (a loss, a hang-up on either side) ends both.
    await Promise.all([
      down().catch(() => {}).finally(hangUp),
      up().catch(() => {}).finally(hangUp),
    ]);
  }
}

/** A command as a client writes it: a RESP array of bulk strings. */
function resp(words: string[]): Uint8Array {
  const enc = new TextEncoder();
  const bulk = words.map((w) => `$${enc.encode(w).length}\r\n${w}\r\n`);
  return enc.encode(`*${words.length}\r\n${bulk.join("")}`);
}

function latin1(bytes: Uint8Array): string {
  return new TextDecoder("latin1").decode(bytes);
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // closed already
  }
}
