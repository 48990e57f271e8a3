import { join } from "node:path";
import { flowKeys } from "../../engine/redis/keys.ts";
import { type Scenario, size } from "../_scenario.ts";

/**
 * Redis SIGKILL with appendfsync everysec, and the last writes lost with it:
 * the tail of the newest append-only file is cut before the restart, as a
 * crash of the machine (not just the process) would leave it. Redis loads
 * the truncated file (aof-load-truncated), reverting a cut transaction.
 * The first cuts land while the source still runs (a small backlog paces
 * it) and reach back into its last send, which Redis then reverts whole;
 * the last lands just after the source wrote its done mark, or, if the
 * flow drained before it, on a finished flow that one more worker (a rerun)
 * must then finish.
 */
export const aofCut: Scenario = {
  name: "aof-cut",
  about: "SIGKILL redis-server (appendfsync everysec), cut the AOF tail, restart",
  copiesMayRepeat: "the lost tail takes the Deduper's memory of those writes with it, and a copy " +
    "processed first after the restart is taken for the original (README: Reliability)",
  async run(c, mode) {
    const count = size(mode, 3000, 40_000);
    await c.start({
      flow: { source: { kind: "generator", count, seed: 13 }, maxBacklog: 600 },
      workers: 2,
      fsync: "everysec",
    });
    const kills = size(mode, 2, 4);
    const keys = flowKeys(c.name);
    const done = keys.done("news");
    for (let k = 1; k <= kills && !c.signal.aborted; k++) {
      if (k < kills) await c.until(() => c.published >= (count * 0.6 * k) / kills);
      // The last cut takes the source's last batch and its done mark with it.
      else await c.until(async () => (await c.admin().exists(done).catch(() => 0)) === 1);
      await c.killRedis();
      const cut = await cutAofTail(c.redisDir, k < kills ? keys.emitted("news") : undefined);
      c.notes.push(`cut ${Math.round(cut / 1024)} KiB of AOF`);
      await c.restartRedis();
      c.faultEnded();
      // Every worker may have finished before the kill landed (the drain
      // takes a second past the done mark, and a busy machine can delay
      // this loop longer): the cut then reverted acks no worker is left to redo.
      if (c.running.length === 0) {
        // As a user would: run the flow again, which finishes what Redis lost.
        c.notes.push("the cut landed after every worker had finished: one more worker ran");
        c.spawn();
      }
    }
  },
};

/**
 * Cuts the newest incremental AOF file by a fifth (at most 512 KiB), or to
 * just before the last write of `key` when that is further back (cutting
 * that transaction open, so Redis reverts it whole); returns bytes cut.
 *
 * A cut inside a MULTI/EXEC block goes back to before its MULTI, as a
 * Redis without the bug of Redis 7.0 (and Valkey before its PR 4342)
 * truncates: 7.0 keeps the block's first commands in the file and applies
 * them at the next restart. What the engine does about that bug (copies
 * then, never losses) is checked by tests/engine/redis/cut_scripts_test.ts;
 * this scenario checks what a crash costs a flow on a correct Redis.
 */
async function cutAofTail(redisDir: string, key?: string): Promise<number> {
  const dir = join(redisDir, "appendonlydir");
  let newest: { name: string; seq: number } | undefined;
  for await (const e of Deno.readDir(dir)) {
    const m = e.name.match(/\.(\d+)\.incr\.aof$/);
    if (m && (!newest || Number(m[1]) > newest.seq)) newest = { name: e.name, seq: Number(m[1]) };
  }
  if (!newest) return 0;
  const path = join(dir, newest.name);
  const { size } = await Deno.stat(path);
  const text = new TextDecoder("latin1").decode(await Deno.readFile(path));
  let cut = Math.min(Math.floor(size / 5), 512 * 1024);
  if (key) {
    const at = text.lastIndexOf(key);
    if (at > 0) cut = Math.max(cut, size - at);
  }
  // The last block opened before the cut, unless an EXEC wholly before the cut closed it.
  const multi = text.lastIndexOf(MULTI, size - cut);
  if (multi >= 0 && multi > text.lastIndexOf(EXEC, size - cut - EXEC.length)) cut = size - multi;
  await Deno.truncate(path, size - cut);
  return cut;
}

const MULTI = "*1\r\n$5\r\nMULTI\r\n";
const EXEC = "*1\r\n$4\r\nEXEC\r\n";
