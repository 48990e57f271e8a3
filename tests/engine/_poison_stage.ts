/**
 * A registry for stage-worker tests: the built-ins, a "numbered" source,
 * and a "poison" stage that may run on workers. The stage throws on any
 * batch holding an item titled POISON (so the runner must split down to
 * it), drops every tenth item, and passes odd items on as new objects and
 * even ones unchanged. Inside a worker only, an item titled EXIT calls
 * Deno.exit, one titled CLOSE calls self.close, one titled ASYNCTHROW
 * throws from a timer while its batch waits for ever, and `failOpen` fails
 * the worker's open: what a stage's own code may do to the thread it runs
 * on. Its workers run _poison_worker.ts, which serves this same registry.
 */
import { z } from "zod";
import { builtinRegistry } from "../../builtins.ts";
import type { RawItem } from "../../engine/item.ts";
import type { Registry, StageSpec } from "../../engine/registry.ts";

/** Whether this code runs in a Web Worker (a stage worker), not on the main thread. */
const inWorker = "WorkerGlobalScope" in globalThis;

export const poisonStage: StageSpec<{ failOpen: boolean }> = {
  kind: "poison",
  summary: "throws on POISON, drops every tenth item",
  schema: z.object({ failOpen: z.boolean().default(false) }),
  workers: () => true,
  create: (config) => ({
    open() {
      if (config.failOpen && inWorker) throw new Error("this worker cannot open");
    },
    async handle(batch, out) {
      for (const item of batch) {
        const title = (item.payload as RawItem).title;
        if (title === "POISON") throw new Error("poisoned batch");
        if (!inWorker) continue;
        if (title === "EXIT") Deno.exit(3);
        if (title === "CLOSE") (globalThis as unknown as { close(): void }).close();
        if (title === "ASYNCTHROW") {
          setTimeout(() => {
            throw new Error("thrown from a timer");
          });
          await new Promise(() => {});
        }
      }
      for (const item of batch) {
        const n = Number((item.payload as RawItem).n);
        if (n % 10 === 0) out.drop(item, "tenth");
        else if (n % 2) out.emit({ ...item, payload: { ...item.payload, odd: true } });
        else out.emit(item);
      }
    },
  }),
};

export const numberedSource = {
  kind: "numbered",
  summary:
    "items 0..count-1 in batches of `per`; those in poison are titled POISON, those in titles as " +
    "it says; those in bad have no url; those in callable hold a function, which no worker can be sent; " +
    "those in deep a field nested 3,000 levels deep",
  schema: z.object({
    count: z.int(),
    per: z.int().default(50),
    poison: z.array(z.int()).default([]),
    titles: z.record(z.string(), z.string()).default({}),
    bad: z.array(z.int()).default([]),
    callable: z.array(z.int()).default([]),
    deep: z.array(z.int()).default([]),
  }),
  create: (
    c: {
      count: number;
      per: number;
      poison: number[];
      titles: Record<string, string>;
      bad: number[];
      callable: number[];
      deep: number[];
    },
  ) => ({
    async *read() {
      for (let i = 0; i < c.count; i += c.per) {
        const batch: RawItem[] = [];
        for (let n = i; n < Math.min(c.count, i + c.per); n++) {
          batch.push({
            n,
            title: c.poison.includes(n) ? "POISON" : c.titles[n] ?? `item number ${n}`,
            ...(c.bad.includes(n) ? {} : { url: `https://example.com/items/${n}` }),
            text: `the text of item ${n} about stream processing and workers`,
            ...(c.callable.includes(n) ? { format: () => `item ${n}` } : {}),
            ...(c.deep.includes(n) ? { meta: nested(3000) } : {}),
          });
        }
        yield batch;
      }
    },
  }),
};

/** A value nested `depth` objects deep. */
function nested(depth: number): unknown {
  let v: unknown = { leaf: true };
  for (let i = 0; i < depth; i++) v = { v };
  return v;
}

export function poisonRegistry(): Registry {
  return builtinRegistry()
    .source(numberedSource)
    .stage(poisonStage)
    .workerModule(new URL("./_poison_worker.ts", import.meta.url));
}
