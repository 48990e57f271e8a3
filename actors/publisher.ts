import { z } from "zod";
import { duration } from "../config/units.ts";
import { didYouMean } from "../config/suggest.ts";
import type { Actor, Outcome, StageContext } from "../engine/actor.ts";
import { errorMessage, isRetryable, PermanentError } from "../engine/errors.ts";
import { type Envelope, type Fact, type RawItem, updatesIn } from "../engine/item.ts";
import { type BuildEnv, type Registry, schemaOf, type StageSpec } from "../engine/registry.ts";
import type { Sink } from "../engine/sink.ts";

/** One sink of a publish stage, as its config was checked against the registry. */
export interface SinkEntry {
  kind: string;
  config: unknown;
  /** The sink's needs, kept here because `needs(config)` has no registry to ask. */
  needs: Fact[];
}

export interface PublishConfig {
  sinks: SinkEntry[];
  batch: { size: number; maxWait: number };
  /** Ms after first sighting at which items are removed from the sinks that can; none when unset. */
  retention?: number;
  /** Ms between retention sweeps. */
  retentionEvery: number;
}

const EXAMPLE = "{ jsonl: { path: items.jsonl } }";

/**
 * One list element: a map of one sink kind to its config. The kind is checked
 * first, by hand, so an unknown one is a single issue that lists the known
 * kinds; the config is then checked by the sink's own schema, in place, so
 * its issues carry their full path ([i, "jsonl", "path"]).
 */
function sinkEntrySchema(registry: Registry): z.ZodType<SinkEntry> {
  const known = [...registry.sinks.keys()];
  const shape: Record<string, z.ZodType> = {};
  for (const [kind, spec] of registry.sinks) {
    // `- stdout:` with nothing after it is YAML null: read it as "all defaults".
    shape[kind] = z.preprocess((v) => v ?? {}, schemaOf(spec, registry)).optional();
  }
  return z.unknown().check((ctx) => {
    const value = ctx.value;
    const issue = (message: string) => {
      ctx.issues.push({ code: "custom", message, input: value, path: [] });
    };
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return issue(`expected a sink as a map of its kind to its config, such as ${EXAMPLE}`);
    }
    const kinds = Object.keys(value);
    if (kinds.length !== 1) {
      return issue(
        `expected a sink as a map of ONE kind to its config, such as ${EXAMPLE}; got ${
          kinds.length === 0 ? "an empty map" : `${kinds.length} kinds: ${kinds.join(", ")}`
        }`,
      );
    }
    if (!registry.sinks.has(kinds[0])) {
      const list = known.length ? `known sinks: ${known.join(", ")}` : "no sinks are registered";
      issue(`unknown sink ${JSON.stringify(kinds[0])} (${list})${didYouMean(kinds[0], known)}`);
    }
  }).pipe(z.object(shape)).transform((parsed) => {
    const [kind, config] = Object.entries(parsed).find(([, c]) => c !== undefined)!;
    return { kind, config, needs: [...(registry.sinks.get(kind)!.needs ?? [])] };
  });
}

const batchSchema = z.strictObject({
  size: z.int().positive().default(500).describe("Items per bulk write; default 500."),
  maxWait: duration().default(1_000)
    .describe("Longest a first item waits for its batch to fill; default 1s."),
}).describe("The batch window in front of each bulk write.");

const DEFAULT_RETENTION_EVERY = 60_000;

/**
 * The list form (`- publish: [ {jsonl: ...} ]`) or the object form with a
 * batch and retention; both end as `{ sinks, batch, retentionEvery }`.
 */
function publishConfigSchema(registry: Registry): z.ZodType<PublishConfig> {
  const sinks = z.array(sinkEntrySchema(registry)).min(1)
    .describe("Where items go, each a map of one sink kind to its config.");
  return z.union([
    sinks.transform((list) => ({
      sinks: list,
      batch: batchSchema.parse({}),
      retentionEvery: DEFAULT_RETENTION_EVERY,
    })),
    z.strictObject({
      sinks,
      batch: batchSchema.prefault({}),
      retention: duration({ long: true }).optional().describe(
        "How long items stay in the sinks after they were first seen (30d); older ones are removed from every sink that can remove (postgres, qdrant, redis-stream; not jsonl nor stdout). Default: kept forever.",
      ),
      retentionEvery: duration({ positive: true }).default(DEFAULT_RETENTION_EVERY)
        .describe("How often the retention sweep runs; default 1m."),
    }),
  ]).describe("Writes every item to every sink, in batches, and expires them after `retention`.");
}

/** Names for the sinks in messages: the kind, then kind#2, kind#3 when a kind repeats (as stage ids). */
export function sinkNames(kinds: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return kinds.map((kind) => {
    const n = (seen.get(kind) ?? 0) + 1;
    seen.set(kind, n);
    return n === 1 ? kind : `${kind}#${n}`;
  });
}

/**
 * Runs `fn` on every sink and waits for all of them, so a failing sink never
 * cuts short another's write; throws naming each sink that failed.
 */
async function onAll(
  sinks: Sink[],
  names: string[],
  label: string,
  verb: string,
  fn: (sink: Sink) => void | Promise<void>,
): Promise<void> {
  const results = await Promise.allSettled(sinks.map(async (s) => await fn(s)));
  const failed = results.flatMap((r, i) =>
    r.status === "rejected" ? [{ name: names[i], error: r.reason as unknown }] : []
  );
  if (failed.length === 0) return;
  const which = failed.map((f) => `${f.name} (${errorMessage(f.error)})`).join(", ");
  const message = `${label}: cannot ${verb} sink${failed.length > 1 ? "s" : ""} ${which}`;
  const cause = failed.length === 1
    ? failed[0].error
    : new AggregateError(failed.map((f) => f.error));
  // When every failing sink says a retry cannot help, so does the batch: the runner splits at once.
  throw failed.some((f) => isRetryable(f.error))
    ? new Error(message, { cause })
    : new PermanentError(message, { cause });
}

/** Asks every sink that can to remove items first seen before `before`; logs, never throws. */
async function expireAll(
  sinks: Sink[],
  names: string[],
  label: string,
  before: number,
  ctx: StageContext,
): Promise<void> {
  const cutoff = new Date(before).toISOString();
  await Promise.all(sinks.map(async (sink, i) => {
    if (!sink.expire) return;
    try {
      const removed = await sink.expire(before, ctx.signal);
      // One that removed none says so at debug (every minute it was half a flow's log lines);
      // a sink of one's own that cannot count them is not said to have removed any.
      const said = removed === undefined
        ? `${label}: retention removed what ${
          names[i]
        } held seen before ${cutoff} (it does not say how many)`
        : `${label}: retention removed ${removed} item${
          removed === 1 ? "" : "s"
        } seen before ${cutoff} from ${names[i]}`;
      if (removed === 0) ctx.log.debug?.(said);
      else ctx.log.info(said);
    } catch (error) {
      ctx.log.warn(
        `${label}: retention cannot expire items seen before ${cutoff} from ${names[i]} (${
          errorMessage(error)
        }); trying again at the next sweep`,
      );
    }
  }));
}

/**
 * ```yaml
 * - publish:
 *     - jsonl: { path: items.jsonl }
 *     - stdout: {}
 * # or, to set the batch window:
 * - publish:
 *     sinks: [ { jsonl: { path: items.jsonl } } ]
 *     batch: { size: 500, maxWait: 1s }
 *     retention: 30d       # remove items first seen more than 30 days ago
 *     retentionEvery: 1m   # how often to look for them
 * ```
 *
 * Writes each batch to all its sinks at once and emits the batch only when
 * every sink took it, so "published" means "in every sink" (and, in a
 * durable flow, only then is the item acknowledged).
 *
 * A failing sink never stops the others: every sink's write runs to its end,
 * then the batch fails with an error naming each sink that refused it
 * ("cannot write 3 items to sink qdrant (...)"). The runner retries the
 * batch on every sink (sinks are idempotent by item id, so those that took
 * it write nothing twice), then splits it until the item the sink refuses
 * stands alone; that item goes to dead letters with the same words as its
 * reason, so the reason names the sink. Its batch-mates are published.
 *
 * So an item is in every sink or in dead letters, and a dead-lettered item
 * may be in the healthy sinks too: at least once at a healthy sink, never
 * half-published without a trace. Replaying the dead letter writes it
 * again to every sink, which the healthy ones absorb.
 *
 * Merge updates (Envelope.update, from a Deduper with `merge`) go in the
 * same batches to the sinks that take them (Sink.updates); each applies one
 * to what it holds of the story's id (see the sinks). They are not emitted
 * onward.
 *
 * With `retention`, the stage asks every sink that has `expire` to remove
 * items first seen more than `retention` ago: at open, then at most every
 * `retentionEvery`, from a timer (so an idle flow still expires) and from
 * the start of a batch. A sweep that fails is logged and tried again at the
 * next one; it never fails a batch, since the items in hand are not at fault.
 */
export const publishStage: StageSpec<PublishConfig> = {
  kind: "publish",
  leavesInputs: true,
  summary: "Writes every item to every sink (files, stdout, databases) in batches.",
  schema: publishConfigSchema,
  needs: (config) => [...new Set(config.sinks.flatMap((s) => s.needs))],
  adds: [],
  window: (config) => ({ size: config.batch.size, maxWait: config.batch.maxWait }),
  create: (config, env) => createPublisher(config, env),
};

/**
 * The batch without the items the flow's embed stage did not embed as it
 * embeds now, each refused with why: no vector, or one of another length
 * than the stage makes. Only when that stage said its length (`dimensions`,
 * known at open for `local` and for a model whose length is set or known).
 * A durable flow edited while items were on its way sends such items on:
 * those past an embed stage's place when it was added, or embedded before
 * `dimensions` changed. Published, they left rows with no vector and
 * lines of the old length, unsaid (a review: 2,520 of 3,000 rows).
 */
function unembeddedOut(
  batch: readonly Envelope<RawItem>[],
  env: BuildEnv,
  out: Outcome<RawItem>,
  ctx: StageContext,
): readonly Envelope<RawItem>[] {
  const dimensions = env.vectors?.dimensions;
  if (dimensions === undefined) return batch;
  const args = `dlq replay --stage ${ctx.stage} --into ${env.vectors?.stage ?? "embed"}`;
  const replay = env.command?.(args) ?? `deno task run ${args} <flow file>`;
  const unfit = (item: Envelope<RawItem>) =>
    item.update !== true && item.payload.deleted !== true &&
    (!Array.isArray(item.vector) || item.vector.length !== dimensions);
  if (!batch.some(unfit)) return batch;
  const kept: Envelope<RawItem>[] = [];
  for (const item of batch) {
    if (!unfit(item)) {
      kept.push(item);
      continue;
    }
    const had = Array.isArray(item.vector) ? item.vector.length : 0;
    const [kind, why] = had === 0
      ? ["no vector", "it has no vector, though the flow's embed stage comes before publish"]
      : [
        "vector length",
        `its vector has ${had} numbers, where the flow's embed stage makes ${dimensions}`,
      ];
    out.reject(
      item,
      kind,
      `${ctx.flow}/${ctx.stage}: ${why}: it passed that stage before the flow file changed, so ` +
        `it was not embedded as the flow embeds now; \`${replay}\` embeds it again`,
    );
  }
  return kept;
}

/** Wall time and the sweep timer of a publish stage; a seam so tests move time themselves. */
export interface PublishTimers {
  /** Epoch ms. */
  now(): number;
  /** Calls `fn` every `ms` (not keeping the process alive) until the returned stop is called. */
  every(ms: number, fn: () => void): () => void;
}

const realTimers: PublishTimers = {
  now: () => Date.now(),
  every(ms, fn) {
    const timer = setInterval(fn, ms);
    Deno.unrefTimer(timer);
    return () => clearInterval(timer);
  },
};

/** The publish stage's actor (what `publishStage.create` makes), on `timers`. */
export async function createPublisher(
  config: PublishConfig,
  env: BuildEnv,
  timers: PublishTimers = realTimers,
): Promise<Actor<RawItem, RawItem>> {
  const names = sinkNames(config.sinks.map((s) => s.kind));
  const sinks = await Promise.all(config.sinks.map((entry) => {
    const spec = env.registry.sinks.get(entry.kind);
    if (!spec) {
      throw new Error(`${env.flow}/publish: no sink named "${entry.kind}" is registered`);
    }
    return spec.create(entry.config, env);
  }));
  let label = `${env.flow}/publish`;
  const { retention, retentionEvery } = config;
  let lastSweep = -Infinity;
  let sweeping: Promise<void> | undefined;
  let stopTimer: (() => void) | undefined;
  /** One sweep at a time, and none sooner than `retentionEvery` after the last began. */
  const sweep = (ctx: StageContext): Promise<void> | undefined => {
    if (retention === undefined || sweeping || timers.now() - lastSweep < retentionEvery) return;
    lastSweep = timers.now();
    sweeping = expireAll(sinks, names, label, lastSweep - retention, ctx)
      .finally(() => sweeping = undefined);
    return sweeping;
  };
  return {
    updates: true,
    async open(ctx) {
      label = `${ctx.flow}/${ctx.stage}`;
      try {
        await onAll(sinks, names, label, "open", (s) => s.open?.());
      } catch (error) {
        // The flow never closes a stage that failed to open: close the sinks that did.
        await Promise.allSettled(sinks.map(async (s) => await s.close?.()));
        throw error;
      }
      if (retention !== undefined && sinks.some((s) => s.expire)) {
        await sweep(ctx);
        stopTimer = timers.every(retentionEvery, () => void sweep(ctx));
      }
    },
    async handle(given, out, ctx) {
      if (stopTimer !== undefined) await sweep(ctx);
      const batch = unembeddedOut(given, env, out, ctx);
      if (batch.length === 0) return;
      const merges = updatesIn(batch), n = batch.length - merges;
      const counted = [
        n > 0 || merges === 0 ? `${n} item${n === 1 ? "" : "s"}` : "",
        merges > 0 ? `${merges} merge update${merges === 1 ? "" : "s"}` : "",
      ].filter(Boolean).join(" and ");
      const verb = `write ${counted} to`;
      let plain: readonly Envelope<RawItem>[] | undefined;
      await onAll(sinks, names, label, verb, (s) => {
        if (s.updates === true) return s.write(batch, ctx.signal);
        plain ??= merges === 0 ? batch : batch.filter((item) => item.update !== true);
        return plain.length > 0 ? s.write(plain, ctx.signal) : Promise.resolve();
      });
      // A merge update has reached every sink; it is not an item of its own to pass on. They are
      // counted apart: a rerun that only sends the updates an earlier run left is not a no-op.
      let updates = 0;
      for (const item of batch) {
        if (item.update !== true) out.emit(item);
        else updates++;
      }
      if (updates > 0) ctx.tally?.("merge updates", updates);
    },
    async close() {
      stopTimer?.();
      stopTimer = undefined;
      await sweeping;
      await onAll(sinks, names, label, "close", (s) => s.close?.());
    },
  };
}
