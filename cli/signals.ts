/** What the signal watcher asks of the run. */
export type SignalEvent = "stop" | "kill" | "exit";

/**
 * First SIGINT/SIGTERM: "stop" (drain what was accepted); `grace` ms after
 * that signal: "kill"; a second signal: exit with 130, which for SIGINT the
 * process does by itself, at once. A signal within 250 ms of the first is
 * its echo, not a second one (one Ctrl-C under `deno task` arrives twice:
 * see signal_worker.ts).
 *
 * The signals are watched by a worker (signal_worker.ts), not here: this
 * thread runs the flow and can be busy for a second at a time, and signals
 * that arrive meanwhile merge, so a quick second Ctrl-C would go unseen and
 * the grace timer would start late. Resolves once the worker listens.
 */
export async function watchSignals(
  grace: number,
  on: (event: SignalEvent) => void,
): Promise<{ close(): void }> {
  const worker = new Worker(new URL("./signal_worker.ts", import.meta.url), { type: "module" });
  await new Promise<void>((resolve, reject) => {
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(`cannot watch signals: ${event.message}`));
    };
    worker.onmessage = (event: MessageEvent<{ type: "ready" | SignalEvent }>) => {
      if (event.data.type === "ready") return resolve();
      on(event.data.type);
    };
    worker.postMessage({ grace });
  });
  return { close: () => worker.terminate() };
}
