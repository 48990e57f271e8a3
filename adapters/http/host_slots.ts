/**
 * Requests in flight per host, in this process: a semaphore per host whose
 * limit each caller names (sources may set their own `perHost.concurrency`).
 * Not shared through Redis: a count of requests in flight across processes
 * would need a lease per request to survive a crash, and the rate bucket,
 * which is shared, is what a host feels; so N processes may have up to N x
 * concurrency requests open to one host.
 */
export class HostSlots {
  readonly #hosts = new Map<string, { active: number; waiting: (() => void)[] }>();

  /** Waits for a free slot of `host` under `limit`; resolves to its release. */
  async acquire(host: string, limit: number, signal?: AbortSignal): Promise<() => void> {
    let state = this.#hosts.get(host);
    if (!state) this.#hosts.set(host, state = { active: 0, waiting: [] });
    while (state.active >= limit) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal?.removeEventListener("abort", abort);
          resolve();
        };
        const abort = () => {
          state!.waiting.splice(state!.waiting.indexOf(wake), 1);
          reject(signal!.reason);
        };
        state!.waiting.push(wake);
        signal?.addEventListener("abort", abort, { once: true });
      });
    }
    state.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      state!.active--;
      const next = state!.waiting.shift();
      if (next) next();
      else if (state!.active === 0) this.#hosts.delete(host);
    };
  }

  /** Requests to `host` in flight now. */
  active(host: string): number {
    return this.#hosts.get(host)?.active ?? 0;
  }
}
