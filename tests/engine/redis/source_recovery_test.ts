/**
 * A durable source outlives what Redis forgets and what the network drops:
 * a done mark lost with the tail of the append-only file is noticed and the
 * source runs again from its saved position; a connection cut during the
 * source's done check, lease check or position read is retried. Before,
 * either one left the flow waiting for ever.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Envelope } from "../../../engine/item.ts";
import { itemId } from "../../../engine/item.ts";
import { RedisProxy } from "../../_redis_proxy.ts";
import {
  client,
  flowKeys,
  FlowWorker,
  readJsonl,
  redisTest,
  repeats,
  startRedis,
  tail,
  waitFor,
  writeFlow,
} from "./_harness.ts";
import { numberedItem } from "./_worker.ts";

/** Past this a worker that has not finished is taken as hung: the test fails. */
const HUNG_AFTER_MS = 45_000;

function sourceFlow(
  name: string,
  url: string,
  dir: string,
  count: number,
  slowMs: number,
  maxBacklog = 50_000,
) {
  return `
name: ${name}
durability: redis
redis: ${url}
output: ${dir}
sources:
  news: { kind: numbered, count: ${count}, batch: 10 }
pipeline:
  - slow: { ms: ${slowMs} }
  - publish:
      sinks: [ { jsonl: { path: items.jsonl } } ]
      batch: { size: 50, maxWait: 50ms }
durable: { claimAfter: 1s, entryItems: 10, maxBacklog: ${maxBacklog} }
`;
}

/** The messages of a worker's JSON log lines. */
const messages = (stderr: string) =>
  stderr.trimEnd().split("\n").map((line) => String(JSON.parse(line).msg));

const expectedIds = (count: number) =>
  new Set(Array.from({ length: count }, (_, i) => itemId(numberedItem(i))));

/**
 * Drops the last `n` entries of a stream that its group has not read yet,
 * atomically, as a Redis that lost the tail of its append-only file would
 * have forgotten them; returns the dropped entries' fields.
 */
const DROP_UNREAD_TAIL = `
local last = '0-0'
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == ARGV[1] then last = f['last-delivered-id'] end
end
local unread = redis.call('XRANGE', KEYS[1], '(' .. last, '+')
local dropped = {}
for i = math.max(1, #unread - tonumber(ARGV[2]) + 1), #unread do
  redis.call('XDEL', KEYS[1], unread[i][1])
  dropped[#dropped + 1] = unread[i][2]
end
return dropped`;

redisTest(
  "a source whose done mark Redis lost runs again from its saved position and the flow drains",
  async () => {
    const count = 300;
    const dir = await Deno.makeTempDir({ prefix: "millrace-lost-tail-" });
    const out = join(dir, "items.jsonl");
    const server = await startRedis();
    const redis = client(server);
    const keys = flowKeys("losttail");
    let worker: FlowWorker | undefined;
    try {
      // 30 entries, 100 ms each at the slow stage: the source is done long
      // before the flow drains.
      worker = new FlowWorker(
        await writeFlow(dir, sourceFlow("losttail", server.url, dir, count, 100)),
      );
      await waitFor(
        "the source's done mark",
        async () => (await redis.exists(keys.done("news"))) === 1,
        30_000,
        10,
      );

      // Redis comes back without its last writes: the last batches the
      // source appended, its latest position and its done mark.
      const dropped = await redis.eval(
        DROP_UNREAD_TAIL,
        1,
        keys.input("slow"),
        "slow",
        3,
      ) as string[][];
      assert.equal(dropped.length, 3, "the tail was still unread when the source finished");
      const lostIndexes = dropped.flatMap((fields) => {
        const body = JSON.parse(fields[fields.indexOf("b") + 1]) as Envelope<{ title: string }>[];
        return body.map((e) => Number(e.payload.title.replace("item ", "")));
      });
      const rollback = Math.min(...lostIndexes);
      await redis.multi()
        .set(keys.position("news"), JSON.stringify({ next: rollback }))
        .del(keys.done("news"))
        .exec();

      const result = await worker.finished(HUNG_AFTER_MS);
      assert.equal(result.code, 0, tail(result.stderr));
      assert.equal(result.report?.stopped, false, "the flow drained");
      assert.ok(
        messages(result.stderr).includes(
          `losttail: the done mark of source news vanished (Redis lost writes?); ` +
            `resuming from position {"next":${rollback}}`,
        ),
        tail(result.stderr),
      );
      const ids = (await readJsonl(out)).map((l) => l.id as string);
      assert.deepEqual(repeats(ids), new Map(), "an item was written twice");
      assert.deepEqual(new Set(ids), expectedIds(count), "every item, the lost ones included");
    } finally {
      worker?.kill("SIGKILL");
      await worker?.result;
      await redis.quit();
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/**
 * What Redis holds after a crash that took the last `ARGV[2]` sends of a
 * running numbered source with it, one entry each: the entries gone while
 * still unread, the source's last-send mark back to the send before them,
 * and its position back to the first item they held. Returns the dropped
 * entries' fields; changes nothing and returns nil while fewer are unread.
 */
const LOSE_LAST_SENDS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local last = '0-0'
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == ARGV[1] then last = f['last-delivered-id'] end
end
local n = tonumber(ARGV[2])
local unread = redis.call('XRANGE', KEYS[1], '(' .. last, '+')
if #unread < n or redis.call('EXISTS', KEYS[3]) == 1 then return nil end
local sent = redis.call('GET', KEYS[4])
local holder, count = string.match(sent, '^(.*)#(%d+)$')
local dropped = {}
local first = nil
for i = #unread - n + 1, #unread do
  redis.call('XDEL', KEYS[1], unread[i][1])
  dropped[#dropped + 1] = unread[i][2]
  for _, e in ipairs(cjson.decode(unread[i][2][2])) do
    local index = tonumber(string.match(e.payload.title, '%d+'))
    if first == nil or index < first then first = index end
  end
end
redis.call('SET', KEYS[4], holder .. '#' .. (tonumber(count) - n))
redis.call('SET', KEYS[2], cjson.encode({ next = first }))
return dropped`;

redisTest(
  "a running source whose last sends Redis lost goes back to the position Redis kept",
  async () => {
    const count = 400;
    const dir = await Deno.makeTempDir({ prefix: "millrace-lost-sends-" });
    const out = join(dir, "items.jsonl");
    const server = await startRedis();
    const redis = client(server);
    const keys = flowKeys("lostsends");
    let worker: FlowWorker | undefined;
    try {
      // The slow stage paces the source (a backlog of at most 60 items), so
      // it is still running when Redis forgets its last sends.
      worker = new FlowWorker(
        await writeFlow(dir, sourceFlow("lostsends", server.url, dir, count, 50, 60)),
      );
      let dropped: string[][] | null = null;
      await waitFor(
        "three unread entries while the source runs",
        async () => {
          dropped = await redis.eval(
            LOSE_LAST_SENDS,
            4,
            keys.input("slow"),
            keys.position("news"),
            keys.done("news"),
            keys.emitted("news"),
            "slow",
            3,
          ) as string[][] | null;
          return dropped !== null;
        },
        30_000,
        5,
      );
      const lostIndexes = dropped!.flatMap((fields) => {
        const body = JSON.parse(fields[fields.indexOf("b") + 1]) as Envelope<{ title: string }>[];
        return body.map((e) => Number(e.payload.title.replace("item ", "")));
      });
      assert.equal(lostIndexes.length, 30);

      const result = await worker.finished(HUNG_AFTER_MS);
      assert.equal(result.code, 0, tail(result.stderr));
      assert.equal(result.report?.stopped, false, "the flow drained");
      assert.ok(
        messages(result.stderr).includes(
          "lostsends: source news: Redis lost its last sends (back from a crash without its " +
            "last writes?); going back to the position Redis kept",
        ),
        tail(result.stderr),
      );
      const ids = (await readJsonl(out)).map((l) => l.id as string);
      assert.deepEqual(repeats(ids), new Map(), "an item was written twice");
      assert.deepEqual(new Set(ids), expectedIds(count), "every item, the lost ones included");
    } finally {
      worker?.kill("SIGKILL");
      await worker?.result;
      await redis.quit();
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

redisTest(
  "a connection cut during the source's done check, lease check or position read is retried",
  async () => {
    const count = 200;
    const dir = await Deno.makeTempDir({ prefix: "millrace-source-cut-" });
    const out = join(dir, "items.jsonl");
    const server = await startRedis();
    const keys = flowKeys("sourcecut");
    const proxy = new RedisProxy(server.port);
    proxy.loseRequest(["get", keys.done("news")]);
    proxy.loseRequest(["exists", keys.lease("news")]);
    proxy.loseRequest(["get", keys.position("news")]);
    let worker: FlowWorker | undefined;
    try {
      worker = new FlowWorker(
        await writeFlow(dir, sourceFlow("sourcecut", proxy.url, dir, count, 0)),
      );
      const result = await worker.finished(HUNG_AFTER_MS);
      assert.deepEqual(proxy.lost.map((l) => l.what), [
        `get ${keys.done("news")}`,
        `exists ${keys.lease("news")}`,
        `get ${keys.position("news")}`,
      ]);
      assert.equal(result.code, 0, tail(result.stderr));
      assert.equal(result.report?.stopped, false, "the flow drained");
      assert.equal(result.report?.published, count);
      assert.match(result.stderr, /source news: a Redis call failed, pausing until Redis answers/);
      assert.match(result.stderr, /source news: Redis is back, resuming/);
      const ids = (await readJsonl(out)).map((l) => l.id as string);
      assert.deepEqual(new Set(ids), expectedIds(count));
    } finally {
      worker?.kill("SIGKILL");
      await worker?.result;
      await proxy.close();
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

redisTest(
  "a one-shot source whose settings changed after it was done says so, and is not read again",
  async () => {
    // A path or a count edited after the source was done was read by no one, with only the
    // info line every rerun of a done source gets.
    const dir = await Deno.makeTempDir({ prefix: "millrace-done-edit-" });
    const server = await startRedis();
    const file = join(dir, "flow.yaml");
    const run = async (count: number) => {
      await Deno.writeTextFile(file, sourceFlow("doneedit", server.url, dir, count, 0));
      const result = await new FlowWorker(file).finished(HUNG_AFTER_MS);
      assert.equal(result.code, 0, tail(result.stderr));
      return result;
    };
    try {
      assert.equal((await run(30)).report?.published, 30);
      const changed = await run(40);
      assert.equal(changed.report?.published, 0, "a done source is not read again");
      assert.match(
        changed.stderr,
        /source news: its settings changed since it was marked done, and a done source is not read again: `deno task run reset \S+flow\.yaml` starts the flow over, or a new name for the source reads it as new/,
      );
      const same = await run(30);
      assert.doesNotMatch(same.stderr, /settings changed/);
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
