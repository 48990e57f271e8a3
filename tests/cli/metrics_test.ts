import assert from "node:assert/strict";
import { FlowMetrics, MAX_HOSTS } from "../../cli/metrics.ts";
import type { RunningFlow } from "../../engine/run_flow.ts";
import { SourceStats, StageStats } from "../../engine/stats.ts";
import { parseExposition, sample } from "./_exposition.ts";

function running(stages: StageStats[]): RunningFlow {
  return { stages, sources: [] } as unknown as RunningFlow;
}

Deno.test("the exposition carries every stage's counters by outcome, read back as written", async () => {
  const validate = new StageStats("validate", "validate");
  validate.received = 10;
  validate.emitted = 7;
  validate.count(validate.dropped, "duplicate");
  validate.count(validate.rejected, "missing title");
  validate.count(validate.rejected, "bad url");
  validate.failed = 1;
  const embed = new StageStats("embed", "embed");
  embed.tally("tokens", 1234);
  const metrics = new FlowMetrics("news");
  metrics.watch(running([validate, embed]), () =>
    Promise.resolve([
      { stage: "validate", backlog: 5, pending: 2 },
      { stage: "embed", backlog: 0, pending: 7 },
    ]));
  const { text, contentType } = await metrics.render();
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  const e = parseExposition(text);
  const items = (stage: string, outcome: string) =>
    sample(e, "millrace_items_total", { flow: "news", stage, outcome });
  assert.deepEqual(
    ["in", "out", "dropped", "dead_letter"].map((o) => items("validate", o)),
    [10, 7, 1, 3],
  );
  assert.equal(items("embed", "in"), 0);
  assert.equal(e.type.get("millrace_items_total"), "counter");
  assert.ok(e.help.get("millrace_items_total"));
  assert.equal(sample(e, "millrace_embed_tokens_total", { stage: "embed" }), 1234);
  assert.equal(
    e.samples.filter((s) => s.name === "millrace_embed_tokens_total").length,
    1,
    "only embed stages spend tokens",
  );
  assert.equal(e.type.get("millrace_edge_backlog_items"), "gauge");
  assert.equal(sample(e, "millrace_edge_backlog_items", { stage: "validate" }), 5);
  assert.equal(sample(e, "millrace_edge_pending_items", { stage: "embed" }), 7);
});

Deno.test("batch histograms count each batch into its bucket, with sum and count", async () => {
  const metrics = new FlowMetrics("news");
  metrics.watch(running([]), () => Promise.resolve([]));
  metrics.observeBatch("embed", 3, 4); // 4 ms
  metrics.observeBatch("embed", 256, 300);
  metrics.observeBatch("embed", 40, 2000);
  const e = parseExposition((await metrics.render()).text);
  assert.equal(e.type.get("millrace_stage_batch_seconds"), "histogram");
  const le = (name: string, bound: string) =>
    sample(e, `${name}_bucket`, { stage: "embed", le: bound });
  assert.equal(le("millrace_stage_batch_seconds", "0.005"), 1);
  assert.equal(le("millrace_stage_batch_seconds", "0.5"), 2);
  assert.equal(le("millrace_stage_batch_seconds", "2.5"), 3);
  assert.equal(le("millrace_stage_batch_seconds", "+Inf"), 3);
  assert.equal(sample(e, "millrace_stage_batch_seconds_count", { stage: "embed" }), 3);
  assert.ok(
    Math.abs(sample(e, "millrace_stage_batch_seconds_sum", { stage: "embed" }) - 2.304) < 1e-9,
  );
  assert.equal(le("millrace_batch_items", "5"), 1);
  assert.equal(le("millrace_batch_items", "50"), 2);
  assert.equal(le("millrace_batch_items", "250"), 2);
  assert.equal(le("millrace_batch_items", "500"), 3);
  assert.equal(sample(e, "millrace_batch_items_sum", { stage: "embed" }), 299);
});

Deno.test("label values with quotes, backslashes and newlines are escaped and read back whole", async () => {
  const odd = new StageStats('say "hi"\\now\nthen', "validate");
  odd.received = 2;
  const metrics = new FlowMetrics("f");
  metrics.watch(running([odd]), () => Promise.resolve([]));
  metrics.countRequest("example.com:8080", 200);
  metrics.countRequest("example.com:8080", 200);
  metrics.countRequest("example.com:8080", 429);
  metrics.countRequest("down.example", "error");
  const { text } = await metrics.render();
  assert.ok(text.includes('stage="say \\"hi\\"\\\\now\\nthen"'), "escaped as the format says");
  const e = parseExposition(text);
  assert.equal(
    sample(e, "millrace_items_total", { stage: 'say "hi"\\now\nthen', outcome: "in" }),
    2,
  );
  const req = (host: string, status: string) =>
    sample(e, "millrace_http_requests_total", { host, status });
  assert.equal(req("example.com:8080", "200"), 2);
  assert.equal(req("example.com:8080", "429"), 1);
  assert.equal(req("down.example", "error"), 1);
});

Deno.test("hosts past the first MAX_HOSTS count as `other`: followed links cannot grow the series without end", async () => {
  const metrics = new FlowMetrics("f");
  metrics.watch(running([]), () => Promise.resolve([]));
  for (let i = 0; i < MAX_HOSTS + 50; i++) metrics.countRequest(`h${i}.example`, 200);
  metrics.countRequest("h0.example", 200); // a host with its own label keeps it
  metrics.countRequest("late.example", 404);
  const e = parseExposition((await metrics.render()).text);
  const series = e.samples.filter((s) => s.name === "millrace_http_requests_total");
  assert.equal(new Set(series.map((s) => s.labels.host)).size, MAX_HOSTS + 1);
  const req = (host: string, status: string) =>
    sample(e, "millrace_http_requests_total", { host, status });
  assert.equal(req("h0.example", "200"), 2);
  assert.equal(req(`h${MAX_HOSTS - 1}.example`, "200"), 1);
  assert.equal(req("other", "200"), 50);
  assert.equal(req("other", "404"), 1);
});

Deno.test("sources have metrics of their own: items, reads, errors, dead letters and the last good read, for alerts on a stale feed", async () => {
  const feed = new SourceStats("feed", "rss");
  Object.assign(feed, {
    emitted: 40,
    reads: 6,
    errors: 2,
    deadLettered: 1,
    lastOk: 1_700_000_123_000,
  });
  const fresh = new SourceStats("fresh", "json"); // never read yet
  const metrics = new FlowMetrics("news");
  metrics.watch(
    { stages: [], sources: [feed, fresh] } as unknown as RunningFlow,
    () => Promise.resolve([]),
  );
  const e = parseExposition((await metrics.render()).text);
  const of = (name: string, source = "feed") => sample(e, name, { flow: "news", source });
  assert.equal(of("millrace_source_items_total"), 40);
  assert.equal(of("millrace_source_reads_total"), 6);
  assert.equal(of("millrace_source_errors_total"), 2);
  assert.equal(of("millrace_source_dead_letters_total"), 1);
  assert.equal(of("millrace_source_last_success_timestamp_seconds"), 1_700_000_123);
  assert.equal(e.type.get("millrace_source_last_success_timestamp_seconds"), "gauge");
  assert.equal(of("millrace_source_reads_total", "fresh"), 0);
  assert.ok(
    !e.samples.some((s) =>
      s.name === "millrace_source_last_success_timestamp_seconds" && s.labels.source === "fresh"
    ),
    "no last success before one",
  );
  assert.ok(
    !e.samples.some((s) => s.name === "millrace_items_total" && s.labels.stage === "feed"),
    "a source is not counted as a stage",
  );
});

Deno.test("retries and what stages count of their work (merge updates, requests) are exposed per stage", async () => {
  const dedupe = new StageStats("publish", "publish");
  dedupe.retries = 3;
  dedupe.tally("merge updates", 218);
  const metrics = new FlowMetrics("news");
  metrics.watch(running([dedupe]), () => Promise.resolve([]));
  const e = parseExposition((await metrics.render()).text);
  assert.equal(sample(e, "millrace_stage_retries_total", { stage: "publish" }), 3);
  assert.equal(
    sample(e, "millrace_stage_usage_total", { stage: "publish", what: "merge updates" }),
    218,
  );
});

Deno.test("over Redis the edge gauges count stream entries, and are named so", async () => {
  const metrics = new FlowMetrics("news", { durable: true });
  metrics.watch(running([]), () => Promise.resolve([{ stage: "embed", backlog: 4, pending: 1 }]));
  const e = parseExposition((await metrics.render()).text);
  assert.equal(sample(e, "millrace_edge_backlog_entries", { stage: "embed" }), 4);
  assert.equal(sample(e, "millrace_edge_pending_entries", { stage: "embed" }), 1);
  assert.ok(!e.type.has("millrace_edge_backlog_items"), "no items gauge holding entries");
});

Deno.test("a count the engine takes back does not make a counter go down", async () => {
  // An item counted emitted that its durable commit then dead-letters: the count falls,
  // and a Prometheus counter that goes down reads as a restart (rate() spikes).
  const enrich = new StageStats("enrich", "enrich");
  const metrics = new FlowMetrics("news");
  metrics.watch(running([enrich]), () => Promise.resolve([]));
  const out = async () =>
    sample(parseExposition((await metrics.render()).text), "millrace_items_total", {
      flow: "news",
      stage: "enrich",
      outcome: "out",
    });
  const seen: number[] = [];
  for (const emitted of [38, 30, 36, 68, 60]) {
    enrich.emitted = emitted;
    seen.push(await out());
  }
  assert.deepEqual(seen, [38, 38, 38, 68, 68]);
  // A new run starts its counters afresh.
  metrics.watch(running([new StageStats("enrich", "enrich")]), () => Promise.resolve([]));
  assert.equal(await out(), 0);
});
