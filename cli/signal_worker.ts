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
 *
 * A signal within ECHO_MS of the first is taken for the first's echo, not
 * a second signal: one Ctrl-C under `deno task run` arrives twice, once
 * from the terminal (it signals the whole foreground process group, the
 * deno `deno task` started included) and once more from `deno task`, which
 * passes the signals it gets on to its child. The two come a few ms apart
 * (0.1 to 5 ms measured) or merge into one; a person pressing Ctrl-C again
 * after reading "stopping" takes far longer than ECHO_MS.
 */
const ECHO_MS = 250;

let grace = 30_000;
let stopping = false;
/** True from the first signal until ECHO_MS after it. */
let echoing = false;

function onSignal(): void {
  if (!stopping) {
    stopping = true;
    echoing = true;
    self.postMessage({ type: "stop" });
    setTimeout(() => self.postMessage({ type: "kill" }), grace);
    setTimeout(() => {
      echoing = false;
      // With nobody listening, the next SIGINT ends the process by its
      // default action (exit status 130) at once, however busy the main
      // thread is.
      Deno.removeSignalListener("SIGINT", onSignal);
    }, ECHO_MS);
    return;
  }
  if (echoing) return;
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
