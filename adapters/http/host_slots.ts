/**
 * Requests in flight per host, in this process: a semaphore per host whose
 * limit each caller names (sources may set their own `perHost.concurrency`).
 * Not shared through Redis: a count of requests in flight across processes
 * would need a lease per request to survive a crash, and the rate bucket,
 * which is shared, is what a host feels; so N processes may have up to N x
 * concurrency requests open to one host.
 */
export class HostSlots {
  /**
   * Per host: requests in flight, waiters, and waiters woken but not yet
   * running. The state is dropped only when all three are zero: two
   * releases in one turn must not drop it under a woken waiter, which would
   * then count itself on a state nobody else sees.
   */
  readonly #hosts = new Map<string, { active: number; waking: number; waiting: (() => void)[] }>();

  /** Waits for a free slot of `host` under `limit`; resolves to its release. */
  async acquire(host: string, limit: number, signal?: AbortSignal): Promise<() => void> {
    let state = this.#hosts.get(host);
    if (!state) this.#hosts.set(host, state = { active: 0, waking: 0, waiting: [] });
    const s = state;
    while (s.active >= limit) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal?.removeEventListener("abort", abort);
          resolve();
        };
        const abort = () => {
          s.waiting.splice(s.waiting.indexOf(wake), 1);
          this.#prune(host, s);
          reject(signal!.reason);
        };
        s.waiting.push(wake);
        signal?.addEventListener("abort", abort, { once: true });
      });
      s.waking--;
    }
    s.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      s.active--;
      const next = s.waiting.shift();
      if (next) {
        s.waking++;
        next();
      } else this.#prune(host, s);
    };
  }

  /** Requests to `host` in flight now. */
  active(host: string): number {
    return this.#hosts.get(host)?.active ?? 0;
  }

  #prune(host: string, s: { active: number; waking: number; waiting: unknown[] }): void {
    if (s.active === 0 && s.waking === 0 && s.waiting.length === 0 && this.#hosts.get(host) === s) {
      this.#hosts.delete(host);
    }
  }
}
