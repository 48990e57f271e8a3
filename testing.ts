/**
 * Helpers for testing flows and custom stages, beside `mod.ts`: items go in
 * from a list, come out of an in-memory sink, and `runTestFlow` hands back
 * what reached each sink and every dead letter, the same way whether the
 * flow runs in memory or durably over Redis. millrace's own tests use it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runTestFlow } from "./testing.ts";
 *
 * const { published, deadLetters } = await runTestFlow(`
 * name: example
 * sources: { inbox: { kind: memory } }
 * pipeline:
 *   - validate: { require: [title, url] }
 *   - publish: [ { collect: { name: out } } ]
 * `, {
 *   items: [
 *     { title: "A fine title", url: "https://example.com/a" },
 *     { url: "https://example.com/b" },
 *   ],
 * });
 * assert.deepEqual(published.get("out")!.map((i) => i.payload.title), ["A fine title"]);
 * assert.deepEqual(deadLetters.map((d) => [d.stage, d.reason]), [
 *   ["validate", `missing required field "title"`],
 * ]);
 * ```
 * @module
 */
import { AssertionError } from "node:assert";
import { z } from "zod";
import { differences, listDifferences, showDifference } from "./testing/expect.ts";
import { builtinRegistry } from "./builtins.ts";
import { parseFlowWithSteps } from "./config/load_flow.ts";
import { closeRedis, connectRedis } from "./engine/redis/connection.ts";
import { type DeadLetter, MemoryDeadLetters } from "./engine/dead_letters.ts";
import { resetCommand } from "./cli/admin.ts";
import { dlqList } from "./cli/dead_letter_queue.ts";
import { flowKeys } from "./engine/redis/keys.ts";
import { isMap, parseDocument } from "yaml";
import type { Flow } from "./engine/flow.ts";
import { type PublishConfig, sinkNames } from "./actors/publisher.ts";
import { type Envelope, envelope, type RawItem } from "./engine/item.ts";
import { memoryLogger } from "./engine/log.ts";
import { type Registry, schemaOf, type StageSpec } from "./engine/registry.ts";
import type { StepSpec } from "./config/step_modules.ts";
import { type Actor, actorProblem } from "./engine/actor.ts";
import { accounted, heldToAccount } from "./engine/accounted.ts";
import { checkEmitted } from "./engine/emitted.ts";
import { check } from "./config/zod_issues.ts";
import { formatPath } from "./engine/flow_error.ts";
import { type FlowReport, startFlow } from "./engine/run_flow.ts";
import type { Sink } from "./engine/sink.ts";
import { recordLine } from "./adapters/sinks/jsonl_sink.ts";
import type { Source } from "./engine/source.ts";

/**
 * A source that yields `items` in batches of `batch` (default 100). It
 * keeps its position (checkpoint/resume) like a real cursor, so a durable
 * flow resumed after a crash does not emit the list again. Each batch is a
 * copy: a stage that changes a payload never changes the caller's list.
 */
export function memorySource(items: readonly RawItem[], opts: { batch?: number } = {}): Source {
  const size = opts.batch ?? 100;
  let next = 0;
  return {
    async *read(signal) {
      while (next < items.length) {
        signal.throwIfAborted();
        const batch = structuredClone(items.slice(next, next + size));
        next += batch.length;
        yield batch;
      }
    },
    checkpoint: () => ({ next }),
    resume(position) {
      next = (position as { next: number } | undefined)?.next ?? 0;
    },
  };
}

/**
 * A sink that keeps what it is given, idempotent by id as every sink must
 * be: an item written again replaces its copy and keeps its place, and an
 * item marked `deleted` is removed (its id is kept in `deleted`). A merge
 * update (Envelope.update) lays its fields over its item's payload when its
 * revision is higher, as the real sinks do, also when it came first.
 */
export class MemorySink implements Sink {
  /** Merge updates are applied to the story they name (see the class comment). */
  readonly updates = true;
  readonly #items = new Map<string, Envelope<RawItem>>();
  /** The highest update of each id, to lay over its item whenever that comes. */
  readonly #updates = new Map<string, Envelope<RawItem>>();
  /** Ids of items that arrived marked deleted, in the order they came. */
  readonly deleted: string[] = [];

  /**
   * Keeps each item by id (a later copy replaces an earlier one); removes
   * items marked deleted. An item JSON cannot hold (a BigInt, a cycle) fails
   * the batch, writing none of it, with the error every real sink gives, so
   * the stage splits it down to that item: kept, it passed a flow's test
   * that a real run dead-letters.
   */
  write(batch: readonly Envelope<RawItem>[], _signal?: AbortSignal): Promise<void> {
    try {
      for (const item of batch) recordLine(item, { vectors: true }); // throws as the JSONL sink does
    } catch (error) {
      return Promise.reject(error);
    }
    for (const item of batch) {
      if (item.update) {
        if (revision(item) > revision(this.#updates.get(item.id))) {
          this.#updates.set(item.id, item);
        }
      } else if (item.payload.deleted === true) {
        this.#items.delete(item.id);
        this.deleted.push(item.id);
      } else {
        this.#items.set(item.id, item);
      }
    }
    return Promise.resolve();
  }

  /** An item with the highest update of its id laid over it, when that is newer. */
  #merged(item: Envelope<RawItem>): Envelope<RawItem> {
    const update = this.#updates.get(item.id);
    if (!update || revision(update) <= revision(item)) return item;
    const engagement = { ...item.payload.engagement, ...update.payload.engagement };
    return { ...item, payload: { ...item.payload, ...update.payload, engagement } };
  }

  /** The items it holds, in the order each was first written. */
  get items(): Envelope<RawItem>[] {
    return [...this.#items.values()].map((item) => this.#merged(item));
  }
}

function revision(item: Envelope<RawItem> | undefined): number {
  const r = item?.payload.revision;
  return typeof r === "number" ? r : 0;
}

const memorySchema = z.strictObject({
  items: z.array(z.record(z.string(), z.unknown())).optional()
    .describe("The items to emit; runTestFlow's `items` fills a source that gives none."),
  batch: z.int().positive().default(100).describe("Items per batch. Default 100."),
});

const collectSchema = z.strictObject({
  name: z.string().min(1).default("collect")
    .describe("Key of this sink's items in runTestFlow's `published`. Default collect."),
});

/** What a stage did with one batch, as `runStage` returns it. */
export interface StageResult {
  /** What it emitted, in order. */
  emitted: Envelope<RawItem>[];
  /** What it dropped: `label` is what the summary counts by, `reason` the detail when given. */
  dropped: { item: Envelope<RawItem>; label: string; reason: string }[];
  /** What it refused, which a flow sends to dead letters with `reason`. */
  rejected: { item: Envelope<RawItem>; label: string; reason: string }[];
  /** What it logged. */
  logs: string[];
}

/**
 * Runs one stage on one batch, built as a flow builds it: `config` is
 * parsed by the stage's schema (a bad one throws, saying what is wrong as a
 * flow file's errors do), then
 * `create`, `open`, `handle` on `items` wrapped in envelopes (source
 * `test`), and `close`. A unit test of a custom stage, with no flow around
 * it: an error `handle` throws is thrown, where a flow would retry the
 * batch and split it down to the item at fault (`runTestFlow` shows that).
 * Relative paths in the config resolve against `baseDir`, default the
 * working directory, which is also where a stage writes its outputs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { builtinRegistry } from "./mod.ts";
 * import { runStage } from "./testing.ts";
 *
 * const validate = builtinRegistry().stages.get("validate")!;
 * const { emitted, rejected } = await runStage(validate, [
 *   { title: "A fine title", url: "https://example.com/a" },
 *   { url: "https://example.com/b" },
 * ], { require: ["title"] });
 * assert.equal(emitted.length, 1);
 * assert.equal(rejected[0].reason, `missing required field "title"`);
 * ```
 */
export async function runStage(
  spec: StageSpec | StepSpec,
  items: readonly RawItem[],
  config: unknown = {},
  opts: {
    registry?: Registry;
    baseDir?: string;
    /**
     * Ms `handle` (and `open`) may take before its `ctx.signal` is aborted
     * and runStage throws (default 60 s; 0 waits for ever): a stage that
     * never returns fails its test, naming itself, instead of hanging it.
     */
    timeout?: number;
  } = {},
): Promise<StageResult> {
  const registry = opts.registry ?? builtinRegistry();
  const log = memoryLogger();
  const baseDir = opts.baseDir ?? ".";
  const env = { flow: "test", baseDir, outDir: baseDir, log, registry };
  // Held to account as a flow holds a stage of the user's own (engine/accounted.ts): it gets
  // copies of its items, an id emitted twice for one input throws, and an item let go unsaid
  // is dropped "not passed on" and said.
  const options = check(schemaOf(spec, registry), config);
  if (!options.ok) {
    // In a flow's words (unknown field "tims"; did you mean "times"?), not zod's issue list.
    const said = options.problems.map((p) => `${formatPath(["config", ...p.path])}: ${p.message}`);
    throw new Error(`runStage: ${spec.kind ?? "step"}: bad config:\n${said.join("\n")}`);
  }
  // As a flow holds it: a registered stage's own word (leavesInputs) counts, a step module's not.
  const registered = registry.stages.get(spec.kind ?? "") === spec;
  const made = await spec.create(options.value, env);
  const wrong = actorProblem(made);
  if (wrong) throw new Error(`runStage: ${spec.kind ?? "step"}: ${wrong}`);
  const actor: Actor = registered ? heldToAccount(spec as StageSpec, made) : accounted(made);
  // A step module's kind may be left out (its file names it in a flow): "step" here.
  const stop = new AbortController();
  const ctx = { flow: "test", stage: spec.kind ?? "step", signal: stop.signal, log };
  const timeout = opts.timeout ?? DEFAULT_TIMEOUT_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** `work`, or an error naming the stage once the timeout passed (its signal aborted). */
  const inTime = <T>(what: string, work: void | Promise<T>): Promise<T | void> => {
    if (!(work instanceof Promise) || timeout <= 0) return Promise.resolve(work);
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new Error(
          `runStage: stage ${ctx.stage}: ${what} did not return within ${timeout} ms (timeout): ` +
            "does it wait on something that never answers, or ignore ctx.signal?",
        );
        stop.abort(error);
        reject(error);
      }, timeout);
    });
    return Promise.race([work, late]).finally(() => clearTimeout(timer));
  };
  const result: StageResult = { emitted: [], dropped: [], rejected: [], logs: log.lines };
  await inTime("open", actor.open?.(ctx));
  try {
    await inTime(
      "handle",
      actor.handle(items.map((raw) => envelope(structuredClone(raw), "test")), {
        emit: (item) => {
          // What the stage runner checks: a flow dead-letters the item that made such an output.
          checkEmitted(item);
          result.emitted.push(item as Envelope<RawItem>);
        },
        drop: (item, label, detail) =>
          void result.dropped.push({
            item: item as Envelope<RawItem>,
            label,
            reason: detail ?? label,
          }),
        reject: (item, label, detail) =>
          void result.rejected.push({
            item: item as Envelope<RawItem>,
            label,
            reason: detail ?? label,
          }),
      }, ctx),
    );
  } catch (error) {
    // Closed all the same, in time too (a close that waits for the batch in hand would wait for
    // ever), and the handle's error is the one thrown.
    await inTime("close", actor.close?.()).catch(() => {});
    throw error;
  }
  await inTime("close", actor.close?.());
  return result;
}

/**
 * Asserts that `actual` matches `expected` as a flow test file's `expect:`
 * does (see testing/expect.ts): a map needs only the fields it lists, a list
 * matches item by item, and placeholders stand for what a test cannot know
 * (`"{url}"`, `"{iso-date}"`, `"{integer}"`, `"{vector:256}"`,
 * `"{/regex/}"`, `"{any}"`). With `anyOrder`, a list matches in any order
 * (items written by concurrent batches). Throws an AssertionError that
 * lists every difference by its path.
 *
 * @example
 * ```ts
 * import { assertMatches } from "./testing.ts";
 *
 * assertMatches(
 *   { title: "Deno 2", url: "https://deno.com/", keywords: ["deno"], domain: "deno.com" },
 *   { title: "{/Deno/}", url: "{url}", keywords: ["deno"] },
 * );
 * ```
 */
export function assertMatches(
  actual: unknown,
  expected: unknown,
  opts: { exact?: boolean; anyOrder?: boolean } = {},
): void {
  const found = opts.anyOrder && Array.isArray(expected) && Array.isArray(actual)
    ? listDifferences(expected, actual, [])
    : differences(expected, actual, { exact: opts.exact });
  if (found.length === 0) return;
  throw new AssertionError({
    message: `not as expected:\n${found.map((d) => showDifference(d)).join("\n")}`,
    actual,
    expected,
    operator: "assertMatches",
  });
}

/** The collect sinks of the run under way on each registry, by name. */
const collecting = new WeakMap<Registry, Map<string, MemorySink>>();

/**
 * Adds the test components to `registry` (by default a fresh built-in one)
 * and returns it: source `memory` (`{items?, batch?}`) and sink `collect`
 * (`{name?}`), whose items `runTestFlow` returns under its name. Register
 * your own stages on the result to test them among the built-in ones.
 */
export function testRegistry(registry: Registry = builtinRegistry()): Registry {
  return registry
    .source({
      kind: "memory",
      summary: "items from a list (tests)",
      schema: memorySchema,
      create: (config: z.output<typeof memorySchema>) =>
        memorySource((config.items ?? []) as RawItem[], { batch: config.batch }),
    })
    .sink({
      kind: "collect",
      summary: "keeps items in memory (tests)",
      schema: collectSchema,
      create: (config: z.output<typeof collectSchema>, env) => {
        const sinks = collecting.get(env.registry);
        if (!sinks) throw new Error("the collect sink only works in a flow run by runTestFlow");
        if (sinks.has(config.name)) {
          throw new Error(`two collect sinks are named "${config.name}": give each its own name`);
        }
        const sink = new MemorySink();
        sinks.set(config.name, sink);
        return sink;
      },
    });
}

/** How long runTestFlow lets a flow run by default. */
const DEFAULT_TIMEOUT_MS = 60_000;

/** How `runTestFlow` runs a flow; every field is optional. */
export interface TestFlowOptions {
  /** Default: `testRegistry()`. One that lacks `memory` and `collect` gets them added. */
  registry?: Registry;
  /**
   * Items for the flow's `memory` sources that list none: one list for all
   * of them, or a list per source name.
   */
  items?: readonly RawItem[] | Record<string, readonly RawItem[]>;
  /** Redis for a `durability: redis` flow, instead of the flow's own `redis:`. */
  redis?: string;
  /** Where local outputs go (JSONL sinks); default a temporary directory, removed afterwards. */
  outDir?: string;
  /** `${VAR}` values for a YAML flow; default none, so a test never depends on its environment. */
  env?: Record<string, string | undefined>;
  /** Backoff base of retries in ms; default 1, so a failing batch is split without waiting. */
  backoffBase?: number;
  /** Directory relative paths in a YAML flow (step modules, input files) resolve against; default the current one. */
  baseDir?: string;
  /** Stops the flow gracefully, e.g. one whose sources poll (`every:`). */
  signal?: AbortSignal;
  /**
   * Ms the flow may take: past it, the flow is killed and runTestFlow
   * rejects, saying how many items were in flight, so a stage that never
   * returns fails its test rather than hanging it. Default 60,000; 0 for none.
   */
  timeout?: number;
}

/** What a flow run by `runTestFlow` did. */
export interface TestFlowResult {
  /** The run's report, as `runFlow` returns it. */
  report: FlowReport;
  /** What each `collect` sink holds at the end, by its name. */
  published: Map<string, Envelope<RawItem>[]>;
  /** Every dead letter, oldest first (from Redis for a durable flow). */
  deadLetters: DeadLetter[];
  /** What the flow logged. */
  logs: string[];
}

/**
 * Runs a flow (a checked Flow, or YAML text) to its end and returns what
 * reached each `collect` sink and every dead letter. Its outputs go to
 * `outDir`. A durable flow runs under a key prefix of its own, so running
 * it again against the same Redis starts afresh; its dead letters are read
 * back from Redis. One run at a time per registry.
 */
export async function runTestFlow(
  flowOrYaml: Flow | string,
  opts: TestFlowOptions = {},
): Promise<TestFlowResult> {
  const registry = opts.registry ?? testRegistry();
  if (!registry.sources.has("memory") || !registry.sinks.has("collect")) testRegistry(registry);
  if (collecting.has(registry)) throw new Error("runTestFlow is already running on this registry");
  // Claimed before the first await: two runs started together on one registry both passed the
  // check, and one got the other's sinks.
  const sinks = new Map<string, MemorySink>();
  collecting.set(registry, sinks);
  let flow: Flow, outDir: string;
  try {
    const given = typeof flowOrYaml === "string"
      ? await parseFlowWithSteps(
        withRedis(flowOrYaml, opts.redis),
        "test flow",
        registry,
        opts.env ?? {},
        { baseDir: opts.baseDir ?? Deno.cwd() },
      )
      : flowOrYaml;
    outDir = opts.outDir ?? await Deno.makeTempDir({ prefix: "millrace-test-" });
    flow = {
      ...given,
      outDir,
      sources: given.sources.map((s) => withItems(s, opts.items)),
      redis: opts.redis ?? given.redis,
      durable: {
        ...given.durable,
        prefix: `${given.durable.prefix}-test-${crypto.randomUUID().slice(0, 8)}`,
      },
    };
    if (opts.items !== undefined && !flow.sources.some((s, i) => s !== given.sources[i])) {
      const kinds = given.sources.map((s) => `${s.name} (${s.kind})`).join(", ");
      throw new Error(
        `runTestFlow: items were given, but flow ${given.name} has no memory source without ` +
          `items of its own to emit them (its sources: ${kinds}); give the test's flow a ` +
          "source { kind: memory }, or make one with testableFlow",
      );
    }
    if (flow.durability === "redis" && !flow.redis) {
      throw new Error(`flow ${flow.name} is durable: give runTestFlow a Redis URL (redis)`);
    }
  } catch (error) {
    collecting.delete(registry);
    throw error;
  }
  const log = memoryLogger();
  const memoryDeadLetters = new MemoryDeadLetters();
  let ended = false;
  try {
    const running = await startFlow(flow, {
      registry,
      log,
      deadLetters: memoryDeadLetters,
      backoffBase: opts.backoffBase ?? 1,
    });
    const stop = () => running.stop();
    opts.signal?.addEventListener("abort", stop, { once: true });
    if (opts.signal?.aborted) stop();
    const timeout = opts.timeout ?? DEFAULT_TIMEOUT_MS;
    let timedOut = false;
    const timer = timeout > 0
      ? setTimeout(() => {
        timedOut = true;
        running.stop();
        running.kill();
      }, timeout)
      : undefined;
    let report: FlowReport;
    try {
      report = await running.done;
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", stop);
    }
    if (timedOut) {
      const n = report.inFlight;
      throw new Error(
        `runTestFlow: flow ${flow.name} did not end within ${timeout} ms (timeout) and was killed ` +
          `with ${n} ${n === 1 ? "item" : "items"} in flight${heldBy(report)}: does a stage ` +
          "never return, or a source never end?",
      );
    }
    const deadLetters = flow.durability === "redis"
      ? await durableDeadLetters(flow)
      : memoryDeadLetters.entries;
    const published = new Map([...sinks].map(([name, sink]) => [name, sink.items]));
    ended = true;
    return { report, published, deadLetters, logs: log.lines };
  } finally {
    collecting.delete(registry);
    // The run's keys are its own (a prefix of their own): nothing is left behind, whether it
    // ended, timed out or failed to start (forced: a killed run's consumers look alive). A run
    // that failed keeps its own error, not the reset's.
    if (flow.durability === "redis") {
      const reset = resetCommand(flow, { force: true });
      await (ended ? reset : reset.catch(() => {}));
    }
    if (opts.outDir === undefined) await Deno.remove(outDir, { recursive: true });
  }
}

/**
 * ` (held by stage a: 2 items, 1 waiting between stages)`: where a killed
 * run's report shows its items in flight.
 */
function heldBy(report: FlowReport): string {
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  const items = (n: number) => `${n} ${n === 1 ? "item" : "items"}`;
  let inStages = 0;
  const held = report.stages.flatMap((s) => {
    const n = s.received - s.emitted - sum(s.dropped) - sum(s.rejected) - s.failed;
    if (n <= 0) return [];
    inStages += n;
    return [`stage ${s.id}: ${items(n)}`];
  });
  const between = report.inFlight - inStages;
  if (between > 0) held.push(`${between} waiting between stages`);
  return held.length > 0 ? ` (held by ${held.join(", ")})` : "";
}

/**
 * `flow` made testable without any service: each source becomes a memory
 * source of the same name that emits its list once (a list of `items` goes
 * to the first source), each sink of every publish stage becomes a collect
 * sink named as messages name it (`jsonl`, then `jsonl#2`, see
 * {@link testSinkNames}), and the edges are in memory, durable or not.
 */
export function testableFlow(
  flow: Flow,
  items: readonly RawItem[] | Record<string, readonly RawItem[]>,
): Flow {
  const names = testSinkNames(flow);
  let n = 0;
  return {
    ...flow,
    durability: "memory",
    sources: flow.sources.map((s, i) => ({
      name: s.name,
      kind: "memory",
      priority: s.priority,
      config: {
        batch: 100,
        items: Array.isArray(items)
          ? (i === 0 ? items : [])
          : (items as Record<string, readonly RawItem[]>)[s.name] ?? [],
      },
    })),
    pipeline: flow.pipeline.map((stage) => {
      if (stage.kind !== "publish") return stage;
      const config = stage.config as PublishConfig;
      const sinks = config.sinks.map((sink) => ({
        ...sink,
        kind: "collect",
        config: { name: names[n++] },
      }));
      return { ...stage, config: { ...config, sinks } };
    }),
  };
}

/** The names of a flow's sinks, over all its publish stages: the kind, then kind#2, kind#3. */
export function testSinkNames(flow: Flow): string[] {
  return sinkNames(
    flow.pipeline.filter((s) => s.kind === "publish")
      .flatMap((s) => (s.config as PublishConfig).sinks.map((sink) => sink.kind)),
  );
}

/**
 * The flow's YAML with `redis:` set to `url` when it has none, so a durable
 * flow can leave its Redis to the test. Added at the end: the lines of
 * what the test wrote, named in errors, stay where they were.
 */
function withRedis(yaml: string, url: string | undefined): string {
  if (url === undefined) return yaml;
  const doc = parseDocument(yaml);
  if (!isMap(doc.contents) || doc.has("redis")) return yaml;
  // Appended as text: printing the document again dropped blank lines and reflowed { } maps,
  // and every line an error named moved.
  if (!doc.contents.flow && doc.errors.length === 0) {
    return yaml.replace(/\s*$/, "\n") + `redis: ${JSON.stringify(url)}\n`;
  }
  doc.set("redis", url);
  return doc.toString();
}

function withItems(
  source: Flow["sources"][number],
  items: TestFlowOptions["items"],
): Flow["sources"][number] {
  const config = source.config as z.output<typeof memorySchema>;
  if (source.kind !== "memory" || config.items !== undefined || items === undefined) return source;
  const list = Array.isArray(items)
    ? items
    : (items as Record<string, readonly RawItem[]>)[source.name] ?? [];
  return { ...source, config: { ...config, items: list } };
}

async function durableDeadLetters(flow: Flow): Promise<DeadLetter[]> {
  const redis = await connectRedis(flow.redis!);
  try {
    const entries = await dlqList(redis, flowKeys(flow.name, flow.durable.prefix));
    return entries.map((e) => {
      if (e.item === null) throw new Error(`dead letter ${e.id} is malformed: ${e.problem}`);
      return { stage: e.stage, reason: e.reason, attempts: e.attempts, item: e.item };
    });
  } finally {
    await closeRedis(redis);
  }
}
