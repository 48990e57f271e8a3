import { endingError, isServiceFailure } from "../../../engine/errors.ts";
import assert from "node:assert/strict";
import {
  EmbeddingRequestError,
  OpenAIEmbeddings,
  type OpenAIEmbeddingsOptions,
  replyLimit,
} from "../../../adapters/embeddings/openai_embeddings.ts";
import { type Clock, RateLimiter } from "../../../adapters/http/rate_limiter.ts";
import { memoryLogger } from "../../../engine/log.ts";
import { apiError, fakeVector, hold, withFakeOpenAI } from "./_fake_openai.ts";
import { Flood } from "../../_http_server.ts";

const KEY = "sk-test-0123456789abcdef";
const signal = () => AbortSignal.timeout(20_000);

function client(url: string, opts: Partial<OpenAIEmbeddingsOptions> = {}) {
  const log = memoryLogger();
  const embeddings = new OpenAIEmbeddings({
    model: "text-embedding-3-small",
    baseUrl: url,
    apiKey: KEY,
    backoffBase: 1,
    log,
    ...opts,
  });
  return { embeddings, log };
}

Deno.test("a batch is one request with model, inputs, dimensions and encoding_format float", async () => {
  await withFakeOpenAI({ apiKey: KEY }, async (server) => {
    const { embeddings } = client(server.url, { dimensions: 4 });
    const vectors = await embeddings.embed(["a", "b", "c"], signal());
    assert.equal(server.hits.length, 1);
    const [hit] = server.hits;
    assert.deepEqual(hit.input, ["a", "b", "c"]);
    assert.equal(hit.model, "text-embedding-3-small");
    assert.equal(hit.dimensions, 4);
    assert.equal(hit.encodingFormat, "float");
    assert.equal(hit.authorization, `Bearer ${KEY}`);
    assert.deepEqual(
      vectors,
      ["a", "b", "c"].map((t) => fakeVector("text-embedding-3-small", 4, t)),
      "placed by index although the server answers out of order",
    );
  });
});

Deno.test("without dimensions none is sent and the length is learned from the first reply", async () => {
  await withFakeOpenAI({ nativeDimensions: 6 }, async (server) => {
    const { embeddings } = client(server.url);
    assert.equal(embeddings.dimensions, 0);
    const [v] = await embeddings.embed(["x"], signal());
    assert.equal(server.hits[0].dimensions, undefined);
    assert.equal(v.length, 6);
    assert.equal(embeddings.dimensions, 6);
  });
});

Deno.test("more inputs than a request takes go as several requests, in order", async () => {
  await withFakeOpenAI({}, async (server) => {
    const { embeddings } = client(server.url, { maxInputs: 4 });
    const inputs = Array.from({ length: 10 }, (_, i) => `t${i}`);
    const vectors = await embeddings.embed(inputs, signal());
    assert.deepEqual(server.hits.map((h) => h.input.length).sort(), [2, 4, 4]);
    assert.deepEqual(vectors, inputs.map((t) => fakeVector("text-embedding-3-small", 8, t)));
  });
});

/**
 * A clock whose sleeps return at once; each is noted in `events` (as `sleep <ms>`)
 * beside the server's hits, so a test sees what was waited and when, in order.
 */
function notingClock(events: string[]): Clock {
  let t = 0;
  return {
    now: () => t,
    sleep(ms) {
      events.push(`sleep ${ms}`);
      t += ms;
      return Promise.resolve();
    },
  };
}

Deno.test("a 429 with Retry-After is waited out, then the request succeeds", async () => {
  const events: string[] = [];
  await withFakeOpenAI({
    intercept: (hit) => {
      events.push(`hit ${hit.n}`);
      return hit.n === 1 ? apiError(429, "Rate limit reached", { "retry-after": "1" }) : undefined;
    },
  }, async (server) => {
    const { embeddings, log } = client(server.url, { clock: notingClock(events) });
    const vectors = await embeddings.embed(["a"], signal());
    assert.equal(vectors.length, 1);
    assert.equal(server.hits.length, 2);
    assert.deepEqual(events, ["hit 1", "sleep 1000", "hit 2"], "1 s, as asked, before the retry");
    assert.equal(embeddings.stats.retries, 1);
    assert.match(log.lines.join("\n"), /429 Rate limit reached; retrying/);
  });
});

Deno.test("a request retried three times warns once; its later retries are said at debug", async () => {
  await withFakeOpenAI({
    intercept: (hit) => hit.n <= 3 ? apiError(500, "internal boom") : undefined,
  }, async (server) => {
    const { embeddings, log } = client(server.url, { clock: notingClock([]) });
    assert.equal((await embeddings.embed(["a"], signal())).length, 1);
    assert.equal(embeddings.stats.retries, 3);
    const said = log.lines.filter((l) => l.includes("internal boom; retrying"));
    assert.deepEqual(said.map((l) => l.split(" ")[0]), ["warn", "debug", "debug"]);
  });
});

Deno.test("requests retried while a server is away warn once a minute, not each", async () => {
  // The stage tries its batch again and again while a server is away, each a new request:
  // every one warned "attempt 1 of 5", a line every few seconds that looked stuck.
  let t = 0;
  const clock: Clock = { now: () => t, sleep: (ms) => (t += ms, Promise.resolve()) };
  await withFakeOpenAI({ intercept: () => apiError(502, "bad gateway") }, async (server) => {
    const { embeddings, log } = client(server.url, { clock, maxRetries: 1 });
    for (let i = 0; i < 6; i++) {
      await embeddings.embed(["a"], signal()).catch(() => {});
      t += 15_000;
    }
    const said = log.lines.filter((l) => l.includes("bad gateway; retrying"));
    assert.equal(said.length, 6);
    assert.deepEqual(said.map((l) => l.split(" ")[0]), [
      "warn",
      "debug",
      "debug",
      "debug",
      "warn",
      "debug",
    ]);
  });
});

Deno.test("retry-after-ms is honoured to the millisecond scale", async () => {
  const events: string[] = [];
  await withFakeOpenAI({
    intercept: (hit) => {
      events.push(`hit ${hit.n}`);
      return hit.n === 1 ? apiError(429, "slow down", { "retry-after-ms": "300" }) : undefined;
    },
  }, async (server) => {
    const { embeddings } = client(server.url, { clock: notingClock(events) });
    await embeddings.embed(["a"], signal());
    assert.deepEqual(events, ["hit 1", "sleep 300", "hit 2"], "300 ms, not 300 s nor a second");
  });
});

Deno.test("a 500 is retried with backoff and the second attempt succeeds", async () => {
  await withFakeOpenAI({
    intercept: (hit) => hit.n === 1 ? apiError(500, "The server had an error") : undefined,
  }, async (server) => {
    const usage = new Map<string, number>();
    const tally = (name: string, n: number) => usage.set(name, (usage.get(name) ?? 0) + n);
    const { embeddings } = client(server.url, { tally });
    assert.equal((await embeddings.embed(["a", "b"], signal())).length, 2);
    assert.equal(server.hits.length, 2);
    assert.deepEqual(embeddings.stats, { requests: 2, retries: 1, tokens: 2 });
    // The stage's usage says it too: its batch was tried once, its request twice.
    assert.deepEqual(Object.fromEntries(usage), { requests: 2, "request retries": 1, tokens: 2 });
  });
});

Deno.test("a 200 whose body is not an embeddings reply (a proxy's page) is retried like a 500", async () => {
  // It was read as "returned 0 vectors for 2 inputs", not retried: the stage split its batch.
  await withFakeOpenAI({
    intercept: (hit) =>
      hit.n === 1
        ? new Response("<html>Service restarting</html>", {
          headers: { "content-type": "text/html" },
        })
        : undefined,
  }, async (server) => {
    const { embeddings, log } = client(server.url);
    assert.equal((await embeddings.embed(["a", "b"], signal())).length, 2);
    assert.equal(server.hits.length, 2);
    assert.ok(
      log.lines.some((l) =>
        l.includes(
          'answered with a body that is not an embeddings reply: "<html>Service restarting',
        )
      ),
      log.lines.join("\n"),
    );
  });
});

Deno.test("a failure quotes a server's long error page cut short, and carries its last Retry-After", async () => {
  const page = "<html>" + "busy ".repeat(100_000) + "</html>";
  await withFakeOpenAI({
    intercept: () =>
      new Response(page, {
        status: 429,
        headers: { "content-type": "text/html", "retry-after": "7" },
      }),
  }, async (server) => {
    const waits: number[] = [];
    const clock: Clock = {
      now: () => performance.now(),
      sleep: (ms) => (waits.push(ms), Promise.resolve()),
    };
    const limiter = new RateLimiter({}, clock);
    const { embeddings } = client(server.url, { maxRetries: 0, limiter });
    const error = await embeddings.embed(["a"], signal()).catch((e) => e);
    assert.ok(error instanceof EmbeddingRequestError);
    assert.match(error.message, /: 429 <html>busy busy .*… \(\d+ more characters\)$/);
    assert.ok(error.message.length < 1_100, `${error.message.length} characters`);
    // The stage runner waits it before its next try; the stage's other requests wait too.
    assert.equal(error.retryAfterMs, 7000);
    await limiter.acquire(0);
    assert.ok(waits.length === 1 && waits[0] > 6900, `the next request waited ${waits}`);
  });
});

Deno.test("vectors that change length mid-run say the model changed, not that it ignores dimensions", async () => {
  await withFakeOpenAI({
    intercept: (hit) =>
      hit.n === 2
        ? Response.json({
          object: "list",
          model: "text-embedding-3-small",
          data: [{ object: "embedding", index: 0, embedding: [0.1, 0.2, 0.3] }],
          usage: { prompt_tokens: 1, total_tokens: 1 },
        })
        : undefined,
  }, async (server) => {
    const { embeddings } = client(server.url, { dimensions: 4 });
    await embeddings.embed(["a"], signal());
    const error = await embeddings.embed(["b"], signal()).catch((e) => e);
    assert.match(
      String(error),
      /returned vectors of 3 dimensions, expected 4 as its earlier replies gave: did the model behind .* change\?/,
    );
    assert.ok(endingError(error));
  });
});

Deno.test("a reply cut short of its JSON says it is not valid JSON, not only where it broke", async () => {
  await withFakeOpenAI({
    intercept: () =>
      new Response('{"object":"list","data":[{"embedding":[0.1,0.2', {
        headers: { "content-type": "application/json" },
      }),
  }, async (server) => {
    const { embeddings } = client(server.url, { maxRetries: 0 });
    const error = await embeddings.embed(["a"], signal()).catch((e) => e);
    assert.match(
      String(error),
      /at http:\/\/127\.0\.0\.1:\d+\/v1: answered with a body that is not valid JSON \(/,
    );
  });
});

Deno.test("a reply slower than the timeout is abandoned and retried", async () => {
  await withFakeOpenAI({
    intercept: async (hit) => {
      if (hit.n === 1) await hold(10_000);
      return undefined;
    },
  }, async (server) => {
    // A second: the retried call must get its reply within it even on a loaded machine.
    const { embeddings, log } = client(server.url, { timeout: 1000 });
    assert.equal((await embeddings.embed(["a"], signal())).length, 1);
    assert.equal(server.hits.length, 2, "the slow reply was abandoned and the call made again");
    assert.match(log.lines.join("\n"), /no reply within 1000 ms; retrying/);
  });
});

Deno.test("a reply larger than any answer to the request is refused before it fills memory", async () => {
  // 2 inputs of 4 dimensions need a few hundred bytes; the cap is that
  // bound plus 1 MiB. The server would stream 256 MiB, with no Content-Length.
  const limit = replyLimit({ maxInputs: 2, dimensions: 4 });
  assert.equal(limit, 2 * 4 * 40 + 1024 * 1024);
  const flood = new Flood();
  await withFakeOpenAI({ intercept: () => flood.response() }, async (server) => {
    const { embeddings } = client(server.url, { maxInputs: 2, dimensions: 4, maxRetries: 3 });
    const error = await embeddings.embed(["a", "b"], signal()).catch((e) => e);
    assert.ok(error instanceof EmbeddingRequestError, String(error));
    assert.match(error.message, /: reply is larger than the limit of 1048896 bytes/);
    assert.doesNotMatch(error.message, /Connection error/, "the connection was fine");
    assert.equal(error.retryable, false, "the same request would bring it again");
    assert.equal(server.hits.length, 1, "not asked again");
    // What the server made past the cap sat in socket buffers: a few MiB, not all of it.
    assert.ok(
      flood.sent < 32 * 1024 * 1024,
      `read no further than the cap (${flood.sent} bytes sent)`,
    );
  });
});

Deno.test("a base URL that redirects ends the run at once, saying where to; nothing is sent there", async () => {
  // Followed, a 307 to another address lost the key on the way ("You didn't provide an API
  // key") and a 301 turned the POST into a GET (405): neither said a word of the redirect.
  await withFakeOpenAI({}, async (target) => {
    await withFakeOpenAI({
      intercept: () =>
        new Response(null, { status: 307, headers: { location: `${target.url}/embeddings` } }),
    }, async (server) => {
      const { embeddings } = client(server.url, { maxRetries: 3 });
      const error = await embeddings.embed(["a"], signal()).catch((e) => e);
      assert.ok(error instanceof EmbeddingRequestError, String(error));
      assert.equal(server.hits.length, 1, "not asked again");
      assert.equal(target.hits.length, 0, "the other address got nothing");
      assert.ok(endingError(error), "the run ends");
      assert.match(
        error.message,
        /^text-embedding-3-small at http:\/\/127\.0\.0\.1:\d+\/v1: http:\/\/127\.0\.0\.1:\d+\/v1\/embeddings answered 307, redirecting to http:\/\/127\.0\.0\.1:\d+\/v1\/embeddings: point the url at where the API answers/,
      );
    });
  });
});

Deno.test("a refused connection says why in a few words, not Deno's whole sentence", async () => {
  // A port just closed: nothing listens there.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  const { embeddings } = client(`http://127.0.0.1:${port}/v1`, { maxRetries: 0 });
  const error = await embeddings.embed(["a"], signal()).catch((e) => e);
  assert.ok(error instanceof EmbeddingRequestError, String(error));
  assert.match(error.message, /^text-embedding-3-small at http:\/\/127\.0\.0\.1:\d+\/v1: /);
  assert.match(error.message, /Connection refused/i);
  assert.doesNotMatch(error.message, /error sending request|client error \(Connect\)/);
});

Deno.test("transient failures stop after maxRetries with the last error", async () => {
  await withFakeOpenAI({ intercept: () => apiError(503, "overloaded") }, async (server) => {
    const { embeddings } = client(server.url, { maxRetries: 2 });
    const error = await embeddings.embed(["a"], signal()).catch((e) => e);
    assert.ok(error instanceof EmbeddingRequestError);
    assert.equal(server.hits.length, 3);
    assert.equal(error.status, 503);
    assert.equal(error.retryable, true, "the stage may retry the batch later");
    assert.match(
      error.message,
      /text-embedding-3-small at http:\/\/127\.0\.0\.1:\d+\/v1: 503 overloaded/,
    );
  });
});

Deno.test("a 400 is not retried and says retryable: false so the runner splits the batch", async () => {
  await withFakeOpenAI({
    intercept: (hit) => apiError(400, `input[${hit.input.indexOf("bad")}] is not valid`),
  }, async (server) => {
    const { embeddings } = client(server.url);
    const error = await embeddings.embed(["ok", "bad"], signal()).catch((e) => e);
    assert.ok(error instanceof EmbeddingRequestError);
    assert.equal(server.hits.length, 1);
    assert.equal(error.status, 400);
    assert.equal(error.retryable, false);
    assert.match(error.message, /400 input\[1\] is not valid/);
  });
});

Deno.test("a server that sends no usage has its tokens counted here, with or without a limiter", async () => {
  await withFakeOpenAI({
    intercept: (hit) =>
      Response.json({
        object: "list",
        model: hit.model,
        data: hit.input.map((t, index) => ({
          object: "embedding",
          index,
          embedding: fakeVector(hit.model, 8, t),
        })),
      }),
  }, async (server) => {
    const { embeddings } = client(server.url, {
      countTokens: (t: string) => t.length,
      dimensions: 8,
    });
    await embeddings.embed(["four", "sixsix"], signal());
    assert.equal(embeddings.stats.tokens, 10, "it said 0 unless rpm or tpm was set");
  });
});

Deno.test("a spent quota (429 insufficient_quota) is not retried, and ends the run", async () => {
  // Taken for a passing 429, it went through every retry and split: 241 requests for 40
  // items, all dead-lettered, where a refused key ends the run at once.
  const quota = "You exceeded your current quota, please check your plan and billing details.";
  await withFakeOpenAI({
    intercept: () => apiError(429, quota, { "retry-after-ms": "1" }, "insufficient_quota"),
  }, async (server) => {
    const { embeddings } = client(server.url, { maxRetries: 3 });
    const error = await embeddings.embed(["a", "b"], signal()).catch((e) => e);
    assert.ok(error instanceof EmbeddingRequestError);
    assert.equal(server.hits.length, 1);
    assert.ok(endingError(error), "the run ends");
    assert.match(error.message, /429 You exceeded your current quota/);
  });
});

Deno.test("the API key never reaches an error message or a log line, even when the server quotes it", async () => {
  await withFakeOpenAI({ apiKey: "sk-the-right-one" }, async (server) => {
    const { embeddings, log } = client(server.url, { maxRetries: 1 });
    const error = await embeddings.embed(["a"], signal()).catch((e) => e);
    assert.equal(server.hits.length, 1, "a 401 is not retried");
    assert.equal(error.status, 401);
    assert.match(error.message, /401 Incorrect API key provided: \[redacted\]/);
    assert.ok(!error.message.includes(KEY));
    assert.ok(!error.message.includes("0123456789abcdef"));
    assert.ok(!log.lines.join("\n").includes(KEY));
  });
  await withFakeOpenAI(
    { intercept: () => apiError(500, `proxy saw key ${"pw-" + KEY}`) },
    async (server) => {
      const { embeddings, log } = client(server.url, { maxRetries: 1, apiKey: "pw-" + KEY });
      const error = await embeddings.embed(["a"], signal()).catch((e) => e);
      assert.equal(log.lines.length, 1, "the retry is logged");
      for (const text of [error.message, ...log.lines]) {
        assert.ok(!text.includes(KEY), text);
        assert.match(text, /\[redacted\]/);
      }
    },
  );
});

Deno.test("user info and query of the base URL stay out of messages", async () => {
  await withFakeOpenAI({ intercept: () => apiError(500, "down") }, async (server) => {
    const url = server.url.replace("http://", "http://user:secret@") + "?api-key=hidden";
    const { embeddings } = client(url, { maxRetries: 0 });
    assert.ok(!embeddings.endpoint.includes("secret") && !embeddings.endpoint.includes("hidden"));
    const error = await embeddings.embed(["a"], signal()).catch((e) => e);
    assert.ok(!error.message.includes("secret") && !error.message.includes("hidden"));
  });
});

Deno.test("vectors of another length than the dimensions asked for are a clear error that ends the run", async () => {
  await withFakeOpenAI({ ignoreDimensions: true, nativeDimensions: 8 }, async (server) => {
    const { embeddings } = client(server.url, { dimensions: 16 });
    const error = await embeddings.embed(["a"], signal()).catch((e) => e);
    assert.match(
      String(error),
      /returned vectors of 8 dimensions, expected 16: does this model honour `dimensions`\?/,
    );
    // No input causes it: split down to one-input calls, each paid for, every one would fail.
    assert.ok(endingError(error), "the run stops, as for a wrong key");
    assert.equal(server.hits.length, 1, "asked once");
  });
});

Deno.test("a reply holding a vector of nulls or text, or too few vectors, is refused and not asked for again", async () => {
  // Float32Array.from made a null a 0, and the zero vector was published and cached for good.
  const reply = (embeddings: unknown[][]) =>
    Response.json({
      object: "list",
      model: "text-embedding-3-small",
      data: embeddings.map((embedding, index) => ({ object: "embedding", index, embedding })),
      usage: { prompt_tokens: 2, total_tokens: 2 },
    });
  for (
    const [embeddings, why] of [
      [[[0.1, 0.2], [null, null]], /returned a vector holding null, not a number/],
      [[[0.1, 0.2], ["a", "b"]], /returned a vector holding "a", not a number/],
      [[[0.1, 0.2]], /returned 1 vectors for 2 inputs/],
    ] as const
  ) {
    await withFakeOpenAI(
      { intercept: () => reply(embeddings as unknown as unknown[][]) },
      async (server) => {
        const { embeddings: client2 } = client(server.url);
        const error = await client2.embed(["a", "b"], signal()).catch((e) => e);
        assert.match(error.message, why);
        assert.equal(error.retryable, false, "split at once, not bought again by retries");
      },
    );
  }
});

Deno.test("an aborted call rejects at once with the signal's reason", async () => {
  await withFakeOpenAI({ latency: 5_000 }, async (server) => {
    const { embeddings } = client(server.url);
    const ctl = new AbortController();
    const call = embeddings.embed(["a"], ctl.signal);
    setTimeout(() => ctl.abort(new Error("stopping")), 50);
    await assert.rejects(call, /stopping/);
  });
});

/** A clock whose sleeps return at once, moving time to where the sleeper wanted to wake. */
function fakeClock() {
  let t = 0;
  const wakes: number[] = [];
  const clock: Clock = {
    now: () => t,
    sleep(ms) {
      wakes.push(t + ms);
      t = Math.max(t, t + ms);
      return Promise.resolve();
    },
  };
  return { clock, wakes };
}

Deno.test("with rpm 60, five batches in flight at once go one second apart", async () => {
  const { clock, wakes } = fakeClock();
  await withFakeOpenAI({}, async (server) => {
    const limiter = new RateLimiter({ rpm: 60 }, clock);
    const { embeddings } = client(server.url, { limiter });
    const batches = Array.from({ length: 5 }, (_, b) => [`batch ${b} a`, `batch ${b} b`]);
    const results = await Promise.all(batches.map((batch) => embeddings.embed(batch, signal())));
    assert.equal(results.length, 5);
    assert.equal(server.hits.length, 5);
    assert.deepEqual(wakes, [1000, 2000, 3000, 4000], "the first goes at 0, each next 1 s later");
  });
});

Deno.test("every attempt, retries included, draws on the rate limit", async () => {
  const { clock } = fakeClock();
  await withFakeOpenAI({
    intercept: (hit) => hit.n === 1 ? apiError(502, "bad gateway") : undefined,
  }, async (server) => {
    let acquired = 0;
    const limiter = new RateLimiter({ rpm: 60, tpm: 1_000_000 }, clock);
    const acquire = limiter.acquire.bind(limiter);
    limiter.acquire = (tokens, s) => (acquired++, acquire(tokens, s));
    const { embeddings } = client(server.url, { limiter, clock });
    await embeddings.embed(["a"], signal());
    assert.equal(server.hits.length, 2);
    assert.equal(acquired, 2);
  });
});

Deno.test("an embeddings failure says whether it is the service's: no reply, 429 and 5xx are; 400 is not", () => {
  const failure = (status: number | undefined, retryable: boolean) =>
    isServiceFailure(new EmbeddingRequestError("m at e: failed", status, retryable));
  assert.equal(failure(undefined, true), true, "no reply within the timeout");
  assert.equal(failure(500, true), true);
  assert.equal(failure(429, true), true);
  assert.equal(failure(400, false), false, "a bad input");
  assert.equal(failure(undefined, false), false, "a reply over the cap: this request's");
});

Deno.test("a reply that echoes the key, whole or cut short, does not carry it into the error", async () => {
  // A key not shaped like OpenAI's (a proxy's, a self-hosted server's): only the key itself
  // tells it apart.
  const key = "ZZTOPSECRET9876543210abc";
  const replies = [
    // A vector holding the request's header, as a broken proxy may.
    () => Response.json({ data: [{ index: 0, embedding: [`auth=Bearer ${key}`] }] }),
    // A body that is not JSON and starts with the key: V8's message quotes its first characters.
    () =>
      new Response(`${key} is not a key we know`, {
        headers: { "content-type": "application/json" },
      }),
  ];
  for (const reply of replies) {
    await withFakeOpenAI({ intercept: reply }, async (server) => {
      const { embeddings } = client(server.url, { apiKey: key, maxRetries: 0 });
      const error = await embeddings.embed(["a"], signal()).then(() => undefined, (e) => e);
      assert.ok(error instanceof Error);
      const said = `${error.message} ${JSON.stringify(error.cause ?? "")}`;
      assert.ok(!said.includes(key.slice(0, 8)), said);
    });
  }
});
