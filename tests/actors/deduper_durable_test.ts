import assert from "node:assert/strict";
import { Redis } from "ioredis";
import {
  dedupeConfigSchema,
  Deduper,
  dedupeStage,
  type NearIndex,
  RedisNearIndex,
} from "../../actors/deduper.ts";
import { flowKeys } from "../../engine/redis/keys.ts";
import { hash128 } from "../../engine/hash.ts";
import { type Envelope, envelope, type ValidItem } from "../../engine/item.ts";
import type { BuildEnv } from "../../engine/registry.ts";
import { run, testEnv } from "../_outcome.ts";
import { redisTest, withRedis } from "../_redis_server.ts";
import { nearPairs } from "./_near_pairs.ts";

const STORY = "Uber has halted its self-driving car pilot in San Francisco after California " +
  "regulators revoked the registrations of its sixteen autonomous vehicles on Wednesday " +
  "evening. The company said it would look at where it could redeploy the cars, but " +
  "remained fully committed to its plans for autonomous ride hailing in the state.";

function item(
  url: string,
  text = "",
  title = "Uber suspends self-driving cars",
): Envelope<ValidItem> {
  return envelope({ title, url, text }, "test");
}

/** An unrelated story for each number: 40 made-up words. */
const story = (n: number) =>
  Array.from({ length: 40 }, (_, w) => hash128(`${n}/${w}`).slice(0, 7)).join(" ");

const reasons = (c: { dropped: { reason: string }[] }) => c.dropped.map((d) => d.reason);

/** Client-side commands sent on a connection: each is one round trip. */
function countCommands(redis: Redis): { names: string[] } {
  const sent = { names: [] as string[] };
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command, stream) => {
    sent.names.push(command.name);
    return send(command, stream);
  };
  return sent;
}

/**
 * A durable flow's view of one server, as two processes would have it: each
 * "process" gets its own connection and builds its own Deduper through the
 * stage spec.
 */
async function withFlow(
  fn: (newProcess: (raw?: object) => Promise<{ deduper: Deduper; redis: Redis }>) => Promise<void>,
): Promise<void> {
  await withRedis(async (server) => {
    const connections: Redis[] = [];
    try {
      await fn(async (raw = {}) => {
        const redis = new Redis(server.url, { lazyConnect: true });
        await redis.connect();
        connections.push(redis);
        const env: BuildEnv = { ...testEnv(), durable: { redis, keys: flowKeys("test") } };
        // Drop semantics unless a test asks for merge (deduper_merge_test.ts covers it).
        const config = dedupeConfigSchema.parse({ merge: false, ...raw });
        const deduper = await dedupeStage.create(config, env) as Deduper;
        return { deduper, redis };
      });
    } finally {
      for (const r of connections) r.disconnect();
    }
  });
}

redisTest(
  "two processes share claims: the second sees the first's keys as duplicates",
  async () => {
    await withFlow(async (newProcess) => {
      const one = await newProcess();
      const two = await newProcess();
      const a = item("https://example.com/a"), b = item("https://example.com/b");
      const first = await run(one.deduper, [a, b], "dedupe");
      assert.deepEqual(first.emitted, [a, b]);

      const copies = [item("https://EXAMPLE.com/a/?utm_source=x"), item("https://example.com/b")];
      const c = item("https://example.com/c");
      const second = await run(two.deduper, [...copies, c], "dedupe");
      assert.deepEqual(second.emitted, [c]);
      assert.deepEqual(second.dropped.map((d) => [d.item, d.reason]), [
        [copies[0], "duplicate"],
        [copies[1], "duplicate"],
      ]);
      // ...and the first process sees the second's.
      assert.deepEqual(reasons(await run(one.deduper, [item("https://example.com/c")], "dedupe")), [
        "duplicate",
      ]);
    });
  },
);

redisTest("a redelivered event passes in whichever process gets it", async () => {
  await withFlow(async (newProcess) => {
    const one = await newProcess();
    const two = await newProcess();
    const a = item("https://example.com/a");
    assert.deepEqual((await run(one.deduper, [a], "dedupe")).emitted, [a]);
    const again = { ...structuredClone(a), attempts: 1 };
    assert.deepEqual((await run(one.deduper, [again], "dedupe")).emitted, [again]);
    assert.deepEqual((await run(two.deduper, [again], "dedupe")).emitted, [again]);
    // A copy and the redelivery in one batch: only the copy is dropped.
    const copy = item("https://example.com/a");
    const mixed = await run(two.deduper, [copy, again], "dedupe");
    assert.deepEqual(mixed.emitted, [again]);
    assert.deepEqual(mixed.dropped.map((d) => d.item), [copy]);
  });
});

// A ttl of a second, not less: the copy right after the first must come
// within it also on a loaded machine.
redisTest("a key claimed in Redis expires after the ttl", async () => {
  await withFlow(async (newProcess) => {
    const { deduper } = await newProcess({ ttl: "1s" });
    const url = "https://example.com/a";
    assert.equal((await run(deduper, [item(url)], "dedupe")).emitted.length, 1);
    assert.deepEqual(reasons(await run(deduper, [item(url)], "dedupe")), ["duplicate"]);
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await run(deduper, [item(url)], "dedupe")).emitted.length, 1, "new again");
    assert.deepEqual(reasons(await run(deduper, [item(url)], "dedupe")), ["duplicate"]);
  });
});

redisTest("a batch costs one round trip, its near check included", async () => {
  await withFlow(async (newProcess) => {
    const exact = await newProcess();
    const sent = countCommands(exact.redis);
    const batch = (n: number, tag: string) =>
      Array.from({ length: n }, (_, i) => item(`https://example.com/${tag}/${i % 150}`));
    await run(exact.deduper, batch(10, "warm"), "dedupe"); // loads the script
    sent.names.length = 0;
    const c = await run(exact.deduper, batch(300, "x"), "dedupe");
    assert.equal(c.emitted.length, 150);
    assert.deepEqual(sent.names, ["evalsha"]);

    const near = await newProcess({ near: {} });
    const nearSent = countCommands(near.redis);
    await run(near.deduper, [item("https://example.com/warm", STORY)], "dedupe");
    nearSent.names.length = 0;
    const texts = Array.from(
      { length: 200 },
      (_, i) => item(`https://example.com/n/${i}`, story(i)),
    );
    assert.equal((await run(near.deduper, texts, "dedupe")).emitted.length, 200);
    assert.deepEqual(nearSent.names, ["evalsha"], "claims and near check in one script");
    nearSent.names.length = 0;
    const entries = `${flowKeys("test").dedupe("dedupe")}:near8:entries`;
    assert.equal(await exact.redis.hlen(entries), 201);
    const copies = await run(near.deduper, texts.map((t) => item(t.payload.url)), "dedupe");
    assert.equal(copies.dropped.length, 200);
    assert.deepEqual(reasons(copies), texts.map(() => "duplicate"));
    assert.deepEqual(nearSent.names, ["evalsha"]);
    assert.equal(await exact.redis.hlen(entries), 201, "duplicates are not looked up nor kept");

    // With merge, the folds into stories are in the same script.
    const merging = await newProcess({ near: {}, merge: true });
    const mergeSent = countCommands(merging.redis);
    await run(merging.deduper, [item("https://example.com/warm", STORY)], "dedupe");
    mergeSent.names.length = 0;
    const fresh = texts.map((_, i) => item(`https://example.com/m/${i}`, story(1000 + i)));
    const merged = await run(merging.deduper, fresh, "dedupe");
    assert.equal(merged.emitted.filter((e) => e.payload.revision === 1).length, 200);
    assert.deepEqual(mergeSent.names, ["evalsha"], "claims, lookups and folds in one script");
  });
});

redisTest("an item with no text to compare leaves the signatures after it in place", async () => {
  await withFlow(async (newProcess) => {
    const { deduper } = await newProcess({ near: {} });
    const a = item("https://example.com/a", STORY);
    await run(deduper, [a], "dedupe");
    // No text and no title: no signature, so the script gets one signature fewer than items.
    const bare = envelope({ url: "https://example.com/bare" } as unknown as ValidItem, "test");
    const b = item("https://other.example/b", STORY.replace("Wednesday", "Thursday"));
    const c = await run(deduper, [bare, b], "dedupe");
    assert.deepEqual(c.emitted, [bare]);
    assert.deepEqual(reasons(c), [`near-duplicate of ${a.id}`]);
  });
});

redisTest("two batches in flight answer as they would one after the other", async () => {
  await withFlow(async (newProcess) => {
    const { deduper } = await newProcess({ near: { threshold: 0.8 } });
    const a = item("https://example.com/a", STORY);
    await run(deduper, [a], "dedupe");
    // b is a near duplicate of a, so its url's claim is released; c then comes
    // with b's url and a story of its own: new, had b's batch finished first.
    const b = item("https://other.example/b", STORY.replace("Wednesday", "Thursday"));
    const c = item("https://other.example/b", story(1));
    const [first, second] = await Promise.all([
      run(deduper, [b], "dedupe"),
      run(deduper, [c], "dedupe"),
    ]);
    assert.deepEqual(reasons(first), [`near-duplicate of ${a.id}`]);
    assert.deepEqual(reasons(second), [], "not a duplicate of the released b");
    assert.deepEqual(second.emitted, [c]);
  });
});

redisTest(
  "near duplicates are found across processes, and a near duplicate's key is released",
  async () => {
    await withFlow(async (newProcess) => {
      const one = await newProcess({ near: { threshold: 0.8 } });
      const two = await newProcess({ near: { threshold: 0.8 } });
      const a = item("https://example.com/a", STORY);
      assert.deepEqual((await run(one.deduper, [a], "dedupe")).emitted, [a]);

      const b = item("https://other.example/b", STORY.replace("Wednesday", "Thursday"));
      const unrelated = item(
        "https://example.com/c",
        "Hong Kong customs seize a firearms package at the airfreight terminal on Monday.",
      );
      const second = await run(two.deduper, [b, unrelated], "dedupe");
      assert.deepEqual(second.emitted, [unrelated]);
      assert.deepEqual(reasons(second), [`near-duplicate of ${a.id}`]);

      // b's url was released: another story there is new, in the other process too.
      const other = item(
        "https://other.example/b",
        "Ancient supervolcano that caused the largest eruption in European history is stirring",
      );
      assert.deepEqual((await run(one.deduper, [other], "dedupe")).emitted, [other]);
      // A redelivery of a is not a near duplicate of itself, in either process.
      assert.deepEqual((await run(two.deduper, [a], "dedupe")).emitted, [a]);
      assert.deepEqual((await run(one.deduper, [a], "dedupe")).emitted, [a]);
    });
  },
);

redisTest("near entries in Redis expire with the ttl, and expired ones are swept out", async () => {
  await withFlow(async (newProcess) => {
    const { deduper, redis } = await newProcess({ ttl: "1s", near: {} });
    const first = Array.from({ length: 20 }, (_, i) => item(`https://example.com/${i}`, story(i)));
    assert.equal((await run(deduper, first, "dedupe")).emitted.length, 20);
    const copy = item("https://copy.example/0", story(0) + " again");
    assert.match(reasons(await run(deduper, [copy], "dedupe"))[0], /^near-duplicate of /);

    await new Promise((r) => setTimeout(r, 1200));
    const late = item("https://copy.example/1", story(1) + " again");
    assert.deepEqual((await run(deduper, [late], "dedupe")).emitted, [late], "expired: new again");
    const near = "millrace:{test}:dedupe:dedupe:near8";
    assert.equal(await redis.hlen(`${near}:entries`), 1, "only the late item is remembered");
    assert.equal(await redis.zcard(`${near}:expiry`), 1);
    assert.equal(await redis.hlen(`${near}:buckets`), 10, "the late item's 10 bands");
  });
});

redisTest("the scripts load themselves again after Redis forgot them", async () => {
  await withFlow(async (newProcess) => {
    const { deduper, redis } = await newProcess({ near: {} });
    const a = item("https://example.com/a", STORY);
    assert.deepEqual((await run(deduper, [a], "dedupe")).emitted, [a]);
    await redis.script("FLUSH"); // as after a restart of Redis
    const copy = item("https://other.example/a", STORY);
    assert.deepEqual(reasons(await run(deduper, [copy], "dedupe")), [`near-duplicate of ${a.id}`]);
  });
});

redisTest("in Redis the earliest near match is reported, as in process", async () => {
  await withFlow(async (newProcess) => {
    const one = await newProcess({ key: ["guid"], near: { threshold: 0.6, shingle: 1 } });
    const posts = [
      "Mongolia pledges to halt visits by the Dalai Lama after China protest",
      "[World] - Mongolia pledges to halt visits by the Dalai Lama after China protest",
      "(SCMP) Mongolia pledges to halt visits by the Dalai Lama after China protest",
    ].map((title, i) =>
      envelope({ title, url: `https://example.com/${i}`, text: "", guid: `g${i}` }, "t")
    );
    // The first two are one batch in one process, the third comes to another.
    const first = await run(one.deduper, posts.slice(0, 2), "dedupe");
    // Keyed by guid, the first post leaves under its key's id, which its copies name.
    const id = one.deduper.keyOf(posts[0].payload);
    assert.equal(first.emitted[0].id, id);
    assert.deepEqual(reasons(first), [`near-duplicate of ${id}`]);
    const two = await newProcess({ key: ["guid"], near: { threshold: 0.6, shingle: 1 } });
    assert.deepEqual(reasons(await run(two.deduper, [posts[2]], "dedupe")), [
      `near-duplicate of ${id}`,
    ]);
  });
});

redisTest(
  "a batch retried after its near check failed still drops the near duplicate",
  async () => {
    await withFlow(async (newProcess) => {
      const one = await newProcess({ near: {} });
      const a = item("https://example.com/a", STORY);
      await run(one.deduper, [a], "dedupe");

      // Another process whose first near check fails after its claims were made.
      const { redis } = await newProcess();
      const real = new RedisNearIndex(redis, flowKeys("test").dedupe("dedupe"), 0.8);
      let failures = 1;
      const flaky: NearIndex = {
        matchMany(requests, now, ttl) {
          if (failures-- > 0) return Promise.reject(new Error("connection reset"));
          return real.matchMany(requests, now, ttl);
        },
      };
      const two = new Deduper(dedupeConfigSchema.parse({ near: {}, merge: false }), {
        durable: { redis, keys: flowKeys("test") },
        nearIndex: flaky,
      });
      const b = item("https://other.example/b", STORY + " Updated.");
      const c = item("https://other.example/c", "A different story entirely, about tea growing.");
      await assert.rejects(run(two, [b, c], "dedupe"), /connection reset/);
      // The retry: both claims are now this event's ("same-event"), yet b is still compared.
      const retry = await run(two, [b, c], "dedupe");
      assert.deepEqual(retry.emitted, [c]);
      assert.deepEqual(reasons(retry), [`near-duplicate of ${a.id}`]);
      // ...and retried once more (its reply was lost), the same answers.
      const again = await run(two, [b, c], "dedupe");
      assert.deepEqual(again.emitted, [c]);
      assert.deepEqual(reasons(again), [`near-duplicate of ${a.id}`]);
    });
  },
);

redisTest("processes racing on overlapping batches emit every key exactly once", async () => {
  await withFlow(async (newProcess) => {
    const procs = await Promise.all([1, 2, 3, 4].map(() => newProcess()));
    const url = (i: number) => `https://example.com/race/${i}`;
    // Every process gets all 400 keys, in its own order, as its own events.
    const runs = procs.map(async ({ deduper }, p) => {
      const items = Array.from({ length: 400 }, (_, i) => item(url((i * (2 * p + 1) * 37) % 400)));
      const emitted: string[] = [];
      for (let at = 0; at < items.length; at += 50) {
        const c = await run(deduper, items.slice(at, at + 50), "dedupe");
        emitted.push(...c.emitted.map((e) => e.payload.url));
      }
      return emitted;
    });
    const emitted = (await Promise.all(runs)).flat();
    assert.equal(emitted.length, 400);
    assert.equal(new Set(emitted).size, 400);
  });
});

redisTest("processes racing on near-identical texts keep exactly one of each story", async () => {
  await withFlow(async (newProcess) => {
    const procs = await Promise.all(
      [0, 1, 2, 3].map(() => newProcess({ near: { threshold: 0.8 } })),
    );
    // 50 unrelated stories; each process has its own copy of each (own url, one word added).
    const emitted = (await Promise.all(procs.map(async ({ deduper }, p) => {
      const copies = Array.from(
        { length: 50 },
        (_, s) => item(`https://p${p}.example/${s}`, `${story(s)} copy${p}`),
      );
      const c = await run(deduper, p % 2 ? copies.reverse() : copies, "dedupe");
      return c.emitted.map((e) => e.payload.text!.split(" ")[0]);
    }))).flat();
    assert.equal(emitted.length, 50);
    assert.equal(new Set(emitted).size, 50, "one copy of every story");
  });
});

redisTest("in Redis too, near.threshold 0.4 catches copies just above it", async () => {
  // Its buckets are kept apart from the default banding's (near8), whose would not be found.
  await withFlow(async (newProcess) => {
    const { deduper, redis } = await newProcess({ near: { threshold: 0.4 } });
    const items = nearPairs(60).map((p) => envelope(p as ValidItem, "t"));
    const result = await run(deduper, items, "dedupe");
    assert.ok(result.dropped.length >= 57, `${result.dropped.length} of 60 copies caught`);
    assert.ok(
      result.dropped.every((d) => String((d.item.payload as ValidItem).title).startsWith("b")),
    );
    assert.ok((await redis.keys("*:near8b32x2:*")).length > 0);
  });
});

redisTest("every key lives under the stage's dedupe prefix with the flow's hash tag", async () => {
  await withFlow(async (newProcess) => {
    const { deduper, redis } = await newProcess({ near: {}, ttl: "1h" });
    await run(
      deduper,
      [item("https://example.com/a", STORY), item("https://example.com/b")],
      "dedupe#2",
    );
    const keys = await redis.keys("*");
    assert.ok(keys.length > 2, keys.join(", "));
    for (const key of keys) assert.ok(key.startsWith("millrace:{test}:dedupe:dedupe#2:"), key);
    for (const key of keys) {
      const ttl = await redis.pttl(key);
      assert.ok(ttl > 0 && ttl <= 3_600_000, `${key} expires (${ttl})`);
    }
  });
});

redisTest("many alike texts keep each Redis bucket to its newest 32 items", async () => {
  await withFlow(async (newProcess) => {
    const { deduper, redis } = await newProcess({ near: {} });
    // 3,000 texts with one long common part and their own half: alike, never near duplicates.
    const common = story(0).split(" ").slice(0, 20).join(" ");
    for (let from = 0; from < 3_000; from += 500) {
      const batch = Array.from(
        { length: 500 },
        (_, i) => item(`https://alike.test/${from + i}`, `${common} ${story(from + i + 1)}`),
      );
      const c = await run(deduper, batch, "dedupe");
      assert.equal(c.emitted.length, 500, "no near duplicates among them");
    }
    const near = "millrace:{test}:dedupe:dedupe:near8";
    assert.equal(await redis.hlen(`${near}:entries`), 3_000);
    const lists = await redis.hvals(`${near}:buckets`);
    const longest = Math.max(...lists.map((l) => l.split(" ").length));
    assert.ok(longest <= 32, `a bucket holds ${longest} items`);
  });
});
