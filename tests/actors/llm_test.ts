/**
 * The llm stage in whole flows against a local server that speaks POST
 * /v1/chat/completions (tests/adapters/chat/_fake_chat.ts): what lands in
 * the field, what a bad reply costs, how a 429 and a refused
 * response_format are met, and what the cache saves.
 */
import assert from "node:assert/strict";
import { formatReport } from "../../cli/summary.ts";
import { FlowError } from "../../config/load_flow.ts";
import { exitCodeFor, UNAVAILABLE } from "../../cli/exit_code.ts";
import { runTestFlow } from "../../testing.ts";
import type { RawItem } from "../../engine/item.ts";
import { apiError, completion, retriedOf, withFakeChat } from "../adapters/chat/_fake_chat.ts";

import { flowYaml, items, KEY, wordsOf } from "./_llm_flow.ts";

Deno.test("schema-valid replies land in the field, ten items to a request", async () => {
  await withFakeChat({ answer: wordsOf, tokens: 120 }, async (server) => {
    const { published, report, deadLetters } = await runTestFlow(flowYaml(server.url), {
      items: items(25),
      env: { KEY },
    });
    const out = published.get("out")!;
    assert.equal(out.length, 25);
    assert.deepEqual(out.find((i) => i.payload.title === "story number 7")?.payload.facts, {
      words: 3,
      topic: "tech",
    });
    assert.deepEqual(deadLetters, []);
    assert.deepEqual(server.hits.map((h) => h.inputs.size), [10, 10, 5]);
    const first = server.hits[0];
    assert.equal(first.authorization, `Bearer ${KEY}`);
    assert.equal(first.body.response_format.type, "json_schema");
    assert.equal(first.body.response_format.json_schema.strict, true);
    assert.deepEqual(
      first.body.response_format.json_schema.schema.properties.results.items.properties.output
        .required,
      ["words", "topic"],
    );
    assert.match(first.messages[0].content, /^Count the words and give the topic\./);
    const llm = report.stages.find((s) => s.id === "llm")!;
    assert.deepEqual(llm.usage, { requests: 3, tokens: 360 });
    assert.match(formatReport(report), /llm .*3 requests, 360 tokens/);
  });
});

Deno.test("an invalid output is asked for once more with its error, then dead-lettered", async () => {
  const answer = (input: string, hit: { n: number }) => {
    if (input.includes("bad")) return { words: "many", topic: "tech" };
    if (input.includes("flaky") && hit.n === 1) return { words: 2, topic: "sports" };
    return wordsOf(input);
  };
  await withFakeChat({ answer }, async (server) => {
    const titles = ["fine one", "a bad one", "a flaky one", "fine two"];
    const { published, deadLetters, report } = await runTestFlow(flowYaml(server.url), {
      items: items(4, (i) => titles[i]),
      env: { KEY },
    });
    assert.deepEqual(
      published.get("out")!.map((i) => [i.payload.title, i.payload.facts]),
      [
        ["fine one", { words: 2, topic: "tech" }],
        ["a flaky one", { words: 3, topic: "tech" }],
        ["fine two", { words: 2, topic: "tech" }],
      ],
    );
    assert.equal(server.hits.length, 2);
    const retry = server.hits[1].messages;
    assert.deepEqual(retry.slice(0, 2), server.hits[0].messages);
    assert.equal(retry[2].role, "assistant");
    assert.match(
      retry[3].content,
      /input 1: words: Invalid input: expected number, received string/,
    );
    // What the model answered is said beside the rule it broke.
    assert.match(
      retry[3].content,
      /input 2: topic: Invalid option: expected one of "tech"\|"other", got "sports"/,
    );
    assert.match(retry[3].content, /results for inputs 1, 2 only/);
    assert.equal(deadLetters.length, 1);
    assert.equal(
      (deadLetters[0].item as { payload: { title: string } }).payload.title,
      "a bad one",
    );
    assert.equal(deadLetters[0].stage, "llm");
    assert.match(
      deadLetters[0].reason,
      /the model's reply gave no valid result for it, twice: words: Invalid input: expected number, received string, got "many"/,
    );
    assert.doesNotMatch(JSON.stringify(deadLetters), new RegExp(KEY));
    assert.deepEqual(report.stages.find((s) => s.id === "llm")!.rejected, {
      "invalid-llm-reply": 1,
    });
  });
});

Deno.test("a reply that is not JSON fails every item of the request, which is retried once", async () => {
  let n = 0;
  await withFakeChat(
    { intercept: () => ++n === 1 ? completion("Sure! Here you go.") : undefined, answer: wordsOf },
    async (server) => {
      const { published } = await runTestFlow(flowYaml(server.url), {
        items: items(3),
        env: { KEY },
      });
      assert.equal(published.get("out")!.length, 3);
      assert.equal(server.hits.length, 2);
      assert.match(server.hits[1].messages[3].content, /input 0: the reply is not JSON/);
    },
  );
});

Deno.test("a response body that is not JSON is said as such, apart from a model's answer that is not", async () => {
  // A proxy's page or a cut body, with a 200: it read "Unexpected token … is not valid JSON",
  // which could be taken for the model's answer.
  const broken = () =>
    new Response('{"choices": [ this is not json', {
      headers: { "content-type": "application/json" },
    });
  await withFakeChat({ intercept: () => broken() }, async (server) => {
    const { deadLetters } = await runTestFlow(
      flowYaml(server.url, "      retries: 0\n      maxRetries: 0"),
      { items: items(1), env: { KEY } },
    );
    assert.equal(deadLetters.length, 1);
    assert.match(
      deadLetters[0].reason,
      /gpt-test at http:\/\/127\.0\.0\.1:\d+\/v1: answered with a body that is not valid JSON \(/,
    );
  });
});

Deno.test("a reply over the size cap is not bought again: its items are dead-lettered, split at once", async () => {
  // It was taken for a connection error: the batch was sent 3 times, then split (each item
  // asked for up to 7 times), and the letters said "cannot connect … is the server running".
  const big = completion("x".repeat(5 * 1024 * 1024));
  await withFakeChat({ intercept: () => big.clone() }, async (server) => {
    const { published, deadLetters, report } = await runTestFlow(flowYaml(server.url), {
      items: items(4),
      env: { KEY },
    });
    assert.equal(published.get("out")?.length ?? 0, 0);
    assert.equal(deadLetters.length, 4);
    assert.ok(
      deadLetters.every((d) => /reply is larger than the limit/.test(d.reason)),
      deadLetters[0].reason,
    );
    assert.ok(deadLetters.every((d) => !/cannot connect/.test(d.reason)));
    // One request for the batch, then its halves, then its items: 7, with no retry among them,
    // each counted in the report (only answered requests were).
    assert.equal(server.hits.length, 7);
    assert.equal(report.stages.find((s) => s.id === "llm")!.usage?.requests, 7);
  });
});

Deno.test("a 429 with Retry-After is waited out and the request sent again", async () => {
  await withFakeChat({
    answer: wordsOf,
    intercept: (hit) =>
      hit.n === 1 ? apiError(429, "Rate limit reached", { "retry-after-ms": "20" }) : undefined,
  }, async (server) => {
    const { published, logs } = await runTestFlow(flowYaml(server.url), {
      items: items(4),
      env: { KEY },
    });
    assert.equal(published.get("out")!.length, 4);
    assert.deepEqual(server.hits.map((h) => h.status), [429, 200]);
    assert.deepEqual(server.hits[1].body, server.hits[0].body);
    const warned = logs.find((l) => l.includes("Rate limit reached; retrying"));
    assert.ok(warned, logs.join("\n"));
    assert.match(warned, /"waitMs":20/);
    // The client's line says whose it is, as the stage's own lines do.
    assert.match(warned, /llm-test\/llm: gpt-test at /);
  });
});

Deno.test("a server that refuses json_schema is asked in JSON mode, the schema in the prompt", async () => {
  await withFakeChat({
    answer: wordsOf,
    intercept: (hit) =>
      hit.body.response_format?.type === "json_schema"
        ? apiError(400, "response_format type json_schema is not supported by this model")
        : undefined,
  }, async (server) => {
    const { published } = await runTestFlow(flowYaml(server.url), {
      items: items(12),
      env: { KEY },
    });
    assert.equal(published.get("out")!.length, 12);
    assert.deepEqual(
      server.hits.map((h) => `${h.status} ${h.body.response_format?.type}`),
      ["400 json_schema", "200 json_object", "200 json_object"],
    );
    assert.match(server.hits[1].messages[0].content, /following this JSON Schema:\n\{"type"/);
  });
});

Deno.test("a server that takes no response_format at all gets the schema in the prompt only", async () => {
  await withFakeChat({
    answer: wordsOf,
    intercept: (hit) =>
      hit.body.response_format
        ? apiError(400, `response_format ${hit.body.response_format.type} is not supported`)
        : undefined,
  }, async (server) => {
    const { published } = await runTestFlow(flowYaml(server.url), {
      items: items(3),
      env: { KEY },
    });
    assert.equal(published.get("out")!.length, 3);
    assert.deepEqual(
      server.hits.map((h) => `${h.status} ${h.body.response_format?.type ?? "none"}`),
      ["400 json_schema", "400 json_object", "200 none"],
    );
  });
});

Deno.test("structured: on takes no fallback: the 400 dead-letters the items", async () => {
  await withFakeChat({
    intercept: () => apiError(400, "response_format json_schema is not supported"),
  }, async (server) => {
    const yaml = flowYaml(server.url).replace("into: facts", "into: facts\n      structured: on");
    const { deadLetters } = await runTestFlow(yaml, { items: items(1), env: { KEY } });
    assert.equal(deadLetters.length, 1);
    assert.match(deadLetters[0].reason, /400 response_format json_schema is not supported/);
    assert.deepEqual(server.hits.map((h) => h.body.response_format.type), ["json_schema"]);
  });
});

Deno.test("a reply cut off at maxOutputTokens splits its batch, whose halves fit", async () => {
  // Asked again as it was, the reply was cut again and all ten items went to dead letters,
  // though each alone fits. The server cuts at max_tokens (4 characters a token) as real ones do.
  await withFakeChat({
    intercept: (hit) => {
      const wanted = retriedOf(hit.messages) ?? [...hit.inputs.keys()];
      const full = JSON.stringify({
        results: wanted.map((index) => ({ index, output: wordsOf(hit.inputs.get(index)!) })),
      });
      const max = hit.body.max_tokens * 4;
      const cut = full.length > max;
      return completion(cut ? full.slice(0, max) : full, 325, cut ? "length" : "stop");
    },
  }, async (server) => {
    // One output is about 50 characters: 100 tokens hold about 7 of them.
    const yaml = flowYaml(server.url, "      maxOutputTokens: 100");
    const { published, deadLetters } = await runTestFlow(yaml, { items: items(10), env: { KEY } });
    assert.equal(deadLetters.length, 0, deadLetters[0]?.reason);
    assert.equal(published.get("out")?.length, 10);
  });
});

Deno.test("a reply the server cut at its own limit says so, not maxOutputTokens, which the flow did not set", async () => {
  // Before: "(it was cut off at maxOutputTokens)", a field the user looked for in the flow in vain.
  await withFakeChat({
    intercept: () => completion('{"results":[{"index":0,"output":', 325, "length"),
  }, async (server) => {
    const { deadLetters } = await runTestFlow(flowYaml(server.url), {
      items: items(1),
      env: { KEY },
    });
    assert.equal(deadLetters.length, 1);
    assert.match(
      deadLetters[0].reason,
      /cut off at the server's output limit \(maxOutputTokens is not set: set it to raise the limit\)/,
    );
    assert.doesNotMatch(deadLetters[0].reason, /cut off at maxOutputTokens/);
  });
});

Deno.test("the results a cut reply finished are not asked for again when its batch is split, cached or not", async () => {
  // They were thrown away with the reply, so the halves paid for them twice.
  for (const cache of [true, false]) {
    const whole = new Set<string>();
    const askedAgain: string[] = [];
    await withFakeChat({
      intercept: (hit) => {
        const wanted = retriedOf(hit.messages) ?? [...hit.inputs.keys()];
        for (const i of wanted) {
          if (whole.has(hit.inputs.get(i)!)) askedAgain.push(hit.inputs.get(i)!);
        }
        const results = wanted.map((index) => ({ index, output: wordsOf(hit.inputs.get(index)!) }));
        const full = JSON.stringify({ results });
        const max = hit.body.max_tokens * 4;
        let content = full;
        if (full.length > max) {
          content = full.slice(0, max);
          // What the cut reply holds whole is paid for.
          for (const r of results) {
            if (content.includes(JSON.stringify(r))) whole.add(hit.inputs.get(r.index)!);
          }
        }
        return completion(content, 325, content === full ? "stop" : "length");
      },
    }, async (server) => {
      const yaml = flowYaml(server.url, `      maxOutputTokens: 100\n      cache: ${cache}`);
      const { published, deadLetters } = await runTestFlow(yaml, {
        items: items(10),
        env: { KEY },
      });
      assert.equal(deadLetters.length, 0, deadLetters[0]?.reason);
      assert.equal(published.get("out")?.length, 10);
      assert.ok(whole.size >= 5, `cache: ${cache}: ${whole.size} results were whole`);
      assert.deepEqual(askedAgain, [], `cache: ${cache}`);
    });
  }
});

Deno.test("a second run with the cache makes no call; a changed prompt pays again", async () => {
  const outDir = await Deno.makeTempDir();
  try {
    await withFakeChat({ answer: wordsOf }, async (server) => {
      const run = (yaml: string) => runTestFlow(yaml, { items: items(15), env: { KEY }, outDir });
      await run(flowYaml(server.url));
      assert.equal(server.hits.length, 2);
      const again = await run(flowYaml(server.url));
      assert.equal(server.hits.length, 2);
      assert.equal(again.published.get("out")!.length, 15);
      assert.deepEqual(again.published.get("out")![0].payload.facts, { words: 3, topic: "tech" });
      assert.deepEqual(again.report.stages.find((s) => s.id === "llm")!.usage, { cached: 15 });
      await run(flowYaml(server.url).replace("give the topic.", "give the topic, please."));
      assert.equal(server.hits.length, 4);
    });
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
});

Deno.test("cached items of a batch retried after a server error are counted once", async () => {
  const outDir = await Deno.makeTempDir();
  try {
    let failures = 0;
    await withFakeChat({
      answer: wordsOf,
      // Past the client's own retries, so the runner tries the batch again.
      intercept: () =>
        failures > 0 && failures-- > 0
          ? apiError(500, "oops", { "retry-after-ms": "1" })
          : undefined,
    }, async (server) => {
      const run = (n: number) =>
        runTestFlow(flowYaml(server.url), { items: items(n), env: { KEY }, outDir });
      await run(5);
      failures = 12;
      const { report, published } = await run(10);
      assert.equal(published.get("out")?.length, 10);
      assert.equal(report.stages.find((s) => s.id === "llm")?.usage?.cached, 5);
    });
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
});

Deno.test("an item deleted upstream passes through without a call", async () => {
  await withFakeChat({ answer: wordsOf }, async (server) => {
    const { report } = await runTestFlow(flowYaml(server.url), {
      items: [{ title: "gone now", url: "https://example.com/x", deleted: true }],
      env: { KEY },
    });
    assert.equal(report.published, 1);
    assert.equal(server.hits.length, 0);
    // Only deleted: true is a delete, as in every other stage and sink: "no" is asked about.
    const other = await runTestFlow(flowYaml(server.url), {
      items: [
        { title: "here still", url: "https://example.com/y", deleted: "no" } as unknown as RawItem,
      ],
      env: { KEY },
    });
    assert.equal(other.report.published, 1);
    assert.equal(server.hits.length, 1);
  });
});

Deno.test("a baseUrl holding a user:password is refused at its line, the password not shown", async () => {
  // Before: sent as a second Authorization beside apiKey's, and exported with the URL in
  // Deno's HTTP spans (url.full) to the trace store.
  const error = await runTestFlow(flowYaml("http://alice:pw456@127.0.0.1:1/v1"), { env: { KEY } })
    .then(() => undefined, (e: Error) => e);
  assert.ok(error instanceof FlowError, String(error));
  assert.match(
    error.message,
    /pipeline\[0\]\.llm\.baseUrl: baseUrl holds a user:password, which would go beside apiKey as a second Authorization and out with the URL in traces: put the key in apiKey/,
  );
  assert.doesNotMatch(error.message, /pw456/);
});

Deno.test("a server not listening ends the run at its start, as a service that did not answer (exit 75)", async () => {
  // Before: the run started, and each batch waited it out as an outage, 10 minutes apiece
  // (about 50 minutes for flows/llm.yaml), where the embedder's start check ends it at once.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const error = await runTestFlow(flowYaml(`http://127.0.0.1:${port}/v1`), {
    items: items(3),
    env: { KEY },
    timeout: 30_000,
  }).then(() => undefined, (e: Error) => e);
  assert.ok(error, "the run ends at its start");
  assert.match(
    error.message,
    new RegExp(`at http://127\\.0\\.0\\.1:${port}/v1 did not answer: .*refused`, "i"),
  );
  assert.equal(exitCodeFor(error, ["run", "flow.yaml"]), UNAVAILABLE);
  assert.doesNotMatch(error.message, new RegExp(KEY));
  // A server that answers the check with a 404 (no such route, as this one) runs as ever.
  await withFakeChat({ answer: wordsOf }, async (server) => {
    const { published } = await runTestFlow(flowYaml(server.url), {
      items: items(3),
      env: { KEY },
    });
    assert.equal(published.get("out")?.length, 3);
  });
});

Deno.test("a refused key stops the run, sending no item to dead letters, and stays out of the error", async () => {
  await withFakeChat({
    intercept: (hit) =>
      apiError(401, `Incorrect API key provided: ${hit.authorization?.slice(7)}.`),
  }, async (server) => {
    const error = await runTestFlow(flowYaml(server.url), { items: items(25), env: { KEY } })
      .then(() => undefined, (e: Error) => e);
    // Before: each batch was split down to its items, 2 requests an item, all 25 dead-lettered.
    assert.ok(error, "the run ends with the refusal");
    assert.match(
      error.message,
      /401 Incorrect API key provided: \[redacted\].*check apiKey, model and baseUrl/,
    );
    assert.doesNotMatch(error.message, new RegExp(KEY));
    assert.equal(server.hits.length, 1);
  });
});

Deno.test("a chat endpoint that redirects ends the run at once, saying where to; nothing goes there", async () => {
  // Followed, items' texts went to the other address, or the key was lost on the way; refused
  // as a connection error, every item was dead-lettered after 150 requests for 40 items.
  await withFakeChat({ answer: wordsOf }, async (target) => {
    await withFakeChat({
      intercept: () =>
        new Response(null, {
          status: 307,
          headers: { location: `${target.url}/chat/completions` },
        }),
    }, async (server) => {
      const error = await runTestFlow(flowYaml(server.url), { items: items(40), env: { KEY } })
        .then(() => undefined, (e: Error) => e);
      assert.ok(error, "the run ends");
      assert.match(
        error.message,
        /answered 307, redirecting to http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions: point the url at where the API answers/,
      );
      assert.equal(server.hits.length, 1);
      assert.equal(target.hits.length, 0);
    });
  });
});

Deno.test("a spent quota ends the run at once, sending no item to dead letters", async () => {
  // Before: 240 requests for 40 items, each batch retried, split, and dead-lettered.
  const quota = "You exceeded your current quota, please check your plan and billing details.";
  await withFakeChat({
    intercept: () => apiError(429, quota, { "retry-after-ms": "1" }, "insufficient_quota"),
  }, async (server) => {
    const error = await runTestFlow(flowYaml(server.url), { items: items(40), env: { KEY } })
      .then(() => undefined, (e: Error) => e);
    assert.ok(error, "the run ends with the refusal");
    assert.match(error.message, /429 You exceeded your current quota/);
    assert.equal(server.hits.length, 1);
  });
});

Deno.test("a model that refuses max_tokens is asked with max_completion_tokens from then on", async () => {
  // OpenAI's reasoning models refuse max_tokens with a 400: every batch was split and every
  // item dead-lettered (76 requests for 40 items, none published).
  const refusal = "Unsupported parameter: 'max_tokens' is not supported with this model. " +
    "Use 'max_completion_tokens' instead.";
  await withFakeChat({
    answer: wordsOf,
    intercept: (hit) =>
      hit.body.max_tokens !== undefined
        ? apiError(400, refusal, {}, "unsupported_parameter")
        : undefined,
  }, async (server) => {
    const { published, deadLetters } = await runTestFlow(
      flowYaml(server.url, "      maxOutputTokens: 500"),
      { items: items(40), env: { KEY } },
    );
    assert.equal(published.get("out")?.length, 40);
    assert.equal(deadLetters.length, 0);
    assert.equal(server.hits.filter((h) => h.body.max_tokens !== undefined).length, 1);
    assert.ok(server.hits.slice(1).every((h) => h.body.max_completion_tokens === 500));
  });
});

Deno.test("an output schema that is not JSON Schema fails the load at its line", async () => {
  const bad = flowYaml("http://127.0.0.1:1/v1").replace("type: integer", "type: int");
  await assert.rejects(
    () => runTestFlow(bad, { env: { KEY } }),
    (e: unknown) => {
      assert.ok(e instanceof FlowError);
      assert.match(
        e.message,
        /test flow:14:26: pipeline\[0\]\.llm\.schema\.properties\.words\.type: "int" is not a JSON Schema type \(string, number, integer/,
      );
      return true;
    },
  );
});

Deno.test("the example flow flows/llm.yaml runs against a compatible server", async () => {
  const answer = () => ({ topic: "other", summary: "A story." });
  await withFakeChat({ answer }, async (server) => {
    const yaml = await Deno.readTextFile("flows/llm.yaml");
    const { report, deadLetters } = await runTestFlow(yaml, {
      env: { LLM_URL: server.url, LLM_MODEL: "fake-model" },
      baseDir: "flows",
    });
    assert.deepEqual(deadLetters.filter((d) => d.stage === "llm"), []);
    const llm = report.stages.find((s) => s.id === "llm")!;
    assert.equal(llm.emitted, llm.received);
    assert.equal(report.published, llm.received);
    assert.equal(server.hits.length, Math.ceil(llm.received / 8));
    assert.equal(server.hits[0].body.model, "fake-model");
    assert.equal(server.hits[0].authorization, "Bearer none");
  });
});

Deno.test("an item with none of the input's fields goes to dead letters unasked, not to a made-up answer", async () => {
  await withFakeChat({ answer: wordsOf }, async (server) => {
    const given = [
      { title: "story one", url: "https://example.com/1" },
      { url: "https://example.com/2" },
      { url: "https://example.com/3", text: "no title here" },
    ];
    const { published, deadLetters, report, logs } = await runTestFlow(flowYaml(server.url), {
      items: given,
      env: { KEY },
    });
    // Before: both title-less items were asked about as "" and given the same invented facts.
    assert.deepEqual(published.get("out")!.map((i) => i.payload.url), ["https://example.com/1"]);
    assert.deepEqual(server.hits.map((h) => h.inputs.size), [1]);
    assert.deepEqual(deadLetters.map((l) => [l.stage, l.reason]), [
      [
        "llm",
        "llm-test/llm: empty input: the item has none of the input's fields (title), nothing to ask about",
      ],
      [
        "llm",
        "llm-test/llm: empty input: the item has none of the input's fields (title), nothing to ask about",
      ],
    ]);
    assert.deepEqual(report.stages.find((s) => s.id === "llm")!.rejected, { "empty input": 2 });
    assert.equal(logs.filter((l) => l.includes("none of the input's fields (title)")).length, 1);
  });
});

Deno.test("a misspelt type, keyword or required name, or OpenAPI's nullable, fails the load too", async () => {
  // Before: both loaded, and the schema checked less than the file said.
  const cases: [string, string, RegExp][] = [
    [
      "topic: { type: string,",
      "topic: { type: strin,",
      /:15:26: pipeline\[0\]\.llm\.schema\.properties\.topic\.type: "strin" is not a JSON Schema type .*did you mean "string"/,
    ],
    [
      "words: { type: integer }",
      "words: { type: integer, maxLenght: 5 }",
      /:14:46: pipeline\[0\]\.llm\.schema\.properties\.words\.maxLenght: "maxLenght" is not a JSON Schema keyword; did you mean "maxLength"/,
    ],
    // A required name properties does not list held nothing: { } passed the check.
    [
      "required: [words, topic]",
      "required: [words, topik]",
      /:16:27: pipeline\[0\]\.llm\.schema\.required\[1\]: required names "topik", which properties does not list; did you mean "topic"/,
    ],
    // OpenAPI's nullable was ignored by the check, which refused the model's null every time.
    [
      "words: { type: integer }",
      "words: { type: integer, nullable: true }",
      /:14:\d+: pipeline\[0\]\.llm\.schema\.properties\.words\.nullable: "nullable" is OpenAPI's, not JSON Schema's: write the type with "null"/,
    ],
  ];
  for (const [from, to, message] of cases) {
    const bad = flowYaml("http://127.0.0.1:1/v1").replace(from, to);
    assert.notEqual(bad, flowYaml("http://127.0.0.1:1/v1"), from);
    await assert.rejects(() => runTestFlow(bad, { env: { KEY } }), message);
  }
});

Deno.test("a refusal repeating the baseUrl's key shows it masked", async () => {
  // (A user:password in baseUrl is refused at load: see above.)
  await withFakeChat({
    intercept: () => apiError(401, "no such key AZURESECRET12345 for bob"),
  }, async (server) => {
    const baseUrl = server.url + "?api-key=AZURESECRET12345";
    const error = await runTestFlow(flowYaml(baseUrl), { items: items(3), env: { KEY } })
      .then(() => undefined, (e: Error) => e);
    assert.ok(error, "the run ends with the refusal");
    assert.match(error.message, /401 no such key \*\*\* for bob/);
    assert.doesNotMatch(error.message, /AZURESECRET12345/);
  });
});

Deno.test("a field of the input no item of a batch has is said once: a misspelt {titel}", async () => {
  await withFakeChat({ answer: wordsOf }, async (server) => {
    const yaml = flowYaml(server.url).replace('input: "{title}"', 'input: "{titel} {text}"');
    assert.notEqual(yaml, flowYaml(server.url));
    const given = [1, 2, 3].map((i) => ({
      title: `t${i}`,
      url: `https://e.example/${i}`,
      text: "x",
    }));
    const { published, logs } = await runTestFlow(yaml, { items: given, env: { KEY } });
    assert.equal(published.get("out")!.length, 3);
    const said = logs.filter((l) => l.includes('"titel"'));
    assert.equal(said.length, 1, logs.join("\n"));
    assert.match(said[0], /no item of a batch of 3 has "titel", which the input's \{titel\} reads/);
  });
});

Deno.test("a reply that echoes the key leaves it out of the dead letters", async () => {
  const key = "ZZTOPSECRET9876543210abc"; // not shaped like OpenAI's keys
  await withFakeChat(
    { intercept: () => completion(`not json: auth=Bearer ${key}`) },
    async (server) => {
      const { deadLetters, logs } = await runTestFlow(flowYaml(server.url), {
        items: items(2),
        env: { KEY: key },
      });
      assert.equal(deadLetters.length, 2);
      assert.match(deadLetters[0].reason, /the reply is not JSON/);
      const said = JSON.stringify(deadLetters) + logs.join("\n");
      assert.ok(!said.includes(key.slice(0, 8)), said);
    },
  );
});

// What a misbehaving server costs: found by a fault review against a server that answers
// with error pages, Retry-After, bodies that are no completion, and dropped connections.

Deno.test("a server's error page is quoted cut short in dead letters and log lines", async () => {
  const page = "<html><body>" + "Internal error. ".repeat(65_536) + "</body></html>"; // 1 MiB
  await withFakeChat({
    intercept: () => new Response(page, { status: 500, headers: { "content-type": "text/html" } }),
  }, async (server) => {
    const { deadLetters, logs } = await runTestFlow(
      flowYaml(server.url, "      retries: 0\n      maxRetries: 1"),
      { items: items(2), env: { KEY } },
    );
    assert.equal(deadLetters.length, 2);
    for (const letter of deadLetters) {
      assert.match(letter.reason, /: 500 <html><body>Internal error\. /);
      assert.match(letter.reason, /… \(\d+ more characters\)/);
      assert.ok(letter.reason.length < 2_500, `a reason of ${letter.reason.length} characters`);
    }
    const longest = Math.max(...logs.map((line) => line.length));
    assert.ok(longest < 5_000, `a log line of ${longest} characters`);
  });
});

Deno.test("the Retry-After of a request's last attempt holds the stage's next try of the batch", async () => {
  const at: number[] = [];
  await withFakeChat({
    answer: wordsOf,
    intercept: (hit) => {
      at.push(performance.now());
      return hit.n === 1 ? apiError(429, "Rate limit reached", { "retry-after": "1" }) : undefined;
    },
  }, async (server) => {
    // No retry of the client's own: the 429 is its last attempt, and the stage tries again.
    const { published } = await runTestFlow(
      flowYaml(server.url, "      retries: 1\n      maxRetries: 0"),
      { items: items(3), env: { KEY } },
    );
    assert.equal(published.get("out")!.length, 3);
    assert.deepEqual(server.hits.map((h) => h.status), [429, 200]);
    // The stage's own backoff is 100 ms: the second request went out that soon after the 429.
    assert.ok(at[1] - at[0] >= 950, `asked again ${Math.round(at[1] - at[0])} ms after the 429`);
  });
});

Deno.test("a 429's Retry-After holds back the stage's other requests, with no rpm or tpm set", async () => {
  const at: number[] = [];
  let refusedAt = Infinity;
  await withFakeChat({
    answer: wordsOf,
    intercept: (hit) => {
      at.push(performance.now());
      if (hit.n !== 1) return undefined;
      refusedAt = performance.now();
      return apiError(429, "Rate limit reached", { "retry-after": "1" });
    },
  }, async (server) => {
    const { published } = await runTestFlow(
      flowYaml(server.url, "      concurrency: 2")
        .replace("batch: { size: 10, maxWait: 10ms }", "batch: { size: 1, maxWait: 10ms }"),
      { items: items(40), env: { KEY } },
    );
    assert.equal(published.get("out")!.length, 40);
    // A request already on its way when the 429 came may arrive just after it; none sent later.
    // (Without the hold, the other batches' 39 requests went out one after another at once.)
    const early = at.filter((t) => t > refusedAt + 50 && t < refusedAt + 950);
    assert.equal(early.length, 0, `${early.length} requests within a second of the 429`);
  });
});

Deno.test("a 200 whose body is not a chat completion is asked again, not read as an empty answer", async () => {
  const notCompletions = [
    () => new Response("<html>Bad gateway</html>", { headers: { "content-type": "text/html" } }),
    () => Response.json({ error: { message: "upstream model crashed" } }),
    () => new Response(null, { status: 200 }),
  ];
  for (const notCompletion of notCompletions) {
    await withFakeChat({
      answer: wordsOf,
      intercept: (hit) => hit.n === 1 ? notCompletion() : undefined,
    }, async (server) => {
      const { published, deadLetters, logs } = await runTestFlow(flowYaml(server.url), {
        items: items(4),
        env: { KEY },
      });
      assert.equal(deadLetters.length, 0, deadLetters[0]?.reason);
      assert.equal(published.get("out")!.length, 4);
      assert.equal(server.hits.length, 2);
      const warned = logs.find((l) => l.includes("is not a chat completion"));
      assert.ok(warned, logs.join("\n"));
    });
  }
});

Deno.test("a server that drops the connection on one input dead-letters that input alone, not waited out as away", async () => {
  await withFakeChat({ answer: wordsOf }, async (server) => {
    // In front of the server: a request holding "poison" gets its connection closed, unanswered.
    const proxy = droppingProxy(server.url, "poison");
    try {
      const { published, deadLetters } = await runTestFlow(
        flowYaml(proxy.url, "      retries: 0\n      maxRetries: 1"),
        {
          items: items(8, (i) => i === 3 ? "poison pill story" : `story number ${i}`),
          env: { KEY },
          // Waited out as the server being away, it held the batch for ten minutes.
          timeout: 30_000,
        },
      );
      assert.equal(published.get("out")!.length, 7);
      assert.equal(deadLetters.length, 1);
      assert.equal((deadLetters[0].item.payload as { title: string }).title, "poison pill story");
      assert.match(deadLetters[0].reason, /no reply, the connection was closed/);
      assert.doesNotMatch(deadLetters[0].reason, /cannot connect/);
      // Deno's own words name both ends and the url again: only the reason is kept.
      assert.match(deadLetters[0].reason, /closed: connection closed before message completed$/);
      assert.doesNotMatch(deadLetters[0].reason, /error sending request|SendRequest/);
    } finally {
      proxy.close();
    }
  });
});

/**
 * A raw HTTP/1.1 front for `upstream` (a fake chat's /v1 url): it passes
 * each request on and its answer back, on the same connection, but closes
 * the connection unanswered when a request's body holds `marker`.
 */
function droppingProxy(upstream: string, marker: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const serve = async (conn: Deno.Conn) => {
    conns.add(conn);
    const decoder = new TextDecoder();
    let buffered = new Uint8Array(0);
    const read = async (): Promise<boolean> => {
      const chunk = new Uint8Array(65_536);
      const n = await conn.read(chunk).catch(() => null);
      if (n === null) return false;
      const joined = new Uint8Array(buffered.length + n);
      joined.set(buffered);
      joined.set(chunk.subarray(0, n), buffered.length);
      buffered = joined;
      return true;
    };
    try {
      for (;;) {
        let end: number;
        while ((end = decoder.decode(buffered).indexOf("\r\n\r\n")) < 0) if (!await read()) return;
        const head = decoder.decode(buffered).slice(0, end);
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        while (buffered.length < end + 4 + length) if (!await read()) return;
        const body = decoder.decode(buffered.subarray(end + 4, end + 4 + length));
        buffered = buffered.slice(end + 4 + length);
        if (body.includes(marker)) return;
        const path = head.split(" ")[1].replace(/^\/v1/, "");
        const answer = await fetch(upstream + path, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        const text = new TextEncoder().encode(await answer.text());
        await conn.write(new TextEncoder().encode(
          `HTTP/1.1 ${answer.status} X\r\ncontent-type: application/json\r\n` +
            `content-length: ${text.length}\r\n\r\n`,
        ));
        await conn.write(text);
      }
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };
  (async () => {
    for await (const conn of listener) void serve(conn);
  })().catch(() => {});
  const { port } = listener.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
    },
  };
}
