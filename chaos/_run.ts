/**
 * Runs one scenario within a deadline: starts its cluster, lets it inject
 * its faults, waits for the flow to drain, verifies the outputs, and stops
 * every process it started whatever happened. A run that does not drain by
 * the deadline is a "hang": its workers are killed and what they left is
 * verified all the same.
 */
import { Cluster } from "./_cluster.ts";
import { pgUnreachable } from "./_postgres.ts";
import type { Mode, RunExtras, Scenario } from "./_scenario.ts";
import { verify } from "./_verify.ts";

export type Status = "pass" | "FAIL" | "hang" | "error" | "skip";

export interface Result {
  scenario: string;
  status: Status;
  items: number;
  lost: number;
  duplicates: number;
  stuck: number;
  deadLettersExpected: number;
  deadLetters: number;
  peakRssMiB: number;
  /** Worst seconds from a fault's end to the next published item; null when not measured. */
  recoverSecs: number | null;
  secs: number;
  /** Worker exits nobody asked for. */
  crashes: number;
  notes: string[];
}

const inCI = Deno.env.get("CI") === "true";

/** The cluster of the scenario running now, for an interrupt to stop. */
let current: Cluster | undefined;

/** Stops every process the running scenario started (on SIGINT / SIGTERM). */
export async function closeCurrent(): Promise<void> {
  await current?.close();
}

/**
 * Runs `s` once; with `keep`, a run that does not pass leaves its directory
 * (Redis's files, the flow file, the output, each worker's log) and says where.
 */
export async function runScenario(
  s: Scenario,
  mode: Mode,
  deadlineMs: number,
  keep = false,
): Promise<Result> {
  const started = performance.now();
  const base: Result = {
    scenario: s.name,
    status: "pass",
    items: 0,
    lost: 0,
    duplicates: 0,
    stuck: 0,
    deadLettersExpected: 0,
    deadLetters: 0,
    peakRssMiB: 0,
    recoverSecs: null,
    secs: 0,
    crashes: 0,
    notes: [],
  };
  if (s.needsPostgres) {
    const why = await pgUnreachable();
    if (why !== undefined) {
      return { ...base, status: inCI ? "error" : "skip", notes: [`Postgres: ${why}`] };
    }
  }
  const dir = await Deno.makeTempDir({ prefix: `millrace-chaos-${s.name}-` });
  const c = new Cluster(`chaos-${s.name}`, dir, mode.fuse ?? false);
  current = c;
  let status: Status = "pass";
  const notes: string[] = [];
  let kept = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    let extras: RunExtras | void = undefined;
    const work = (async () => {
      extras = await s.run(c, mode);
      await c.drained();
      return "drained" as const;
    })();
    const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), deadlineMs));
    const outcome = await Promise.race([work, late]);
    if (outcome === "late") {
      status = "hang";
      notes.push(`not drained after ${deadlineMs / 1000} s`);
    }
    c.stop.abort();
    // Its loops end on the abort; a step stuck past that is left behind.
    const failed = await Promise.race([
      work.then(() => undefined, (e) => e instanceof Error ? e.message : String(e)),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000)),
    ]);
    if (failed !== undefined) {
      status = "error";
      notes.push(`scenario: ${failed}`);
    }
    await c.killWorkers();
    const r = c.redis ? await verifyCluster(c, extras) : undefined;
    const crashes = c.crashes.length;
    if (crashes > 0) notes.push(`crashes: ${[...new Set(c.crashes)].slice(0, 3).join(", ")}`);
    if (r) {
      notes.push(...r.samples);
      if (s.copiesMayRepeat && r.copies > 0) {
        r.duplicates -= r.copies;
        notes.push(`(allowed here: ${s.copiesMayRepeat})`);
      }
      if (status === "pass" && (r.lost || r.duplicates || r.stuck)) status = "FAIL";
    }
    if (keep && status !== "pass") {
      kept = true;
      notes.push(`kept in ${dir}`);
    }
    return {
      ...base,
      ...(r ?? {}),
      status,
      items: c.expected?.emitted ?? 0,
      peakRssMiB: c.peakRssMiB,
      recoverSecs: c.recoverSecs ?? null,
      secs: (performance.now() - started) / 1000,
      crashes,
      notes: [...c.notes.map((n) => typeof n === "string" ? n : n()), ...notes],
    };
  } catch (error) {
    notes.push(error instanceof Error ? error.message : String(error));
    return { ...base, status: "error", secs: (performance.now() - started) / 1000, notes };
  } finally {
    clearTimeout(timer);
    await c.close(kept);
    current = undefined;
  }
}

async function verifyCluster(c: Cluster, extras: RunExtras | void) {
  c.redis.signal("SIGCONT");
  const second = extras?.secondSink ? await extras.secondSink() : undefined;
  return await verify(c.admin(), c.name, c.jsonlPath, c.expected, second);
}
