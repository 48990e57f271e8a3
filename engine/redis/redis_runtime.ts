import { hostname } from "node:os";
import type { Redis } from "ioredis";
import { closeRedis, connectRedis } from "./connection.ts";
import { sleep } from "../backoff.ts";
import { buildFlow, type BuiltStage, FlowStartError } from "../build_flow.ts";
import { type Flow, isPolling } from "../flow.ts";
import { type Logger, withContext } from "../log.ts";
import type { BuildEnv, Registry } from "../registry.ts";
import type { Runtime } from "../runtime.ts";
import { untilAborted } from "../until_aborted.ts";
import { errorMessage, isOutage } from "../errors.ts";
import { type FlowKeys, flowKeys } from "./keys.ts";
import { ensureGroups, RedisEdge } from "./redis_edge.ts";
import { type DurableStep, serial } from "./step_run.ts";
import { backlog, evictingPolicy, recentReaders, removedWaiting } from "./redis_info.ts";
import { untilRedis } from "./until_redis.ts";
import {
  checkEdit,
  fingerprint,
  keyedBy,
  recordedPipeline,
  recordOrder,
  recordWriters,
} from "./pipeline_edit.ts";
import { leaseProcess, SourceLeases } from "./source_lease.ts";

/**
 * Redis's answers while it cannot serve for a while (loading its data, a
 * long script, a failover, memory full under noeviction, a disk it cannot
 * write): waited out at start as the steps wait them out later.
 */
const PASSING = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|OOM|MISCONF)\b/;

/**
 * Runs redelivered entries one at a time in this process, whatever flow
 * they belong to: a crash kills every flow the process runs, and is charged
 * to each entry running alone. One queue per flow charged the innocent
 * entry of one flow with another flow's crash.
 */
const ALONE = serial();

/**
 * A drained run found work back in Redis as it ended: Redis lost writes the
 * drain check had counted. Nothing is lost (the entries are pending), but
 * the run did not finish: the command line says so after the run's report
 * and exits 1, so that whoever started it runs it again.
 */
export class RedisLostWritesError extends Error {
  /** Names the error in a stack and in `error:` lines. */
  override name = "RedisLostWritesError";
}

/**
 * A flow over Redis Streams: one Redis edge per step, and the sources under
 * their leases. This process is one consumer among any number: it runs
 * every step, and whichever sources it wins the lease of. When every
 * source is one-shot, `drained` says when the flow is drained (all sources
 * done, nothing undelivered or pending on any edge), so the same command
 * finishes a batch job on one machine or on ten.
 */
export async function openRedisRuntime(flow: Flow, opts: {
  registry: Registry;
  log: Logger;
  stop: AbortSignal;
  kill: AbortSignal;
  /** Backoff base for retries in ms (tests shorten it). */
  backoffBase?: number;
  /** A millrace command for this flow as its person types it (RunOptions.command). */
  command?: (args: string) => string;
}): Promise<Runtime> {
  const { log, stop, kill } = opts;
  // Without the command line's (RunOptions.command): the flow's file as the flow names it.
  const command = opts.command ??
    ((args: string) => `deno task run ${args} ${flow.file ?? flow.name}`);
  const keys = flowKeys(flow.name, flow.durable.prefix);
  const consumer = `${hostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`;
  const connections: Redis[] = [];
  const drops = { count: 0 };
  const countDrops = (e: string) => {
    if (e === "dropped") drops.count++;
  };
  // One warning per outage ("reconnecting" comes at every try), one line when it ends.
  let away = false;
  const outage = (e: string, d: { waited?: number }) => {
    countDrops(e);
    if ((e === "reconnecting" || e === "unresponsive") && !away) {
      away = true;
      const why = e === "unresponsive"
        ? `is not answering (${Math.round(d.waited! / 1000)}s)`
        : "unavailable";
      log.warn(`${flow.name}: Redis ${why}, pausing until it is back`);
    }
    if (e === "ready" && away) {
      away = false;
      log.info(`${flow.name}: Redis is back`);
    }
  };
  const connect = async (role: string, blocking = false) => {
    try {
      const r = await connectRedis(flow.redis!, {
        name: `millrace:${flow.name}:${role}`,
        blocking,
        onEvent: role === "commands" ? outage : countDrops,
      });
      connections.push(r);
      return r;
    } catch (e) {
      await Promise.allSettled(connections.map(closeRedis));
      throw new FlowStartError(flow.name, "redis", e);
    }
  };
  const redis = await connect("commands");
  // Given `durable`, the HTTP pool keeps its per-host buckets in Redis, shared by every process.
  const http = opts.registry.http?.(flow.http, { flow: flow.name, log, durable: { redis, keys } });
  const env: BuildEnv = {
    flow: flow.name,
    baseDir: flow.baseDir,
    outDir: flow.outDir,
    log,
    registry: opts.registry,
    durable: { redis, keys },
    ...(http ? { http: http.client() } : {}),
    vectors: {},
    command,
  };
  const disconnect = () => Promise.allSettled(connections.map(closeRedis));
  let built;
  try {
    built = await buildFlow(flow, opts.registry, env, kill, log, http);
  } catch (e) {
    await disconnect();
    throw e;
  }
  const stages = built.stages.map((stage) => ({ ...stage, backoffBase: opts.backoffBase }));
  const steps = planSteps(stages, flow.durable.fuse);
  let readers: Redis[];
  // What the start asks of Redis is safe to run again, and is, when a connection drops
  // under it or the server is loading, busy or full: a blip while starting ended the run with an
  // error. Any other answer (a replica's READONLY, an ACL's NOPERM, a key of the wrong type)
  // still ends the start at once: no wait mends it.
  const starting = <T>(what: string, call: () => Promise<T>) =>
    untilRedis(call, {
      who: flow.name,
      what,
      log,
      signal: kill,
      isRetryable: (e) => isOutage(e) || PASSING.test(errorMessage(e)),
    });
  try {
    await starting(
      "the check of fused stages",
      () => refuseStranded(redis, keys, flow, steps, command),
    );
    await starting(
      "the check of the flow's edit",
      () => checkEdit(redis, keys, flow, log, opts.registry),
    );
    const evicting = await starting("the check of eviction", () => evictingPolicy(redis));
    if (evicting !== undefined) {
      log.warn(
        `${flow.name}: Redis evicts keys when its memory is full (maxmemory-policy ` +
          `${evicting}): it would drop this flow's streams, leases or dedupe keys, and items ` +
          `with them, or let copies through; set maxmemory-policy noeviction ` +
          `(CONFIG SET maxmemory-policy noeviction, or the service's parameter), and a full ` +
          `Redis pauses the flow instead`,
        { maxmemoryPolicy: evicting },
      );
    }
    const removed = await starting(
      "the check of removed stages",
      () => removedWaiting(redis, keys, flow),
    );
    for (const { stage, waiting } of removed) {
      log.warn(
        `${flow.name}: stage ${stage} is no longer in the flow, but ${waiting} ` +
          `${waiting === 1 ? "entry waits" : "entries wait"} on its input (${
            keys.input(stage, "normal")
          }), which nothing reads now: put the stage back to finish them, or reset the flow ` +
          `to drop them`,
        { stage, entries: waiting },
      );
    }
    readers = await Promise.all(steps.map((s) => connect(`read:${s.id}`, true)));
    await starting("the creation of consumer groups", async () => {
      for (const step of steps) await ensureGroups(redis, keys, step.id);
    });
    await starting("the record of stages and steps", async () => {
      const pipeline = JSON.stringify(flow.pipeline.map((s) => `${s.id}:${s.kind}`));
      const before = await recordedPipeline(redis, keys);
      if (
        before.length > 0 && JSON.stringify(before.map((s) => `${s.id}:${s.kind}`)) !== pipeline
      ) {
        const stages = before.map((s) => s.id);
        const others = [
          ...(await recentReaders(redis, keys, stages, flow.durable.claimAfter)).keys(),
        ];
        // A process between two polls reads nothing for a while, and Redis 7.0 counts a
        // blocked read that returns nothing as idle: its source leases, renewed all along, say
        // it runs (a review's edit started 10 s after the old process's last read said nothing).
        const holders = new Map<string, string[]>();
        for (const source of flow.sources) {
          const holder = await redis.get(keys.lease(source.name));
          const who = holder?.slice(0, holder.lastIndexOf("#"));
          if (who && !others.includes(who)) {
            holders.set(who, [...holders.get(who) ?? [], source.name]);
          }
        }
        const said = [
          ...(others.length > 0
            ? [`${others.join(", ")} read its stages ${stages.join(" -> ")} within claimAfter`]
            : []),
          ...[...holders].map(([who, sources]) => `${who} holds its source ${sources.join(", ")}`),
        ];
        if (said.length > 0) {
          log.warn(
            `${flow.name}: another version of this flow is running, or stopped moments ago ` +
              `(${said.join("; ")}; this file has ${
                flow.pipeline.map((s) => s.id).join(" -> ")
              }): while both run, items pass between the two versions' stages and may go ` +
              `through a stage twice; stop the old processes before starting the edited flow`,
            { running: [...others, ...holders.keys()] },
          );
        }
      }
      await recordWriters(redis, keys, flow.pipeline.map((s) => s.id), before);
      await recordOrder(redis, keys, flow.pipeline.map((s) => s.id), before.map((s) => s.id));
      await redis.set(keys.pipeline, pipeline);
      await redis.hset(keys.stages, Object.fromEntries(built.stages.map((s) => [s.id, s.kind])));
      const prints = await Promise.all(flow.pipeline.map(fingerprint));
      const keyed = keyedBy(flow, opts.registry);
      const record = redis.multi().del(keys.configs, keys.keyed)
        .hset(keys.configs, Object.fromEntries(flow.pipeline.map((s, i) => [s.id, prints[i]])));
      if (Object.keys(keyed).length > 0) record.hset(keys.keyed, keyed);
      const failed = (await record.exec())?.find(([error]) => error !== null)?.[0];
      if (failed) throw failed;
      await redis.hset(
        keys.steps,
        Object.fromEntries(
          steps.flatMap((step) => step.stages.map((s) => [s.ctx.stage, step.id])),
        ),
      );
    });
  } catch (e) {
    await built.close();
    await disconnect();
    throw e instanceof FlowStartError ? e : new FlowStartError(flow.name, "redis", e);
  }

  const leases = new SourceLeases({
    sources: built.sources,
    redis,
    keys,
    options: flow.durable,
    first: steps[0].id,
    firstWindow: steps[0].window,
    consumer,
    command,
    log,
    stop,
    kill,
  });
  const oneShot = flow.sources.every((s) => !isPolling(s));
  // The connection drops Redis had when the drain check said drained.
  let dropsAtDrain = -1;
  const drained = oneShot
    ? watchDrain(redis, keys, flow, steps, stop, log, consumer).then((d) => {
      if (d) dropsAtDrain = drops.count;
      return d;
    })
    : undefined;
  const edges: RedisEdge[] = [];
  return {
    built,
    sources: leases.stats,
    inFlight: () => edges.reduce((n, edge) => n + edge.heldItems(), 0),
    loops: steps.map((step, i) => ({
      stages: step.stages,
      edge: remember(
        edges,
        new RedisEdge({
          step,
          keys,
          options: flow.durable,
          maxDeliveries: flow.deadLetters.maxDeliveries,
          redis,
          reader: readers[i],
          consumer,
          stop,
          kill,
          // Its lines (reads, trims, claims, splits) name the stage in a structured log too.
          log: withContext(log, { stage: step.id }),
          alone: ALONE,
          drops,
        }),
      ),
      window: step.window,
      concurrency: step.concurrency,
      // In read order: a batch that ends in the middle of an entry records
      // how far it got, which must be written before the batch that
      // acknowledges the entry (RedisEdge.commit).
      ordered: true,
      // A commit is a round trip: the next batches run while it is out.
      pipelined: true,
    })),
    pump: () => leases.start(),
    drained,
    // Redis can come back from a crash without its last writes after the
    // drain check (appendfsync everysec): acknowledgements made before the
    // check are undone, and their entries are pending again with no process
    // left to finish them. Looked at again once the steps have ended, if
    // Redis went away since; what is left makes the run fail, so whoever
    // started it (a person, systemd, a job runner) runs it again, which
    // finishes those entries and writes nothing twice.
    confirmDrained: async () => {
      if (dropsAtDrain < 0 || drops.count === dropsAtDrain) return;
      const { missing, waiting } = await untilRedis(() => drainState(redis, keys, flow, steps), {
        who: flow.name,
        what: "the last drain check",
        log,
        signal: kill,
      });
      if (missing.length === 0 && waiting.length === 0) return;
      const left = [
        ...waiting.map(([step, n]) => `${n} entr${n === 1 ? "y" : "ies"} on ${step}`),
        ...missing.map((s) => `source ${s}, whose done mark is gone`),
      ];
      throw new RedisLostWritesError(
        `${flow.name}: work came back after the flow drained (Redis restarted without its ` +
          `last writes?): ${left.join(", ")}; nothing is lost: run the flow again to finish it`,
      );
    },
    // Blocked reads end now rather than at their BLOCK timeout. A reader
    // between reconnect tries is left to close(): disconnect() there would
    // cancel its next try and leave it neither connected nor ended.
    kill: () => readers.forEach((r) => r.status !== "reconnecting" && r.disconnect()),
    close: async () => {
      await disconnect();
    },
  };
}

/**
 * Refuses to start while stages that now run inside another stage's step
 * still have entries waiting in their own input streams: nothing would
 * read them. That happens when `fuse` is turned on (or joins more stages
 * than before) while a flow's edges hold entries, e.g. after a stop or a
 * crash. Every such stage is named, with how many entries wait on it.
 */
async function refuseStranded(
  redis: Redis,
  keys: FlowKeys,
  flow: Flow,
  steps: readonly { id: string; stages: readonly { ctx: { stage: string } }[] }[],
  command: (args: string) => string,
): Promise<void> {
  const stranded: { stage: string; waiting: number }[] = [];
  const heads = new Set<string>();
  for (const step of steps) {
    for (const { ctx: { stage } } of step.stages.slice(1)) {
      const waiting = await backlog(redis, keys, stage);
      if (waiting === 0) continue;
      stranded.push({ stage, waiting });
      heads.add(step.id);
    }
  }
  if (stranded.length === 0) return;
  const one = stranded.length === 1;
  const named = stranded.map(({ stage, waiting }) =>
    `${stage} (${waiting} ${waiting === 1 ? "entry" : "entries"})`
  );
  const status = command("status");
  throw new FlowStartError(
    flow.name,
    "durable",
    new Error(
      `entries wait on the input streams of ${one ? "stage" : "stages"} ${named.join(", ")} ` +
        `(${keys.input(stranded[0].stage, "normal")}${one ? "" : " and the others"}), ` +
        `which nothing reads once fuse: ${flow.durable.fuse} runs ${one ? "it" : "them"} inside ` +
        `the step of ${[...heads].join(", ")}: run the flow with fuse: false until \`${status}\` ` +
        `shows no entries waiting on ${one ? "it" : "them"} (with a polling source, between two ` +
        `polls), then turn fuse on`,
    ),
    { path: ["durable", "fuse"], file: flow.file, locate: flow.locate },
  );
}

/**
 * Steps of the durable flow: one per stage, or, with `fuse`, runs of
 * consecutive stages as one step (one Redis hop instead of one per stage).
 * A windowed stage (embed, publish) joins no step that has no window: its
 * window gathers entries across reads, which only a step's input can. It
 * starts a step of its own, and the stages after it join that one (each
 * later windowed stage gets its batches cut to its own window), so the
 * demo's five stages are two steps: validate to enrich, embed and publish.
 * With `fuse: "all"` the whole pipeline is one step, whose input gathers
 * batches of its first windowed stage's size and maxWait: that stage gets
 * what the stages before it let through, still cut to its own window, so
 * its limits hold and its batches are as full as the filtering allows.
 * Not the weight: it is the stage's measure of the items it receives, not
 * of the raw ones (an embedding's tokens of fields the stages before it
 * make). A stage on workers may finish its batches out of order; in a step,
 * the next stage still takes them in read order (stage_loop.ts, Turns), so
 * it joins steps like any other.
 */
export function planSteps(
  stages: readonly BuiltStage[],
  fuse: boolean | "all",
): (DurableStep & { concurrency: number })[] {
  const groups: BuiltStage[][] = [];
  for (const stage of stages) {
    const last = groups[groups.length - 1];
    const canJoin = last &&
      (fuse === "all" || (fuse && (!stage.window || last[0].window !== undefined)));
    if (canJoin) last.push(stage);
    else groups.push([stage]);
  }
  const windowOf = (group?: BuiltStage[]) => {
    if (!group || group[0].window) return group?.[0].window;
    const first = group.find((s) => s.window)?.window;
    return first && { size: first.size, maxWait: first.maxWait };
  };
  return groups.map((group, i) => ({
    id: group[0].id,
    stages: group,
    window: windowOf(group),
    next: groups[i + 1]?.[0].id,
    nextWindow: windowOf(groups[i + 1]),
    concurrency: Math.max(...group.map((s) => s.concurrency)),
  }));
}

/**
 * Sources whose done mark is missing, and the steps whose input holds
 * entries (undelivered or pending) with how many. With `first`, it stops at
 * the first step that holds any.
 */
async function drainState(
  redis: Redis,
  keys: FlowKeys,
  flow: Flow,
  steps: DurableStep[],
  first = false,
) {
  const done = await Promise.all(flow.sources.map((s) => redis.exists(keys.done(s.name))));
  const missing = flow.sources.filter((_, i) => !done[i]).map((s) => s.name);
  const waiting: [step: string, entries: number][] = [];
  for (const step of steps) {
    const entries = await backlog(redis, keys, step.id);
    if (entries > 0) waiting.push([step.id, entries]);
    if (entries > 0 && first) break;
  }
  return { missing, waiting };
}

/** How often the drain is checked while a source is still running, and once all are done. */
const DRAIN_CHECK_MS = 500, DRAIN_CHECK_NEAR_MS = 100;

/** How long every edge may sit empty while a source's done mark is missing before we say so. */
const TELL_WAITING_AFTER_MS = 10_000;

/**
 * Resolves true once every source has said it is done and no edge holds an
 * undelivered or pending entry, checked twice in a row so an entry in
 * flight between two edges is not missed; false if stopped first. When the
 * edges stay empty for a while but a done mark is missing, it says which
 * sources it waits for, and who holds each: a flow that waits in silence
 * looks hung, and one waiting out a crashed process's lease looks stuck.
 */
async function watchDrain(
  redis: Redis,
  keys: FlowKeys,
  flow: Flow,
  steps: DurableStep[],
  stop: AbortSignal,
  log: Logger,
  consumer: string,
): Promise<boolean> {
  let quietChecks = 0;
  let idleSince: number | undefined;
  let told = false;
  let sourcesDone = false;
  while (!stop.aborted) {
    // Once every source is done the end is near, and each check saved off
    // the wait is time off the run: a flow of 5,000 items spent longer
    // finding out it had drained (two checks 500 ms apart) than running.
    await sleep(sourcesDone ? DRAIN_CHECK_NEAR_MS : DRAIN_CHECK_MS, stop);
    if (stop.aborted) return false;
    try {
      // Checks queued while Redis is away are not waited for past a stop.
      const { missing, waiting } = await untilAborted(
        drainState(redis, keys, flow, steps, true),
        stop,
      );
      const empty = waiting.length === 0;
      sourcesDone = missing.length === 0;
      quietChecks = empty && missing.length === 0 ? quietChecks + 1 : 0;
      if (quietChecks >= 2) return true;
      if (!empty || missing.length === 0) {
        idleSince = undefined;
        told = false;
      } else if ((idleSince ??= Date.now()) + TELL_WAITING_AFTER_MS <= Date.now() && !told) {
        told = true;
        const holders = await Promise.all(
          missing.map((name) => leaseNote(redis, keys, name, consumer)),
        );
        log.warn(
          `${flow.name}: every edge is empty, waiting for ${
            missing.map((name, i) => `source ${name}${holders[i]}`).join(", ")
          } to mark itself done`,
        );
      }
    } catch (error) {
      quietChecks = 0;
      if (!stop.aborted) {
        log.warn(`${flow.name}: drain check failed`, { error: errorMessage(error) });
      }
    }
  }
  return false;
}

/**
 * Who holds a source's lease, for the drain's waiting line: another
 * process's lease may be a crashed one's, which is waited out (it is not
 * renewed) before this process takes the source over.
 */
async function leaseNote(
  redis: Redis,
  keys: FlowKeys,
  source: string,
  consumer: string,
): Promise<string> {
  const [holder, ms] = await Promise.all([
    redis.get(keys.lease(source)),
    redis.pttl(keys.lease(source)),
  ]);
  if (holder === null) return "";
  if (holder.startsWith(`${consumer}#`)) return " (this process is reading it)";
  const who = leaseProcess(holder);
  if (ms < 0) {
    return ` (its lease, ${who}'s, has no expiry, so no process will take the source over: ` +
      "was it set by hand? delete it, or `reset` the flow)";
  }
  return ` (read by process ${who}; if it ended without letting go, this one takes the source ` +
    `over when its lease runs out, in ${Math.max(1, Math.ceil(ms / 1000))}s)`;
}

function remember<T>(all: T[], one: T): T {
  all.push(one);
  return one;
}
