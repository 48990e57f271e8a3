/**
 * Redis writes a script's effects to its append-only file as one MULTI/EXEC
 * block, and a crash can cut the file inside one. Redis 7.0 then keeps the
 * cut block's first commands in the file (it truncates at the last whole
 * command, not before the MULTI: fixed later in Valkey), and the next
 * restart applies them, so any first part of a script's writes may come
 * back alone. What that may cost is a copy, never a loss: a script's mark
 * that says its work is done (a source send's number, a commit's XACK) is
 * written after all of that work. Checked on the file a real run leaves.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { defineFlow } from "../../../config/define_flow.ts";
import { MemoryDeadLetters } from "../../../engine/dead_letters.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { startFlow } from "../../../engine/run_flow.ts";
import { conformanceRegistry, Probe } from "../_conformance_registry.ts";
import { persistentArgs, redisTest, withRedis } from "./_harness.ts";

/** The MULTI/EXEC blocks of every append-only file in `dir`, each as its commands. */
async function transactions(dir: string): Promise<string[][][]> {
  const blocks: string[][][] = [];
  let open: string[][] | undefined;
  for await (const e of Deno.readDir(join(dir, "appendonlydir"))) {
    if (!e.name.endsWith(".incr.aof")) continue;
    const text = new TextDecoder("latin1").decode(
      await Deno.readFile(join(dir, "appendonlydir", e.name)),
    );
    for (const command of commands(text)) {
      const name = command[0].toUpperCase();
      if (name === "MULTI") open = [];
      else if (name === "EXEC") open && blocks.push(open), open = undefined;
      else open?.push(command);
    }
  }
  return blocks;
}

/** The commands of an append-only file (RESP arrays of bulk strings). */
function* commands(text: string): Generator<string[]> {
  let at = 0;
  const line = () => {
    const end = text.indexOf("\r\n", at);
    const s = text.slice(at, end);
    at = end + 2;
    return s;
  };
  while (at < text.length) {
    const count = Number(line().slice(1));
    const args: string[] = [];
    for (let i = 0; i < count; i++) {
      const length = Number(line().slice(1));
      args.push(text.slice(at, at + length));
      at += length + 2;
    }
    yield args;
  }
}

redisTest(
  "a script cut short by a crash leaves its done mark only after all its work",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "millrace-cut-scripts-" });
    try {
      await withRedis(async (server) => {
        const registry = conformanceRegistry(new Probe());
        const flow = defineFlow({
          name: "cut",
          output: join(dir, "out"),
          durability: "redis",
          redis: server.url,
          sources: { n: { kind: "feed", count: 300, batch: 100 } },
          // Two items are spam: validate's commits carry dead letters too.
          pipeline: [{ validate: { spam: ["n7", "n242"] } }, { record: {} }],
        }, registry);
        const running = await startFlow(flow, {
          registry,
          deadLetters: new MemoryDeadLetters(),
          log: memoryLogger(),
        });
        const report = await running.done;
        assert.equal(report.deadLettered, 2);
      }, { args: persistentArgs(dir) });

      let sends = 0, commits = 0, letters = 0;
      for (const block of await transactions(dir)) {
        const at = (test: (c: string[]) => boolean) => block.findIndex(test);
        const last = (test: (c: string[]) => boolean) => block.findLastIndex(test);
        const xadd = last((c) => c[0].toUpperCase() === "XADD");
        const mark = at((c) => c[0].toUpperCase() === "SET" && c[1].endsWith(":emitted:n"));
        if (mark >= 0) {
          sends++;
          const work = last((c) => c[0].toUpperCase() === "XADD" || /:(pos|done):n$/.test(c[1]));
          assert.ok(
            work < mark,
            `a send's number comes after its entries: ${block.map((c) => c[0])}`,
          );
        }
        const ack = at((c) => c[0].toUpperCase() === "XACK");
        if (ack >= 0 && xadd >= 0) {
          commits++;
          if (block.some((c) => c[0].toUpperCase() === "XADD" && c[1].endsWith(":dlq"))) letters++;
          assert.ok(
            xadd < ack,
            `a commit acknowledges after its outputs: ${block.map((c) => c[0])}`,
          );
        }
      }
      assert.ok(sends >= 3, `the source's sends were checked (${sends})`);
      assert.ok(commits >= 3, `commits with outputs were checked (${commits})`);
      assert.ok(letters >= 1, `a commit with dead letters was checked (${letters})`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
