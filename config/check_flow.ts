import { resolve } from "node:path";
import type { Flow, Locate, SourceEntry, StageEntry } from "../engine/flow.ts";
import type { Fact } from "../engine/item.ts";
import { type Registry, schemaOf, type StageSpec, workersRefused } from "../engine/registry.ts";
import { type CheckContext, withCheckContext } from "./check_context.ts";
import { FlowError, formatPath, type Problem } from "../engine/flow_error.ts";
import {
  flowSchema,
  SOURCE_COMMON_KEYS,
  sourceCommonSchema,
  STAGE_COMMON_KEYS,
  STAGE_ID,
  STAGE_ID_RULE,
  stageCommonSchema,
} from "./flow_schema.ts";
import { nearest } from "./suggest.ts";
import { fileInTheWay } from "../adapters/sinks/_file_in_the_way.ts";
import { errorMessage, fileFrame } from "../engine/errors.ts";
import { check, type Checked, MERGE_KEY, type PathProblem, show } from "./zod_issues.ts";
import type { StepModules } from "./step_modules.ts";

export type { Locate } from "../engine/flow.ts";

export interface CheckOptions {
  /** Names the flow in errors: the file path, or e.g. `flow "demo"`. */
  label?: string;
  /** Directory relative paths in component configs resolve against. */
  baseDir: string;
  /** Finds fields in the source text; absent for flows built in code. */
  locate?: Locate;
  /** Problems found before validation (unset environment variables), placed the same way. */
  earlier?: PathProblem[];
  /** The flow is a flow file: durations must carry a unit. */
  fromFile?: boolean;
  /** The flow's step modules, imported beforehand (config/step_modules.ts). */
  steps?: StepModules;
  /**
   * Unset variables inside the configs of sources and stages that the caller
   * will not build (`status`, `dlq` and `reset` read a flow's Redis keys,
   * which come from its name and ids): no problem, and such a config is
   * taken as written, so an operator needs none of the flow's secrets to look.
   */
  waived?: PathProblem[];
}

/**
 * The one place a flow is checked, whether it came from YAML or from code:
 * the top-level schema, every source and stage against its spec's schema,
 * unique stage ids, and the order of stages against the facts they need.
 * Reports every problem at once rather than the first.
 */
export function checkFlow(input: unknown, registry: Registry, opts: CheckOptions): Flow {
  const earlier = opts.earlier ?? [];
  const waived = opts.waived ?? [];
  const found: PathProblem[] = [];
  const top = withCheckContext(
    { fromFile: opts.fromFile ?? false },
    () => check(flowSchema, input, []),
  );
  if (!top.ok) found.push(...top.problems.map(explainRoot));

  const raw = isMap(input) ? input : {};
  const context: CheckContext = {
    fromFile: opts.fromFile ?? false,
    durability: top.ok ? top.value.durability : undefined,
    ...(top.ok ? { outDir: resolve(top.value.output ?? `out/${top.value.name}`) } : {}),
    ...(opts.steps ? { steps: opts.steps } : {}),
  };
  const { sources, stages } = withCheckContext(context, () => ({
    sources: isMap(raw.sources)
      ? Object.entries(raw.sources).map(([name, block]) =>
        checkSource(name, block, registry, found, waived)
      )
      : [],
    stages: Array.isArray(raw.pipeline)
      ? raw.pipeline.map((element, i) => {
        const stage = checkStage(i, element, registry, found, waived);
        // A stage that gives vectors says their length, or that it is not known till they come.
        if (stage?.entry && stage.spec?.vectorLength) {
          context.vectorLength = stage.spec.vectorLength(stage.entry.config);
        }
        return stage;
      })
      : [],
  }));
  const ids = assignIds(stages, found);
  // A config taken as written cannot say what its stage needs or adds.
  if (stages.every((s) => s?.spec) && waived.length === 0) {
    checkOrder(stages as CheckedStage[], registry, found);
  }

  // A memory flow's dead letters go to a file of its output folder, whatever its sinks.
  const inTheWay = top.ok && top.value.durability === "memory" && context.outDir
    ? fileInTheWay(context.outDir)
    : undefined;
  if (top.ok && inTheWay !== undefined) {
    const output = top.value.output ?? `out/${top.value.name}`;
    found.push({
      path: [top.value.output !== undefined ? "output" : "name"],
      at: "value",
      message: `${output} cannot be made: ${inTheWay} is a file, not a folder; ` +
        "set output: to a folder",
    });
  }

  if (top.ok && top.value.durability === "redis" && top.value.redis === undefined) {
    found.push({
      path: ["durability"],
      at: "value",
      message: "durability is redis but no redis URL is given; " +
        "add redis: ${REDIS_URL:-redis://127.0.0.1:6379}",
    });
  }

  // A field whose ${VAR} could not be filled would only fail again, less clearly.
  const hidden = (p: PathProblem) =>
    earlier.some((e) => startsWith(p.path, e.path)) || isWaived(p, waived);
  const problems = [...earlier, ...found.filter((p) => !hidden(p))];
  if (problems.length > 0 || !top.ok) {
    throw new FlowError(opts.label, problems.map((p) => place(p, opts.locate)));
  }

  const flow = top.value;
  const pipeline = stages.map((s, i): StageEntry => ({
    ...(s as CheckedStage).entry!,
    id: ids[i],
  }));
  return {
    name: flow.name,
    durability: flow.durability,
    ...(flow.redis !== undefined ? { redis: flow.redis } : {}),
    outDir: resolve(flow.output ?? `out/${flow.name}`),
    baseDir: resolve(opts.baseDir),
    ...(opts.locate && opts.label ? { file: opts.label, locate: opts.locate } : {}),
    sources: sources as SourceEntry[],
    pipeline,
    deadLetters: flow.deadLetters,
    capacity: flow.capacity,
    durable: flow.durable,
    http: flow.http,
  };
}

interface CheckedStage {
  spec?: StageSpec;
  /** The id it gets unless the flow gives one: its kind, or what its spec says (a step's module). */
  base: string;
  /** Undefined when the stage's config did not pass its schema. */
  entry?: StageEntry;
  explicitId: boolean;
  kind: string;
  path: PropertyKey[];
}

function checkSource(
  name: string,
  block: unknown,
  registry: Registry,
  found: PathProblem[],
  waived: PathProblem[],
): SourceEntry | undefined {
  const path = ["sources", name];
  // A source's name prints in lines, tables, metrics and Redis keys, as a stage id does.
  if (!STAGE_ID.test(name)) {
    found.push({
      path,
      at: "key",
      message: `a source name is ${STAGE_ID_RULE} (e.g. hn-top), got ${JSON.stringify(name)}`,
    });
    return undefined;
  }
  if (isMap(block) && "<<" in block) {
    // A merge key (`h: { <<: *g, seed: 3 }`): its fields are not read, and "kind is missing"
    // said nothing of why.
    found.push({ path: [...path, "<<"], at: "key", message: MERGE_KEY });
    return undefined;
  }
  const kinds = [...registry.sources.keys()];
  const common = check(sourceCommonSchema(kinds), block, path);
  if (!common.ok) {
    found.push(...common.problems);
    if (!isMap(block) || typeof block.kind !== "string") return undefined;
  }
  const kind = (block as { kind: string }).kind;
  const spec = registry.sources.get(kind);
  if (!spec) {
    found.push({
      path: [...path, "kind"],
      at: "value",
      message: `unknown source kind ${JSON.stringify(kind)}${kindHint(kind, kinds)}`,
    });
    return undefined;
  }
  const rest = omit(block as Record<string, unknown>, SOURCE_COMMON_KEYS);
  const config = asWritten(
    check(schemaOf(spec, registry), rest, path, SOURCE_COMMON_KEYS),
    rest,
    waived,
  );
  if (!config.ok) found.push(...config.problems);
  if (!common.ok || !config.ok) return undefined;
  const { every, cron, tz, jitter, priority, perHost } = common.value;
  return {
    name,
    kind,
    ...(every !== undefined ? { every } : {}),
    ...(cron !== undefined ? { cron, tz: tz ?? "UTC" } : {}),
    ...(jitter ? { jitter } : {}),
    priority,
    ...(perHost !== undefined ? { perHost } : {}),
    config: config.value,
  };
}

function checkStage(
  i: number,
  element: unknown,
  registry: Registry,
  found: PathProblem[],
  waived: PathProblem[],
): CheckedStage | undefined {
  const at = ["pipeline", i];
  // `- validate` alone is a stage with its defaults.
  const map = typeof element === "string" ? { [element]: null } : element;
  if (!isMap(map) || Object.keys(map).length !== 1) {
    found.push({ path: at, at: "value", message: stageShapeMessage(map) });
    return undefined;
  }
  const [kind, block] = Object.entries(map)[0];
  const path = [...at, kind];
  const kinds = [...registry.stages.keys()];
  const spec = registry.stages.get(kind);
  if (!spec) {
    found.push({
      path,
      at: "key",
      message: `unknown stage kind ${JSON.stringify(kind)}${kindHint(kind, kinds)}`,
    });
    return undefined;
  }
  const given = block ?? {};
  const common = isMap(given)
    ? check(stageCommonSchema, given, path)
    : check(stageCommonSchema, {}, path);
  if (!common.ok) found.push(...common.problems);
  const rest = isMap(given) ? omit(given, STAGE_COMMON_KEYS) : given;
  const config = asWritten(
    check(schemaOf(spec, registry), rest, path, isMap(given) ? STAGE_COMMON_KEYS : []),
    rest,
    waived,
  );
  if (!config.ok) found.push(...config.problems);
  const stage: CheckedStage = { spec, kind, base: kind, path, explicitId: false };
  if (!common.ok || !config.ok) return stage;
  const { concurrency, retries, id, batchTimeout } = common.value;
  const workers = workersOf(common.value.workers);
  stage.explicitId = id !== undefined;
  stage.base = spec.defaultId?.(config.value) ?? kind;
  stage.entry = {
    id: id ?? stage.base,
    kind,
    concurrency,
    retries,
    ...(workers ? { workers } : {}),
    ...(batchTimeout !== undefined ? { batchTimeout } : {}),
    config: config.value,
  };
  const refused = workers ? workersRefused(registry, spec, kind, config.value) : undefined;
  if (refused) found.push({ path: [...path, "workers"], at: "value", message: refused });
  // A worker runs its batches one after another and cannot be stopped mid-batch: a try given up
  // on held it, and the retries and halves queued behind it timed out in turn, good items too.
  if (workers && batchTimeout) {
    found.push({
      path: [...path, "batchTimeout"],
      at: "key",
      message: "batchTimeout does not apply to a stage on workers, which cannot be stopped " +
        "mid-batch: remove batchTimeout, or workers",
    });
  }
  return stage;
}

/** A config whose every problem is a waived variable's (CheckOptions.waived), as written. */
function asWritten<T>(result: Checked<T>, written: unknown, waived: PathProblem[]): Checked<T> {
  if (result.ok || !result.problems.every((p) => isWaived(p, waived))) return result;
  return { ok: true, value: written as T };
}

function isWaived(p: PathProblem, waived: PathProblem[]): boolean {
  // A field's own name is no variable's doing: `ulr: ${DATABASE_URL}` is still an unknown field.
  return p.at !== "key" && waived.some((w) => startsWith(p.path, w.path));
}

/** `auto` is one worker per core but the main thread's; 0 on one core. */
function workersOf(workers: number | "auto" | undefined): number {
  if (workers !== "auto") return workers ?? 0;
  return Math.max(0, (navigator.hardwareConcurrency ?? 1) - 1);
}

/** Explicit ids as given; otherwise the kind, then kind#2, kind#3 for its later stages. */
function assignIds(stages: (CheckedStage | undefined)[], found: PathProblem[]): string[] {
  const seenKinds = new Map<string, number>();
  const taken = new Map<string, string>();
  return stages.map((stage) => {
    if (!stage) return "";
    const n = (seenKinds.get(stage.base) ?? 0) + 1;
    seenKinds.set(stage.base, n);
    if (!stage.entry) return "";
    const id = stage.explicitId ? stage.entry.id : n === 1 ? stage.base : `${stage.base}#${n}`;
    const first = taken.get(id);
    if (first !== undefined) {
      found.push({
        path: stage.explicitId ? [...stage.path, "id"] : stage.path,
        at: stage.explicitId ? "value" : "key",
        message: `stage id ${JSON.stringify(id)} is already used by ${first}; ` +
          "stage ids must be unique, so change one of them",
      });
    } else taken.set(id, formatPath(stage.path));
    return id;
  });
}

type AddsFn = (config: unknown) => Iterable<Fact>;

/**
 * Walks the stages in order: each stage's needs must be added by a stage
 * before it. A step module's `needs` or `adds` that throws is its problem,
 * said at the stage with where in the module it threw, not a stack trace
 * that ended `check` before the files after it.
 */
function checkOrder(stages: CheckedStage[], registry: Registry, found: PathProblem[]): void {
  const facts = new Set<Fact>();
  const asked = <T>(stage: CheckedStage, what: string, ask: () => T): T | undefined => {
    try {
      return ask();
    } catch (error) {
      const at = error instanceof Error ? fileFrame(error) : undefined;
      found.push({
        path: stage.path,
        at: "key",
        message: `its ${what}(options) threw: ${errorMessage(error)}${at ? ` (at ${at})` : ""}`,
      });
      return undefined;
    }
  };
  for (const stage of stages) {
    const spec = stage.spec as StageSpec;
    const entry = stage.entry;
    if (entry && spec.needs) {
      for (const fact of asked(stage, "needs", () => [...spec.needs!(entry.config)]) ?? []) {
        if (!facts.has(fact)) {
          found.push({
            path: stage.path,
            at: "key",
            // A step by its module's kind (`tag`), not the word `step`.
            message: needsMessage(stage.base, fact, registry),
          });
        }
      }
    }
    const adds = typeof spec.adds === "function"
      ? (entry ? asked(stage, "adds", () => [...(spec.adds as AddsFn)(entry.config)]) : [])
      : spec.adds ?? [];
    for (const fact of adds ?? []) facts.add(fact);
  }
}

function needsMessage(kind: string, fact: Fact, registry: Registry): string {
  const providers = [...registry.stages.values()]
    .filter((s) => Array.isArray(s.adds) && s.adds.includes(fact))
    .map((s) => s.kind);
  const by = providers.length > 0
    ? `(provided by: ${providers.join(", ")})`
    : "(no registered stage provides it)";
  return `${kind} needs ${fact} items; add a stage that provides it before it ${by}`;
}

function stageShapeMessage(value: unknown): string {
  const example = "- dedupe: { key: [url] }";
  if (isMap(value)) {
    const keys = Object.keys(value);
    const head = `a stage is a map with one key, its kind (e.g. ${example})`;
    if (keys.length === 0) return `${head}; got an empty map`;
    return `${head}, but this one has ${keys.length}: ${keys.join(", ")}; ` +
      "indent the stage's fields under its kind";
  }
  return `expected a stage such as ${example}, got ${show(value)}`;
}

function kindHint(kind: string, kinds: string[]): string {
  const best = nearest(kind, kinds);
  if (best !== undefined) return `; did you mean ${JSON.stringify(best)}?`;
  return kinds.length > 0 ? `; registered kinds: ${kinds.join(", ")}` : "; none are registered";
}

/** The root of a flow is special: say what a flow file holds, not just "a map". */
function explainRoot(p: PathProblem): PathProblem {
  if (p.path.length > 0 || !p.message.startsWith("expected a map")) return p;
  const got = p.message.replace(/^expected a map, /, "");
  return { ...p, message: `a flow is a map with name, sources and pipeline; ${got}` };
}

function place(p: PathProblem, locate?: Locate): Problem {
  const pos = p.pos ?? locate?.(p.path, p.at);
  return { line: pos?.line, column: pos?.column, path: formatPath(p.path), message: p.message };
}

function isMap(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function omit(obj: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => !keys.includes(k)));
}

function startsWith(path: readonly PropertyKey[], prefix: readonly PropertyKey[]): boolean {
  return prefix.length <= path.length && prefix.every((seg, i) => String(seg) === String(path[i]));
}
