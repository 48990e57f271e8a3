import { join } from "node:path";
import { DEAD_LETTERS_FILE } from "../engine/dead_letters.ts";
import { shownPath, typedCommand } from "./user_dir.ts";
import type { Redis } from "ioredis";
import { closeRedis, connectRedis } from "../engine/redis/connection.ts";
import type { Flow } from "../engine/flow.ts";
import { didYouMean } from "../config/suggest.ts";
import {
  countDeadLetters,
  type DlqEntry,
  dlqList,
  dlqPurge,
  dlqReplay,
  lastDeadLetter,
  type ReplayResult,
  UNKEPT,
} from "./dead_letter_queue.ts";
import { type FlowKeys, flowKeys } from "../engine/redis/keys.ts";
import { recentReaders } from "../engine/redis/redis_info.ts";
import { maskUrl } from "../engine/mask_url.ts";
import { nestedPast } from "../engine/nested_past.ts";
import type { Confirm } from "./confirm.ts";
import { formatStatus } from "./format_status.ts";
import { flowStatus } from "./status.ts";
import { fileLines } from "../adapters/sinks/_file_lines.ts";

/**
 * The operator commands behind `deno task run status` and `deno task run dlq`: each
 * opens its own short-lived connection, does one thing, and returns the
 * text to print with the exit code, so the command line only parses
 * arguments.
 */

/** A command that needs Redis was given a memory flow. */
export class NotDurableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotDurableError";
  }
}

/** `--stage` names no stage of the flow: a typo, which would otherwise match nothing quietly. */
export class UnknownStageError extends Error {
  constructor(flow: Flow, stage: string) {
    const ids = flow.pipeline.map((s) => s.id);
    super(
      `flow ${flow.name} has no stage "${stage}"; its stages are ${ids.join(", ")}` +
        didYouMean(stage, ids),
    );
    this.name = "UnknownStageError";
  }
}

export interface CommandResult {
  /** What to print on stdout. */
  text: string;
  /** 0: done; 1: done, but some dead letters could not be replayed. */
  code: number;
}

export interface AdminOptions {
  json?: boolean;
  /** Ms to reach Redis. Default 5000. */
  timeout?: number;
  /**
   * Asked before `reset` and `dlq purge` delete anything (not when there is
   * nothing to delete); a no deletes nothing and the command exits 1. Absent:
   * they delete without asking (the command line always passes one).
   */
  confirm?: Confirm;
}

/** What a no to `confirm` leaves: nothing deleted, exit code 1. */
const DECLINED: CommandResult = { text: "nothing deleted", code: 1 };

/** `status FLOW [--json]`: the flow's streams, groups, consumers, rates and dead letters. */
export async function statusCommand(
  flow: Flow,
  opts: AdminOptions & { sampleMs?: number } = {},
): Promise<CommandResult> {
  if (flow.durability !== "redis") {
    throw new NotDurableError(
      `flow ${flow.name} has durability: memory, and status needs durability: redis ` +
        "(a memory flow's edges live only inside the process running it; " +
        `its dead letters are listed by: ${forFlow(flow, "dlq list")})`,
    );
  }
  return await withRedis(flow, opts, async (redis) => {
    const status = await flowStatus(redis, flow, { sampleMs: opts.sampleMs });
    return { text: opts.json ? JSON.stringify(status, null, 2) : formatStatus(status), code: 0 };
  });
}

/**
 * `reset FLOW`: deletes every key of the flow (streams, groups, dead
 * letters, source positions and leases, dedupe keys), so the next run starts
 * from nothing. Keys share the flow's hash tag, so one SCAN pattern finds
 * them all and nothing of another flow.
 */
export async function resetCommand(
  flow: Flow,
  opts: AdminOptions & { force?: boolean } = {},
): Promise<CommandResult> {
  if (flow.durability !== "redis") {
    throw new NotDurableError(
      `flow ${flow.name} has durability: memory and keeps nothing in Redis; ` +
        `delete ${flow.outDir} to start over`,
    );
  }
  const keys = flowKeys(flow.name, flow.durable.prefix);
  return await withRedis(flow, opts, async (redis) => {
    const pattern = `${keys.prefix}:{${escapeGlob(flow.name)}}:*`;
    const each = async (visit: (keys: string[]) => Promise<unknown>) => {
      let cursor = "0";
      do {
        const [next, found] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 500);
        if (found.length > 0) await visit(found);
        cursor = next;
      } while (cursor !== "0");
    };
    if (!opts.force) {
      const live = await liveSigns(redis, flow, keys);
      if (live.length > 0) {
        return {
          text: `${flow.name}: not reset, a process of the flow looks alive: ${live.join("; ")}. ` +
            `A reset under a running process loses what it is working on (its next run ` +
            `counts those items as duplicates). Stop every process of the flow first; one that ` +
            `was killed stops looking alive ${
              Math.round(flow.durable.claimAfter / 1000)
            } s after its last read (claimAfter), or add --force. Nothing deleted`,
          code: 1,
        };
      }
    }
    if (opts.confirm) {
      let n = 0;
      await each((found) => Promise.resolve(n += found.length));
      const question = `delete all ${n} key${n === 1 ? "" : "s"} of flow ${flow.name} ` +
        `(its streams, positions, dedupe keys and dead letters) in ${maskUrl(flow.redis!)}?`;
      if (n > 0 && !(await opts.confirm(question))) return DECLINED;
    }
    let deleted = 0;
    await each(async (found) => deleted += await redis.del(...found));
    return { text: `${flow.name}: deleted ${deleted} keys`, code: 0 };
  });
}

/**
 * What says a process of the flow is running: a source lease held, or a
 * consumer of a stage that read within `claimAfter` (a process that ends
 * cleanly lets go of both: source_lease.ts, RedisEdge.close).
 */
async function liveSigns(redis: Redis, flow: Flow, keys: FlowKeys): Promise<string[]> {
  const signs: string[] = [];
  for (const source of flow.sources) {
    const ttl = await redis.pttl(keys.lease(source.name));
    if (ttl > 0) {
      signs.push(`source ${source.name} is held (lease for ${Math.ceil(ttl / 1000)} s more)`);
    }
  }
  // Each stage's own group and, when fused, its step's: the steps hash is the last start's.
  const steps = await redis.hgetall(keys.steps);
  const groups = new Set(flow.pipeline.flatMap((s) => steps[s.id] ? [s.id, steps[s.id]] : [s.id]));
  const readers = await recentReaders(redis, keys, groups, flow.durable.claimAfter);
  for (const [name, { stages, idle }] of readers) {
    signs.push(
      `consumer ${name} read the input of ${[...stages].join(", ")} ${
        (idle / 1000).toFixed(1)
      } s ago`,
    );
  }
  return signs;
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}

export type DlqAction = "list" | "replay" | "purge";

/** `dlq list|replay|purge FLOW [--stage S] [--limit N] [--json]`. */
export async function dlqCommand(
  flow: Flow,
  action: DlqAction,
  opts: AdminOptions & { stage?: string; into?: string; limit?: number } = {},
): Promise<CommandResult> {
  const { stage, into } = opts;
  if (into !== undefined && !flow.pipeline.some((s) => s.id === into)) {
    throw new UnknownStageError(flow, into);
  }
  const limit = opts.limit ?? 100;
  if (flow.durability !== "redis") {
    const file = join(flow.outDir, DEAD_LETTERS_FILE);
    if (action !== "list") {
      throw new NotDurableError(
        `dlq ${action} needs durability: redis; flow ${flow.name} is a memory flow, ` +
          `whose dead letters are in ${shownPath(file)}` +
          (action === "purge"
            ? " (delete the file to purge them)"
            : " (fix what refused them, then run the flow again: its sources read the items anew)"),
      );
    }
    const entries = await readJsonlDeadLetters(file, { stage, limit: limit + 1 });
    if (stage !== undefined && entries.length === 0) await checkStage(flow, stage, () => ({}));
    const ofStage = stage === undefined ? "" : ` of stage ${stage}`;
    return listResult(entries, limit, opts.json, `${ofStage} in ${shownPath(file)}`.trim());
  }
  const keys = flowKeys(flow.name, flow.durable.prefix);
  return await withRedis(flow, opts, async (redis) => {
    if (stage !== undefined) await checkStage(flow, stage, () => countDeadLetters(redis, keys));
    if (action === "list") {
      const entries = await dlqList(redis, keys, { stage, limit: limit + 1 });
      const ofStage = stage === undefined ? "" : ` of stage ${stage}`;
      return listResult(entries, limit, opts.json, `${ofStage} of flow ${flow.name}`.trim());
    }
    if (action === "purge") {
      // What the question counts is what goes: a letter written while it is read stays.
      const upTo = await lastDeadLetter(redis, keys);
      if (opts.confirm) {
        const n = stage === undefined
          ? await redis.xlen(keys.dlq)
          : (await countDeadLetters(redis, keys))[stage] ?? 0;
        const question = `purge ${plural(n)}${stage ? ` of stage ${stage}` : ""} of flow ` +
          `${flow.name} from ${maskUrl(flow.redis!)}?`;
        if (n > 0 && !(await opts.confirm(question))) return DECLINED;
      }
      const n = upTo === undefined ? 0 : await dlqPurge(redis, keys, { stage, upTo });
      return { text: `purged ${plural(n)}${stage ? ` of stage ${stage}` : ""}`, code: 0 };
    }
    const pipeline = flow.pipeline.map((s) => s.id);
    const result = await dlqReplay(redis, keys, { stage, into, pipeline });
    if (opts.json) {
      return { text: JSON.stringify(result, null, 2), code: result.skipped.length ? 1 : 0 };
    }
    const total = Object.values(result.replayed).reduce((a, b) => a + b, 0);
    const per = Object.entries(result.replayed).map(([s, n]) =>
      `${s} ${n}${
        !result.into?.[s]
          ? ""
          : into === undefined
          ? ` (into ${result.into[s]}, the first stage of its fused step)`
          : ` (into ${result.into[s]})`
      }`
    ).join(", ");
    const lines = [`replayed ${plural(total)}${per ? `: ${per}` : ""}`];
    if (total > 0) {
      lines.push(
        `the flow's running processes take them up; if none is running: ${forFlow(flow, "")}`,
      );
    }
    lines.push(...skippedLines(result.skipped));
    const gone = [
      ...new Set(
        result.skipped.filter((s) => s.reason.endsWith("is not in the flow's pipeline"))
          .map((s) => s.stage),
      ),
    ];
    if (result.skipped.some((s) => s.reason.endsWith("the stage has not started"))) {
      lines.push(
        `a stage's consumer group is made when the flow first runs with it: run the flow once ` +
          `(${forFlow(flow, "")}), then replay`,
      );
    }
    if (gone.length > 0 && into === undefined) {
      lines.push(
        `put the letters of ${gone.join(", ")} back on the input of a stage the flow has: ` +
          `${forFlow(flow, "dlq replay")} --stage ${gone[0]} --into <stage>`,
      );
    }
    const unkept = [
      ...new Set(result.skipped.filter((s) => s.reason === UNKEPT).map((s) => s.stage)),
    ];
    for (const s of unkept) {
      lines.push(
        `fix what made them, then delete them: ${forFlow(flow, "dlq purge")} --stage ${s}`,
      );
    }
    return { text: lines.join("\n"), code: result.skipped.length ? 1 : 0 };
  });
}

/**
 * Refuses a `--stage` that is neither in the pipeline, nor a source (over
 * Redis a source dead-letters what JSON cannot hold), nor on any dead letter
 * (the letters of a stage since removed from the flow can still be handled).
 */
async function checkStage(
  flow: Flow,
  stage: string,
  letters: () => Record<string, number> | Promise<Record<string, number>>,
): Promise<void> {
  if (flow.pipeline.some((s) => s.id === stage)) return;
  if (flow.durability === "redis" && flow.sources.some((s) => s.name === stage)) return;
  if ((await letters())[stage]) return;
  throw new UnknownStageError(flow, stage);
}

async function withRedis(
  flow: Flow,
  opts: AdminOptions,
  use: (redis: Redis) => Promise<CommandResult>,
): Promise<CommandResult> {
  const redis = await connectRedis(flow.redis!, {
    name: `millrace:${flow.name}:admin`,
    timeout: opts.timeout,
  });
  try {
    return await use(redis);
  } finally {
    await closeRedis(redis);
  }
}

/**
 * Letters as a JSON array, each indented unless it nests deeper than a
 * reader would read: indented, an item nested 3,000 levels deep is 9 MB
 * of spaces, and one nested 12,000 ran JSON.stringify out of stack.
 */
function jsonList(entries: DlqEntry[]): string {
  if (entries.length === 0) return "[]";
  const shown = entries.map((e) =>
    // "\n" alone, not /^/m, which takes U+2028 and U+2029 inside a string for line ends.
    nestedPast(e, 32)
      ? `  ${JSON.stringify(e)}`
      : `  ${JSON.stringify(e, null, 2).replaceAll("\n", "\n  ")}`
  );
  return `[\n${shown.join(",\n")}\n]`;
}

function listResult(
  entries: DlqEntry[],
  limit: number,
  json: boolean | undefined,
  where: string,
): CommandResult {
  const more = entries.length > limit;
  const shown = entries.slice(0, limit);
  if (json) return { text: jsonList(shown), code: 0 };
  if (shown.length === 0) return { text: `no dead letters ${where}`, code: 0 };
  const lines = shown.flatMap(formatEntry);
  lines.push(
    more
      ? `first ${plural(shown.length)} ${where} shown; more with --limit`
      : `${plural(shown.length)} ${where}`,
  );
  return { text: lines.join("\n"), code: 0 };
}

function formatEntry(e: DlqEntry): string[] {
  const head = `${e.id}  ${e.time}  ${e.stage}  attempts ${e.attempts}  ${e.reason}`;
  if (!e.item) return [head, `    malformed: ${e.problem}`];
  const p = e.item.payload as { title?: unknown; url?: unknown } | null;
  const what = [p?.title, p?.url].filter((v) => typeof v === "string" && v).join(" ");
  return [head, `    item ${e.item.id} from ${e.item.source}${what ? `: ${what}` : ""}`];
}

function plural(n: number): string {
  return `${n} dead letter${n === 1 ? "" : "s"}`;
}

/**
 * A memory flow's dead letters, from the JSONL file adapters/sinks/jsonl_dead_letters.ts
 * writes: `{time, stage, reason, attempts, item}` per line. No file: none.
 */
export async function readJsonlDeadLetters(
  path: string,
  opts: { stage?: string; limit?: number } = {},
): Promise<DlqEntry[]> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  const out: DlqEntry[] = [];
  const limit = opts.limit ?? Infinity;
  // Line by line: read whole, a file past about 512 MB failed with a stack trace.
  try {
    for await (const { text: line, n } of fileLines(file)) {
      if (out.length >= limit) break;
      if (!line.trim()) continue;
      let entry: DlqEntry;
      try {
        const d = JSON.parse(line);
        entry = {
          id: `line ${n}`,
          stage: String(d.stage ?? ""),
          reason: String(d.reason ?? ""),
          attempts: Number(d.attempts ?? 0),
          time: String(d.time ?? ""),
          item: d.item ?? null,
          // A line that parses but is no letter (items a sink wrote here, say): said what it lacks.
          ...(d.item == null ? { problem: "line has no item: not a dead letter" } : {}),
        };
      } catch (error) {
        entry = {
          id: `line ${n}`,
          stage: "",
          reason: "",
          attempts: 0,
          time: "",
          item: null,
          problem: `line does not parse: ${(error as Error).message}`,
        };
      }
      if (opts.stage === undefined || entry.stage === opts.stage) out.push(entry);
    }
  } finally {
    file.close();
  }
  return out;
}

/**
 * What `dlq replay` skipped, a line per stage and reason: one letter by
 * its id, several by their count and first and last ids. A line per letter
 * buried the hint that follows under thousands of the same words.
 */
export function skippedLines(skipped: ReplayResult["skipped"]): string[] {
  const groups = new Map<string, ReplayResult["skipped"]>();
  for (const s of skipped) {
    const key = `${s.stage}\n${s.reason}`;
    const group = groups.get(key);
    if (group) group.push(s);
    else groups.set(key, [s]);
  }
  return [...groups.values()].map((group) => {
    const { stage, reason } = group[0];
    if (group.length === 1) return `skipped ${group[0].id} (${stage || "?"}): ${reason}`;
    return `skipped ${group.length} dead letters (${stage || "?"}), ${group[0].id} to ` +
      `${group[group.length - 1].id}: ${reason}`;
  });
}

/** A millrace command on `flow` as its person types it (typedCommand); FLOW for a flow with no file. */
function forFlow(flow: Flow, args: string): string {
  return flow.file ? typedCommand(args, flow.file) : typedCommand(`${args} FLOW`.trim());
}
