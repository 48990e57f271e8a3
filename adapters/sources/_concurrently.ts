/**
 * Runs `task` on what `next` hands out, at most `limit` at once, and yields
 * each result as it settles (the order they finish in, not the order they
 * started in). `next` is asked for more whenever a place is free, and
 * answers undefined when there is nothing it wants started now: the loop
 * ends once nothing runs and `next` still has nothing. A task that throws
 * ends the loop with its error, after the others running have settled;
 * so does a caller that stops reading (break, return, throw).
 *
 * A crawl uses it so that one host's slow pages, or the pause its
 * Retry-After asks, do not hold the other hosts' pages: each host's own
 * limits (rate, burst, connections) are still kept by the HTTP client.
 *
 * @example
 * ```ts
 * import { concurrently } from "./_concurrently.ts";
 *
 * const queue = [30, 10, 20];
 * const done: number[] = [];
 * const sleep = (ms: number) => new Promise<number>((r) => setTimeout(() => r(ms), ms));
 * for await (const ms of concurrently(3, () => queue.shift(), sleep)) done.push(ms);
 * if (done.join() !== "10,20,30") throw new Error(done.join());
 * ```
 */
export async function* concurrently<T, R>(
  limit: number,
  next: () => T | undefined,
  task: (input: T) => Promise<R>,
): AsyncGenerator<R> {
  type Settled = { key: number; ok: true; value: R } | { key: number; ok: false; error: unknown };
  const running = new Map<number, Promise<Settled>>();
  let key = 0;
  const fill = () => {
    while (running.size < limit) {
      const input = next();
      if (input === undefined) return;
      const k = key++;
      running.set(
        k,
        task(input).then(
          (value): Settled => ({ key: k, ok: true, value }),
          (error): Settled => ({ key: k, ok: false, error }),
        ),
      );
    }
  };
  try {
    fill();
    while (running.size > 0) {
      const settled = await Promise.race(running.values());
      running.delete(settled.key);
      if (!settled.ok) throw settled.error;
      yield settled.value;
      fill();
    }
  } finally {
    await Promise.allSettled(running.values());
  }
}

/**
 * The URLs taken one host at a time in turn (a, b, c, a, b, c, ...), each
 * host's in the order given: started in this order, a crawl's first pages
 * reach every host at once instead of queueing behind the first one's.
 * URLs that do not parse are taken as one more host.
 */
export function byHostInTurn(urls: readonly string[]): string[] {
  const hosts = new Map<string, string[]>();
  for (const url of urls) {
    const host = URL.parse(url)?.host ?? "";
    const list = hosts.get(host);
    if (list) list.push(url);
    else hosts.set(host, [url]);
  }
  if (hosts.size <= 1) return [...urls];
  const lists = [...hosts.values()];
  const out: string[] = [];
  for (let i = 0; out.length < urls.length; i++) {
    for (const list of lists) if (i < list.length) out.push(list[i]);
  }
  return out;
}
