/**
 * A registry for stage-worker tests: the built-ins, a "numbered" source,
 * and a "poison" stage that may run on workers. The stage throws on any
 * batch holding an item titled POISON (so the runner must split down to
 * it), drops every tenth item, and passes odd items on as new objects and
 * even ones unchanged. Its workers run _poison_worker.ts, which serves this
 * same registry.
 */
import { z } from "zod";
import { builtinRegistry } from "../../builtins.ts";
import type { RawItem } from "../../engine/item.ts";
import type { Registry, StageSpec } from "../../engine/registry.ts";

export const poisonStage: StageSpec<Record<string, never>> = {
  kind: "poison",
  summary: "throws on POISON, drops every tenth item",
  schema: z.object({}),
  workers: () => true,
  create: () => ({
    handle(batch, out) {
      for (const item of batch) {
        if ((item.payload as RawItem).title === "POISON") throw new Error("poisoned batch");
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
  summary: "items 0..count-1; those in poison are titled POISON; those in bad have no url",
  schema: z.object({
    count: z.int(),
    poison: z.array(z.int()).default([]),
    bad: z.array(z.int()).default([]),
  }),
  create: (c: { count: number; poison: number[]; bad: number[] }) => ({
    async *read() {
      for (let i = 0; i < c.count; i += 50) {
        const batch: RawItem[] = [];
        for (let n = i; n < Math.min(c.count, i + 50); n++) {
          batch.push({
            n,
            title: c.poison.includes(n) ? "POISON" : `item number ${n}`,
            ...(c.bad.includes(n) ? {} : { url: `https://example.com/items/${n}` }),
            text: `the text of item ${n} about stream processing and workers`,
          });
        }
        yield batch;
      }
    },
  }),
};

export function poisonRegistry(): Registry {
  return builtinRegistry()
    .source(numberedSource)
    .stage(poisonStage)
    .workerModule(new URL("./_poison_worker.ts", import.meta.url));
}
