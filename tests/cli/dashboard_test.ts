import assert from "node:assert/strict";
import { browserTest } from "./_chromium.ts";
import { haveRedis, RedisServer } from "../_redis_server.ts";
import { generatorFlow, startWatched, until } from "./_watched_flow.ts";

const number = (text: string | null) => {
  const t = (text ?? "").trim();
  const n = parseFloat(t);
  return t.endsWith("M") ? n * 1e6 : t.endsWith("k") ? n * 1e3 : n;
};

browserTest(
  "the dashboard's counters rise while the flow runs; a rejected item shows under dead letters with its reason",
  async (browser) => {
    const w = await startWatched(generatorFlow("shown", { count: 40, every: "50ms" }), {
      eventsEveryMs: 200,
    });
    try {
      const page = await browser.newPage();
      await page.goto(w.url + "/");
      const out = page.locator('[data-stage="publish"] [data-field="out"]');
      const shown = async () => (await out.count()) ? number(await out.textContent()) : 0;
      await until(async () => (await shown()) > 0);
      const first = await shown();
      await until(async () => (await shown()) > first);
      assert.equal(await page.textContent("#state"), "running");
      assert.deepEqual(
        await page.locator("[data-stage]").evaluateAll((nodes) =>
          nodes.map((n) => n.getAttribute("data-stage"))
        ),
        ["validate", "embed", "publish"],
        "the graph shows every stage in order",
      );
      // The generator makes items validate rejects: they are listed with why.
      const letter = page.locator("#dead-letters tbody tr[data-letter]").first();
      await letter.waitFor();
      const row = await letter.textContent();
      assert.match(row ?? "", /validate/);
      assert.match(row ?? "", /missing required field|bad url|title/);
      assert.equal(
        await page.locator("#dead-letters button").count(),
        0,
        "no replay without a token",
      );
      assert.ok(number(await page.textContent('[data-stage="validate"] [data-field="dead"]')) > 0);
      assert.equal(await page.textContent('#sources [data-source="gen"] td:nth-child(1)'), "gen");
      assert.ok(number(await page.textContent("#tokens")) > 0, "the embed stage's tokens");
      assert.equal(await page.locator(".spark").count(), 3, "a sparkline per stage");
    } finally {
      await w.close();
    }
  },
);

browserTest("with a token the dashboard asks for it, then shows the flow", async (browser) => {
  const token = "dash-" + crypto.randomUUID();
  const w = await startWatched(generatorFlow("locked", { count: 20, every: "100ms" }), {
    token,
    eventsEveryMs: 200,
  });
  try {
    const page = await browser.newPage();
    await page.goto(w.url + "/");
    await page.locator("#login").waitFor();
    assert.equal(await page.textContent("#state"), "token needed");
    await page.fill("#token", token);
    await page.click("#login button");
    await until(async () => (await page.textContent("#flow")) === "locked");
    const validated = page.locator('[data-stage="validate"] [data-field="in"]');
    await until(async () =>
      (await validated.count()) > 0 && number(await validated.textContent()) > 0
    );
  } finally {
    await w.close();
  }
});

browserTest(
  "a durable flow with a token offers replay per dead letter, and the button replays it",
  async (browser) => {
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
      const page = await browser.newPage();
      await page.goto(w.url + "/");
      await page.fill("#token", token);
      await page.click("#login button");
      const row = page.locator("#dead-letters tr[data-letter]").first();
      await row.locator("button").waitFor();
      const id = await row.getAttribute("data-letter");
      assert.match(id ?? "", /^\d+-\d+$/);
      await page.click(`#dead-letters tr[data-letter="${id}"] button`);
      // Replayed: gone from the dead-letter stream, back on the stage's input.
      const listed = async () => {
        const snap = await (await w.get("/api/snapshot", token)).json();
        return snap.deadLetters.recent.some((d: { id: string }) => d.id === id);
      };
      await until(async () => !(await listed()));
    } finally {
      await w.close();
      await redis.stop();
    }
  },
);
