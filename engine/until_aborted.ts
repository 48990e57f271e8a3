/**
 * `promise`, or a rejection with the signal's reason as soon as it aborts:
 * what a hard stop does to work it will not wait for. The work itself goes
 * on unwatched; a command queued while Redis is away, or an actor that
 * ignores its signal, would otherwise hold the stop until it settles, which
 * may be never.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { untilAborted } from "./until_aborted.ts";
 *
 * const kill = new AbortController();
 * const never = untilAborted(new Promise(() => {}), kill.signal);
 * kill.abort(new Error("killed"));
 * await assert.rejects(never, /killed/);
 * ```
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {}); // abandoned: its failure is nobody's to report
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      promise.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}
