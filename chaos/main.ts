/**
 * deno task chaos: a bounded, self-stopping fault run over loopback. Each
 * scenario starts its own redis-server and worker processes (the test
 * worker of tests/engine/redis/_worker.ts), injects its faults, waits for
 * the flow to drain and reports lost, duplicated and stuck items, dead
 * letters, the workers' peak RSS and the time to recover. Exit 1 when any
 * scenario does not pass.
 *
 *   deno task chaos [--short] [--fuse | --fuse-all] [--only NAME[,NAME]] [--runs N] [--keep] [--json]
 *
 * `--fuse` runs every flow with `durable: { fuse: true }`, `--fuse-all` with
 * `fuse: all` (the whole pipeline one step); `--keep` leaves the
 * directory of a run that does not pass (Redis's files, output, worker logs).
 */
import { parseArgs } from "node:util";
import { formatTable } from "./_report.ts";
import { closeCurrent, type Result, runScenario } from "./_run.ts";
import { SCENARIOS } from "./scenarios/all.ts";

const USAGE =
  "deno task chaos [--short] [--fuse | --fuse-all] [--only NAME[,NAME]] [--runs N] [--keep] [--json]";

/** A command line this cannot run: one line and exit 2, as `deno task run` does, not a stack. */
function refuse(why: string): never {
  console.error(`error: ${why}\n${USAGE}`);
  Deno.exit(2);
}

const { values } = (() => {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        short: { type: "boolean", default: false },
        fuse: { type: "boolean", default: false },
        "fuse-all": { type: "boolean", default: false },
        only: { type: "string" },
        runs: { type: "string", default: "1" },
        json: { type: "boolean", default: false },
        keep: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    });
  } catch (error) {
    // "Unknown option '--shrt'": node:util's TypeError went up as a stack.
    return refuse((error as Error).message.split("\n")[0]);
  }
})();

if (values.help) {
  console.log(USAGE + "\n");
  for (const s of SCENARIOS) console.log(`  ${s.name.padEnd(14)} ${s.about}`);
  Deno.exit(0);
}

const names = values.only?.split(",").map((n) => n.trim()).filter(Boolean);
const unknown = names?.filter((n) => !SCENARIOS.some((s) => s.name === n)) ?? [];
if (unknown.length > 0) {
  refuse(`unknown scenario: ${unknown.join(", ")} (see --help)`);
}
const selected = names ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS;
const mode = { short: values.short, fuse: values["fuse-all"] ? "all" as const : values.fuse };
// A drained short run takes 5-25 s, a long one 1-3 min; a hang is cut at the deadline.
const deadlineMs = mode.short ? 60_000 : 300_000;
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  refuse(`--runs takes a positive whole number, got "${values.runs}"`);
}

// Interrupted: stop what the running scenario started before leaving.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => closeCurrent().finally(() => Deno.exit(130)));
}

const results: Result[] = [];
for (let run = 1; run <= runs; run++) {
  for (const s of selected) {
    if (!values.json) console.error(`chaos: ${s.name} (run ${run}/${runs})...`);
    const r = await runScenario(s, mode, deadlineMs, values.keep);
    results.push(r);
    if (!values.json) console.error(`chaos: ${formatTable([r]).split("\n")[2]}`);
  }
}

if (values.json) console.log(JSON.stringify(results, null, 2));
else {
  console.log(
    `\n## chaos (${mode.short ? "short" : "long"} mode${
      mode.fuse === "all" ? ", fuse: all" : mode.fuse ? ", fused" : ""
    }, ${runs} run(s))\n`,
  );
  console.log(formatTable(results));
}
const ok = results.every((r) => r.status === "pass" || r.status === "skip");
Deno.exit(ok ? 0 : 1);
