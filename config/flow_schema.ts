import { z } from "zod";
import { httpSchema, sourcePerHostSchema } from "../adapters/http/http_config.ts";
import { bytes, duration } from "./units.ts";
import { show } from "./zod_issues.ts";
import { redisUrl } from "./redis_url.ts";
import { parseCron } from "../engine/schedule.ts";

/** Flow names end up in stream keys and directory names, so they stay plain. */
export const FLOW_NAME = /^[a-z0-9_-]+$/;

/** A whole number above zero, with a message that says so. */
export const positiveInt = () =>
  z.number({ error: (iss) => `expected a positive integer, got ${show(iss.input)}` })
    .int({ error: (iss) => `expected a positive integer, got ${show(iss.input)}` })
    .positive({ error: (iss) => `expected a positive integer, got ${show(iss.input)}` });

/** A whole number, zero or more. */
export const countInt = () =>
  z.number({ error: (iss) => `expected zero or a positive integer, got ${show(iss.input)}` })
    .int({ error: (iss) => `expected zero or a positive integer, got ${show(iss.input)}` })
    .min(0, { error: (iss) => `expected zero or a positive integer, got ${show(iss.input)}` });

/**
 * The top level of a flow file. `sources` and `pipeline` are only shaped
 * here: each block is checked against its component's own schema by
 * check_flow.ts, which knows the registry.
 */
export const flowSchema = z.strictObject({
  name: z.string()
    .regex(FLOW_NAME, {
      error: (iss) =>
        `expected lower-case letters, digits, "_" and "-" (e.g. trends), got ${show(iss.input)}`,
    })
    .describe("Name of the flow: lower-case letters, digits, _ and -. Required."),
  durability: z.enum(["memory", "redis"]).default("memory")
    .describe("memory (default): edges are in-memory channels; redis: edges are Redis Streams."),
  redis: redisUrl()
    .optional()
    .describe("Redis URL; required when durability is redis. No default."),
  output: z.string().min(1).optional()
    .describe(
      "Directory for local outputs, relative to the current directory. Default: out/<name>.",
    ),
  // 1024, not more: items waiting in edges are most of what a memory flow's
  // heap holds beyond its stages' own state, and V8 grows the heap to about
  // four times what it holds (README, "Memory"). 4096 peaked about 100 MB
  // higher at 500,000 demo items, at the same speed.
  capacity: positiveInt().default(1024)
    .describe("Items each in-memory edge holds before the sender waits. Default: 1024."),
  sources: z.record(z.string(), z.unknown())
    .refine((s) => Object.keys(s).length > 0, {
      error: "add at least one source, e.g. hn: { kind: json, every: 5m }",
    })
    .describe(
      "Where items come from: name -> { kind, every?, priority?, ...fields }. At least one.",
    ),
  pipeline: z.array(z.unknown())
    .min(1, { error: "add at least one stage, e.g. - validate: { require: [title, url] }" })
    .describe("Stages in order, each a one-key map { kind: config }. At least one."),
  durable: z.strictObject({
    prefix: z.string().regex(/^[A-Za-z0-9_.:-]+$/, {
      error: (iss) => `expected letters, digits, "_", ".", ":" or "-", got ${show(iss.input)}`,
    }).default("millrace")
      .describe("First part of every Redis key of the flow. Default: millrace."),
    entryItems: positiveInt().default(100)
      .describe("Most items one stream entry carries (a micro-batch). Default: 100."),
    entryBytes: bytes().default(1_048_576)
      .describe("Most bytes of JSON one stream entry carries. Default: 1MiB."),
    claimAfter: duration({ positive: true }).default(30_000)
      .describe(
        "An entry pending this long on a silent consumer is claimed by another. Default: 30s.",
      ),
    maxBacklog: positiveInt().default(50_000)
      .describe("Items waiting on an edge before the stage feeding it pauses. Default: 50000."),
    fuse: z.union([z.boolean(), z.literal("all")]).default(false)
      .describe(
        "Run consecutive stages as one step, with one stream after them; a stage with a window (embed, publish) starts a step, which the stages after it join. The demo's five stages become two steps. `all`: the whole pipeline is one step, read in batches of its first window's size, so that stage gets what the stages before it let through. Default: false.",
      ),
  }).prefault({})
    .describe("How durable edges behave (durability: redis only)."),
  deadLetters: z.strictObject({
    maxDeliveries: positiveInt().default(5)
      .describe("Deliveries of an entry before it goes to dead letters. Default: 5."),
  }).default({ maxDeliveries: 5 })
    .describe("Dead-letter policy. Default: { maxDeliveries: 5 }."),
  http: httpSchema,
});

export type FlowInput = z.output<typeof flowSchema>;

/**
 * A flow as `defineFlow` takes it: a flow file's top level, typed (so a
 * misspelt `pipline` does not compile), its sources' and stages' blocks
 * checked at run time against their kinds' schemas, every field as the
 * flow file documents it. Written out rather than derived from flowSchema,
 * so its documentation names no private type; tests/config/define_flow_test.ts
 * fails to compile if the two part.
 */
export interface FlowDefinition {
  /** Required, unless `defineFlow` is given one in `opts.name`. */
  name?: string;
  /** memory (default): in-memory edges; redis: Redis Streams. */
  durability?: "memory" | "redis";
  /** Redis URL, for `durability: redis`. */
  redis?: string;
  /** Directory for local outputs, relative to the working directory; default out/<name>. */
  output?: string;
  /** Items each in-memory edge holds before the sender waits; default 1024. */
  capacity?: number;
  /** name -> { kind, every?, cron?, priority?, ...the kind's fields } */
  sources: Record<string, unknown>;
  /** Stages in order, each a one-key map { kind: config } or a kind's name. */
  pipeline: unknown[];
  /** How durable edges behave (README, "Durable flows"). */
  durable?: {
    /** First part of every Redis key of the flow; default millrace. */
    prefix?: string;
    /** Most items one stream entry carries; default 100. */
    entryItems?: number;
    /** Most bytes of JSON one entry carries: a number, or a size such as `"1MiB"`. */
    entryBytes?: number | string;
    /** How long an entry may sit pending on a silent consumer: ms, or a duration such as `"30s"`. */
    claimAfter?: number | string;
    /** Items waiting on an edge before the stage feeding it pauses; default 50000. */
    maxBacklog?: number;
    /** Run consecutive stages as one step (`"all"`: the whole pipeline); default false. */
    fuse?: boolean | "all";
  };
  /** Dead-letter policy: deliveries of an entry before it goes to dead letters (default 5). */
  deadLetters?: { maxDeliveries?: number };
  /** The run's HTTP client: userAgent, timeouts, per-host limits, allowed addresses. */
  http?: Record<string, unknown>;
}

/** Fields every source block has besides its kind's own; `kind` names the kind. */
export const sourceCommonSchema = (kinds: readonly string[]) =>
  z.looseObject({
    kind: z.string({
      error: (iss) =>
        iss.input === undefined
          ? `required field is missing; say which kind of source this is (${kinds.join(", ")})`
          : `expected a source kind (${kinds.join(", ")}), got ${show(iss.input)}`,
    }).describe("Kind of source, as registered (json, rss, ...). Required."),
    every: duration({ positive: true, long: true }).optional()
      .describe(
        "Poll interval such as 5m, counted from the end of the last read; absent (and no cron) means read once.",
      ),
    cron: z.string({
      error: (iss) => `expected a cron expression such as "*/5 * * * *", got ${show(iss.input)}`,
    }).optional()
      .describe(
        'Poll at the ticks of a cron expression: 5 fields (minute hour day month weekday, e.g. "*/5 * * * *") or 6 with seconds first. Not with every. No default.',
      ),
    tz: z.string({
      error: (iss) => `expected a time zone such as Europe/Berlin, got ${show(iss.input)}`,
    }).optional()
      .describe("IANA time zone the cron expression is read in (cron only). Default: UTC."),
    jitter: duration({ long: true }).optional()
      .describe(
        "Each poll starts a random delay up to this long after it is due, so flows do not hit a host together (every or cron). Default: 0s.",
      ),
    priority: z.enum(["high", "normal"]).default("normal")
      .describe("high sources are read first when several are due. Default: normal."),
    perHost: sourcePerHostSchema,
  }).superRefine((s, ctx) => {
    if (s.cron !== undefined && s.every !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["cron"],
        message: "give every (an interval) or cron (a schedule), not both",
      });
    } else if (s.cron !== undefined) {
      try {
        parseCron(s.cron, s.tz);
      } catch (error) {
        const bad = String((error as Error).message).startsWith("unknown time zone");
        ctx.addIssue({
          code: "custom",
          path: [bad ? "tz" : "cron"],
          message: (error as Error).message,
        });
      }
    }
    if (s.tz !== undefined && s.cron === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["tz"],
        message: 'tz applies to cron only; add cron: "<expression>" or remove tz',
      });
    }
    if (s.jitter !== undefined && s.cron === undefined && s.every === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["jitter"],
        message: "jitter delays polls, and this source is read once; add every or cron, " +
          "or remove jitter",
      });
    }
  });

export const SOURCE_COMMON_KEYS = [
  "kind",
  "every",
  "cron",
  "tz",
  "jitter",
  "priority",
  "perHost",
] as const;

/** What a stage id or a source name may hold: it prints in log lines, tables, metrics and keys. */
export const STAGE_ID = /^[A-Za-z0-9][A-Za-z0-9_.#-]*$/;

/** STAGE_ID in words, for the errors that refuse a name. */
export const STAGE_ID_RULE =
  `letters, digits, "_", ".", "#" and "-", starting with a letter or digit`;

/** Fields every stage block has besides its kind's own. */
export const stageCommonSchema = z.looseObject({
  concurrency: positiveInt().default(1)
    .describe("Batches of this stage handled at once. Default: 1."),
  retries: countInt().default(3)
    .describe(
      "Attempts of a failing batch before it is split to isolate the bad item. Default: 3.",
    ),
  // An id names the stage in log lines, tables, metrics labels and Redis keys: a quote, a space or
  // a newline in it broke the lines and tables it is printed in.
  id: z.string().regex(STAGE_ID, {
    error: (iss) => `expected ${STAGE_ID_RULE} (e.g. embed-titles), got ${show(iss.input)}`,
  }).optional()
    .describe("Unique id of the stage. Default: its kind, or kind#N when the kind repeats."),
  batchTimeout: duration().optional()
    .describe(
      "Longest one try of a batch may take; past it the try's signal is aborted and the batch " +
        "is split down to the item that holds it; 0s for none. Not with workers. Default: 5m " +
        "for a step module or a stage of your own; none for built-ins, whose outside calls " +
        "have timeouts of their own.",
    ),
  workers: z.union([z.int().min(0).max(64), z.literal("auto")]).optional()
    .describe(
      "Web Workers that run this CPU-bound stage's batches on other cores (validate, enrich, " +
        "embed local); auto is cores - 1. Default: 0, on the main thread.",
    ),
});

export const STAGE_COMMON_KEYS = [
  "concurrency",
  "retries",
  "id",
  "batchTimeout",
  "workers",
] as const;
