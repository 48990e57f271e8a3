// Specs are stored side by side whatever their config type, and a config is
// only ever handed back to the spec that parsed it: `any` is the honest type
// for that heterogeneous map.
// deno-lint-ignore-file no-explicit-any
import type { Redis } from "ioredis";
import type { z } from "zod";
import type { FlowKeys } from "./redis/keys.ts";
import type { HttpClient, HttpFactory } from "./http.ts";
import type { Actor } from "./actor.ts";
import type { Fact, RawItem } from "./item.ts";
import type { Logger } from "./log.ts";
import type { Sink } from "./sink.ts";
import type { Source } from "./source.ts";
import type { WindowOptions } from "./window.ts";

/** What a component may know of the flow that builds it. */
export interface BuildEnv {
  /** The flow name. */
  readonly flow: string;
  /**
   * A millrace command for this flow as its person types it (`dlq replay
   * …` with the flow file), for messages that say what to run; durable only.
   */
  readonly command?: (args: string) => string;
  /** Directory of the flow file: relative paths in its config resolve against it. */
  readonly baseDir: string;
  /** Directory for local outputs (JSONL sinks, dead letters, caches). */
  readonly outDir: string;
  /** The run's logger. */
  readonly log: Logger;
  /** The registry the flow is built from (the Publisher finds its sinks in it). */
  readonly registry: Registry;
  /**
   * Present when the flow is durable: a shared (non-blocking) connection
   * and the flow's key layout, so a component can keep its state in Redis
   * (dedupe keys, vector cache) and share it with every other process.
   */
  readonly durable?: { readonly redis: Redis; readonly keys: FlowKeys };
  /** The run's one HTTP client, for sources that read the web (see engine/http.ts). */
  readonly http?: HttpClient;
  /**
   * A source's env: whether it is polled again (`every` or `cron`), so
   * what it leaves for a later poll can be told from what it never reads.
   */
  readonly polled?: boolean;
  /** A source's env: its `every` in ms, when it has one. */
  readonly every?: number;
  /** A stage's env: its id (a sink's: its publish stage's), as runs of the flow call it. */
  readonly stage?: string;
  /**
   * What the flow's embed stage makes, filled in when that stage opens.
   * Stages open in flow order, so a sink opening after it can check its
   * table or collection against the vector length at start rather than at
   * the first write.
   */
  readonly vectors?: VectorShape;
  /** Clock of remote API clients' rate limits and retry waits (absent: real): tests fake it. */
  readonly clock?: {
    now(): number;
    sleep(ms: number, signal?: AbortSignal): Promise<void>;
  };
}

/** What the embed stage makes, handed to the stages after it. */
export interface VectorShape {
  /** Vector length, once known (an OpenAI model without `dimensions` tells at its first reply). */
  dimensions?: number;
  /** The id of the stage that makes them. */
  stage?: string;
}

/** Shared by every kind of component: a name, a line of help, and the schema of its config. */
export interface Spec<C> {
  /** The name a flow file uses, e.g. `rss` or `dedupe`; unique per component type. */
  readonly kind: string;
  /** One line for `check` output and errors that list kinds. */
  readonly summary: string;
  /**
   * Validates (and may transform) the component's block of the flow file. A
   * function when the schema depends on what else is registered (the
   * Publisher's list of sinks).
   */
  readonly schema: z.ZodType<C> | ((registry: Registry) => z.ZodType<C>);
}

/** A kind of stage: how to check its config and make its actor. */
export interface StageSpec<C = any> extends Spec<C> {
  /** Facts the stage requires of its input; may depend on config (a Qdrant sink needs vectors). */
  needs?(config: C): Fact[];
  /** Facts its output carries; may depend on config (a step module says its own). */
  readonly adds?: Fact[] | ((config: C) => Fact[]);
  /** The stage's id when the flow gives none and the kind does not say enough (a step's module). */
  defaultId?(config: C): string;
  /** A batch window in front of `handle` (the Embedder's and Publisher's bulk calls). */
  window?(config: C): WindowOptions | undefined;
  /**
   * The length of the vectors the stage gives its items, where its config
   * says it (an embed stage's `dimensions`): a later sink that names its own
   * is checked against it when the flow is.
   */
  vectorLength?(config: C): number | undefined;
  /** Makes the actor from its checked config; may be async. */
  create(config: C, env: BuildEnv): Actor<RawItem, RawItem> | Promise<Actor<RawItem, RawItem>>;
  /**
   * Whether the stage, with this config, may run on a pool of Web Workers
   * (`workers: N`): its work is CPU-bound and keeps no state from one batch
   * to the next, so N copies built from kind and config in N threads do
   * what one would. True, or why not.
   */
  workers?(config: C): true | string;
  /**
   * The stage's actors leave the items they are given as they are (they
   * copy what they change, to the bottom of it) and give each output its own
   * id: the built-ins, whose tests check it. A stage that does not say so
   * (a step module, a stage registered in code) is handed copies of its
   * items on every try and held to account item by item (engine/accounted.ts);
   * saying so wrongly lets a retry see what an earlier try changed.
   */
  readonly leavesInputs?: true;
  /**
   * What the ids the stage gives and the state it keeps are keyed by, in
   * words (a Deduper's key fields): a durable flow records it at start, and
   * a start whose answer differs warns that what the stage remembers was
   * keyed otherwise.
   */
  keyedBy?(config: C): string;
}

/** A kind of source: how to check its config and make it. */
export interface SourceSpec<C = any> extends Spec<C> {
  /**
   * Imports what checking this kind's config needs, for a kind whose
   * packages load lazily (html: linkedom, which tries a `follow` selector).
   * A flow file's loader awaits it, for each kind the file names, before
   * the check.
   */
  prepare?(): Promise<void>;
  /**
   * The config field naming local files the source reads (one path or a
   * list, relative to the flow file), for a kind that reads them: loading a
   * flow file checks that they exist and can be read, at the field's line.
   * Absent, no field is taken for a path (a custom source's `path` may be
   * an API's).
   */
  readonly files?: string;
  /** Makes the source from its checked config. */
  create(config: C, env: BuildEnv): Source | Promise<Source>;
}

/** A kind of sink, used inside a `publish` stage. */
export interface SinkSpec<C = any> extends Spec<C> {
  /** Facts items must carry to reach it (`vector` for Qdrant): checked when the flow loads. */
  readonly needs?: Fact[];
  /** Makes the sink from its checked config. */
  create(config: C, env: BuildEnv): Sink | Promise<Sink>;
}

/**
 * Finds components by the name a flow file uses. Built-ins register on
 * import of builtins.ts; users register their own the same way, so a
 * custom stage is as much at home in YAML as a built-in one.
 */
export class Registry {
  /** Stage kinds by name. */
  readonly stages: Map<string, StageSpec> = new Map();
  /** Source kinds by name. */
  readonly sources: Map<string, SourceSpec> = new Map();
  /** Sink kinds by name. */
  readonly sinks: Map<string, SinkSpec> = new Map();
  /**
   * Makes the run's HTTP client from the flow's `http:` block; absent (a
   * bare Registry), sources fetch directly, with no per-host limits.
   */
  http?: HttpFactory;
  /**
   * The module a stage worker runs (engine/stage_host.ts serves it), and the
   * stage specs it knows: those registered when `workerModule` was set.
   * A stage registered later, in code, is not in the worker's registry.
   */
  worker?: { readonly module: URL; readonly stages: ReadonlySet<StageSpec> };

  /** Sets the factory of the run's HTTP client (builtins.ts sets the polite one). */
  httpClient(factory: HttpFactory): this {
    this.http = factory;
    return this;
  }

  /** Sets the module stage workers run; it must build the stages registered so far. */
  workerModule(module: URL): this {
    this.worker = { module, stages: new Set(this.stages.values()) };
    return this;
  }

  /** Registers a stage kind; a kind already registered is an error. Returns the registry, to chain. */
  stage<C>(spec: StageSpec<C>): this {
    return this.#add(this.stages, spec as StageSpec, "stage");
  }
  /** Registers a source kind, as `stage` does. */
  source<C>(spec: SourceSpec<C>): this {
    return this.#add(this.sources, spec as SourceSpec, "source");
  }
  /** Registers a sink kind, as `stage` does; a `publish` stage finds it by its kind. */
  sink<C>(spec: SinkSpec<C>): this {
    return this.#add(this.sinks, spec as SinkSpec, "sink");
  }

  #add<S extends { kind: string }>(map: Map<string, S>, spec: S, what: string): this {
    if (!/^[a-z][a-z0-9-]*$/.test(spec.kind)) {
      throw new Error(
        `a ${what} kind must be lower-case letters, digits and dashes: "${spec.kind}"`,
      );
    }
    if (map.has(spec.kind)) throw new Error(`a ${what} named "${spec.kind}" is already registered`);
    map.set(spec.kind, spec);
    return this;
  }
}

/** The schema of a spec, resolved against the registry it is used with. */
export function schemaOf<C>(
  spec: { schema: z.ZodType<C> | ((r: Registry) => z.ZodType<C>) },
  registry: Registry,
): z.ZodType<C> {
  return typeof spec.schema === "function" ? spec.schema(registry) : spec.schema;
}

/** Why a stage cannot run on workers (`workers: N`), or undefined when it can. */
export function workersRefused(
  registry: Registry,
  spec: StageSpec,
  kind: string,
  config: unknown,
): string | undefined {
  if (!registry.worker?.stages.has(spec)) {
    return `stage ${kind} was registered in code, and a worker builds stages only from the ` +
      "built-in registry: remove workers, or run it on the main thread";
  }
  const can = spec.workers?.(config) ?? `stage ${kind} keeps state from batch to batch or ` +
      "waits on I/O, so it runs on the main thread only: remove workers " +
      "(CPU-bound stages that can: validate, enrich, embed with provider local)";
  return can === true ? undefined : can;
}
