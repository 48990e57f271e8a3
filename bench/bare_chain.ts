/**
 * The baseline: the same six hops as a bare chain of async generators, one
 * item at a time, the way a hand-rolled pipeline is usually written. Each
 * item pays a promise per hop, which is what batching through channels
 * avoids.
 */
async function* source(items: number) {
  for (let i = 0; i < items; i++) {
    yield { title: "item", url: "https://example.com/a/" + i, score: i };
  }
}

async function* pass<T>(input: AsyncIterable<T>): AsyncGenerator<T> {
  for await (const item of input) yield item;
}

export async function runBareChain(items: number): Promise<{ items: number; secs: number }> {
  const started = performance.now();
  let n = 0;
  for await (const _ of pass(pass(pass(pass(pass(source(items))))))) n++;
  return { items: n, secs: (performance.now() - started) / 1000 };
}
