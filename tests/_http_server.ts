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
