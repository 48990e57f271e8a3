/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Watches SIGINT and SIGTERM on a thread of its own (see signals.ts): the
 * main thread can be busy for a second at a time moving batches, and while
 * it is, its signals wait and two of them merge into one.
 *
 * In: `{ grace }` (ms). Out: `{ type: "ready" }`, then `{ type: "stop" }`
 * at the first signal, `{ type: "kill" }` `grace` ms after it, and
 * `{ type: "exit" }` at a second SIGTERM.
 */
let grace = 30_000;
let stopping = false;

function onSignal(): void {
  if (!stopping) {
    stopping = true;
    // With nobody listening, the next SIGINT ends the process by its default
    // action (exit status 130) at once, however busy the main thread is.
    // First thing: until then a second SIGINT merges into this one.
    Deno.removeSignalListener("SIGINT", onSignal);
    self.postMessage({ type: "stop" });
    setTimeout(() => self.postMessage({ type: "kill" }), grace);
    return;
  }
  // A second SIGTERM. Raising SIGINT, now unhandled, ends the process with
  // 130 at once; without --allow-run the main thread exits at its next turn.
  Deno.removeSignalListener("SIGTERM", onSignal);
  if (Deno.permissions.querySync({ name: "run" }).state === "granted") {
    Deno.kill(Deno.pid, "SIGINT");
  }
  self.postMessage({ type: "exit" });
}

self.onmessage = (event: MessageEvent<{ grace: number }>) => {
  grace = event.data.grace;
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  self.postMessage({ type: "ready" });
};
