import { join, relative, resolve } from "node:path";
import { FlowError, loadFlow } from "../config/load_flow.ts";
import type { LogFormat } from "../engine/log.ts";
import { testRegistry, testSinkNames } from "../testing.ts";
import { type Paint, showDifference } from "../testing/expect.ts";
import { runFlowTestCase } from "../testing/run_flow_test.ts";
import { checkAgainstFlow, type FlowTestFile, loadFlowTest } from "../testing/test_file.ts";
import type { Flow } from "../engine/flow.ts";
import type { Registry } from "../engine/registry.ts";
import { UsageError } from "./args.ts";
import { printError } from "./print_error.ts";
import { shownFlowError, shownPath } from "./user_dir.ts";

/**
 * `deno task run test PATH...`: runs every case of every `*.test.yaml` file
 * under each directory (or each file named), one line per case, and a diff
 * per failing case. Exit code 0 when all passed, 1 when a case failed, 2
 * when a test file (or its flow) is bad: those are reported and the other
 * files still run.
 */
export async function testCommand(paths: string[], format: LogFormat): Promise<number> {
  const files = (await Promise.all(paths.map(testFiles))).flat();
  if (files.length === 0) {
    throw new UsageError(`no *.test.yaml files in ${paths.map(shownPath).join(", ")}`);
  }
  const paint = painter();
  let passed = 0, failed = 0, bad = 0;
  for (const file of files) {
    const registry = testRegistry();
    let test, flow;
    try {
      ({ test, flow } = await loadTestedFlow(file, registry));
    } catch (error) {
      if (!(error instanceof FlowError)) throw error;
      bad++;
      printError(format, shownFlowError(error));
      continue;
    }
    for (const c of test.cases) {
      const where = `${shownPath(file)}${c.line ? `:${c.line}` : ""}`;
      let result;
      try {
        result = await runFlowTestCase(flow, c, registry);
      } catch (error) {
        // The flow could not start or a stage broke: this case fails, the others still run.
        failed++;
        console.log(`${paint.red("FAIL")} ${where} › ${c.name}`);
        console.log(`  the flow failed: ${error instanceof Error ? error.message : error}`);
        continue;
      }
      const took = `(${(result.durationMs / 1000).toFixed(1)}s)`;
      if (result.differences.length === 0) {
        passed++;
        console.log(`${paint.green("ok  ")} ${where} › ${c.name} ${took}`);
        continue;
      }
      failed++;
      console.log(`${paint.red("FAIL")} ${where} › ${c.name} ${took}`);
      for (const d of result.differences) console.log(showDifference(d, paint));
    }
  }
  const parts = [`${passed} passed`, `${failed} failed`];
  if (bad) parts.push(`${bad} bad test file${bad === 1 ? "" : "s"}`);
  console.log(`${parts.join(", ")} (${files.length} file${files.length === 1 ? "" : "s"})`);
  return bad ? 2 : failed ? 1 : 0;
}

/**
 * A test file and the flow it tests, loaded and held to each other as
 * `test` runs them (the names of sources, sinks and stages the cases use):
 * `check` of a test file asks the same, so the two agree.
 */
export async function loadTestedFlow(
  file: string,
  registry: Registry = testRegistry(),
): Promise<{ test: FlowTestFile; flow: Flow }> {
  const test = await loadFlowTest(file);
  const flow = await loadFlow(test.flowFile, registry, Deno.env.toObject(), { inputs: false });
  checkAgainstFlow(test, flow, testSinkNames(flow));
  return { test, flow };
}

/** The test files a path stands for: itself, or every `*.test.yaml` under it, sorted. */
async function testFiles(path: string): Promise<string[]> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw new UsageError(`${shownPath(path)} does not exist`);
  }
  if (!info.isDirectory) return [path];
  const found: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const full = join(dir, entry.name);
      if (entry.isDirectory && !entry.name.startsWith(".")) await walk(full);
      else if (entry.isFile && /\.test\.ya?ml$/.test(entry.name)) found.push(full);
    }
  };
  await walk(path);
  return found.sort((a, b) => relative(path, a).localeCompare(relative(path, b)))
    .map((f) => resolve(f));
}

/** Colour only on a terminal, and never when NO_COLOR is set (no-color.org). */
function painter(): Paint {
  const on = Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR");
  const wrap = (code: number) => (s: string) => on ? `\x1b[${code}m${s}\x1b[39m` : s;
  return { red: wrap(31), green: wrap(32) };
}
