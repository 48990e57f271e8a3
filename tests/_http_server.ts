/**
 * Runs `run` against a throwaway HTTP server on 127.0.0.1 (a free port),
 * shut down afterwards whatever happens: the stand-in for the web in tests.
 */
export async function withServer(
  handler: (req: Request) => Response | Promise<Response>,
  run: (origin: string) => Promise<void>,
): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  try {
    await run(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    await server.shutdown();
  }
}

/**
 * A broken or hostile server's reply: `total` bytes of JSON whitespace with
 * no Content-Length, made as the reader pulls; `sent` counts what was made,
 * so a test can tell that its client stopped reading at its cap.
 */
export class Flood {
  sent = 0;
  constructor(readonly total = 256 * 1024 * 1024) {}

  response(): Response {
    const chunk = new TextEncoder().encode(" ".repeat(64 * 1024));
    const body = new ReadableStream<Uint8Array>({
      pull: (c) => {
        if (this.sent >= this.total) return c.close();
        this.sent += chunk.length;
        c.enqueue(chunk);
      },
    });
    return new Response(body, { headers: { "content-type": "application/json" } });
  }
}
