import assert from "node:assert/strict";
import { browserTest } from "./_chromium.ts";
import { haveRedis, RedisServer } from "../_redis_server.ts";
import { generatorFlow, startWatched, until } from "./_watched_flow.ts";
import { closeRedis, connectRedis } from "../../engine/redis/connection.ts";
import { flowKeys } from "../../engine/redis/keys.ts";
import { deadLetterFields } from "../../engine/redis/redis_dead_letters.ts";

const number = (text: string | null) => {
  const t = (text ?? "").trim();
  const n = parseFloat(t);
  return t.endsWith("M") ? n * 1e6 : t.endsWith("k") ? n * 1e3 : n;
};

browserTest(
  "the dashboard's counters rise while the flow runs; a rejected item shows under dead letters with its reason",
  async (page) => {
    const w = await startWatched(generatorFlow("shown", { count: 40, every: "50ms" }), {
      eventsEveryMs: 200,
    });
    try {
      await page.goto(w.url + "/");
      const out = '[data-stage="publish"] [data-field="out"]';
      const shown = async () => (await page.count(out)) ? number(await page.textContent(out)) : 0;
      await until(async () => (await shown()) > 0);
      const first = await shown();
      await until(async () => (await shown()) > first);
      assert.equal(await page.textContent("#state"), "running");
      assert.deepEqual(
        await page.attributes("[data-stage]", "data-stage"),
        ["validate", "embed", "publish"],
        "the graph shows every stage in order",
      );
      // The generator makes items validate rejects: they are listed with why.
      const letter = "#dead-letters tbody tr[data-letter]";
      await page.waitFor(letter);
      const row = await page.textContent(letter);
      assert.match(row ?? "", /validate/);
      assert.match(row ?? "", /missing required field|bad url|title/);
      assert.equal(
        await page.count("#dead-letters button"),
        0,
        "no replay without a token",
      );
      assert.ok(number(await page.textContent('[data-stage="validate"] [data-field="dead"]')) > 0);
      assert.equal(await page.textContent('#sources [data-source="gen"] td:nth-child(1)'), "gen");
      assert.ok(number(await page.textContent("#tokens")) > 0, "the embed stage's tokens");
      assert.equal(await page.count(".spark"), 3, "a sparkline per stage");
    } finally {
      await w.close();
    }
  },
);

browserTest("with a token the dashboard asks for it, then shows the flow", async (page) => {
  const token = "dash-" + crypto.randomUUID();
  const w = await startWatched(generatorFlow("locked", { count: 20, every: "100ms" }), {
    token,
    eventsEveryMs: 200,
  });
  try {
    await page.goto(w.url + "/");
    await page.waitFor("#login");
    assert.equal(await page.textContent("#state"), "token needed");
    await page.fill("#token", token);
    await page.click("#login button");
    await until(async () => (await page.textContent("#flow")) === "locked");
    const validated = '[data-stage="validate"] [data-field="in"]';
    await until(async () =>
      (await page.count(validated)) > 0 && number(await page.textContent(validated)) > 0
    );
  } finally {
    await w.close();
  }
});

browserTest(
  "a durable flow with a token offers replay per dead letter, and the button replays it",
  async (page) => {
    if (!haveRedis) {
      if (Deno.env.get("CI") === "true") throw new Error("redis-server is not on PATH");
      console.warn("redis-server is not on PATH: the replay part is not checked");
      return;
    }
    const redis = await RedisServer.start();
    const token = "replay-" + crypto.randomUUID();
    const w = await startWatched(
      generatorFlow("replayed", { count: 50, every: "10s", redis: redis.url }),
      { token, eventsEveryMs: 200 },
    );
    try {
      await page.goto(w.url + "/");
      await page.fill("#token", token);
      await page.click("#login button");
      const row = "#dead-letters tr[data-letter] >> nth=0";
      await page.waitFor(`${row} >> button`);
      const id = await page.getAttribute(row, "data-letter");
      assert.match(id ?? "", /^\d+-\d+$/);
      await page.click(`#dead-letters tr[data-letter="${id}"] button`);
      // Replayed: gone from the dead-letter stream, back on the stage's input.
      const listed = async () => {
        const snap = await (await w.get("/api/snapshot", token)).json();
        return snap.deadLetters.recent.some((d: { id: string }) => d.id === id);
      };
      await until(async () => !(await listed()));

      // A letter the server cannot put back (its stage is no longer in the flow) stays, and
      // the button says why: it said "replayed" to every 200, which the server answers anyway.
      const conn = await connectRedis(redis.url);
      const gone = await conn.xadd(
        flowKeys("replayed").dlq,
        "*",
        ...deadLetterFields({
          stage: "gone",
          reason: "refused",
          attempts: 1,
          item: { id: "x1", event: "e1", source: "s", seenAt: 0, attempts: 1, payload: {} },
        }),
      );
      await closeRedis(conn);
      const button = `#dead-letters tr[data-letter="${gone}"] button`;
      await page.waitFor(button);
      await page.click(button);
      // Read as soon as it says so: the table is drawn again with each snapshot, a fresh button.
      let said = "";
      await until(async () => (said = (await page.textContent(button)) ?? "").startsWith("not"));
      assert.equal(said, `not replayed: stage "gone" is not in the flow's pipeline`);
      // And it stays through the next drawings of the table (a snapshot every 200 ms here).
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(await page.textContent(button), said);
    } finally {
      await w.close();
      await redis.stop();
    }
  },
);
