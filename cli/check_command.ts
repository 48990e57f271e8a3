import { resolve } from "node:path";
import { type LogFormat, printOut } from "../engine/log.ts";
import type { Registry } from "../engine/registry.ts";
import { FlowError, FlowTestFileError, loadFlow } from "../config/load_flow.ts";
import { loadTestedFlow } from "./test_command.ts";
import { printError } from "./print_error.ts";
import { shownFlowError, shownPath, shownPlace, typedCommand } from "./user_dir.ts";
import { unreachableUrls } from "./unreachable_urls.ts";
import { shortRetentions } from "./short_retention.ts";
import { noPublish } from "./no_publish.ts";
import { unusedRedis } from "./unused_redis.ts";

/**
 * `deno task run check FLOW...`: loads each flow file without running it and
 * prints its sources and stages; every file is checked, so one bad file does
 * not hide the next. Exit code 2 if any failed.
 */
export async function checkCommand(
  files: string[],
  registry: Registry,
  format: LogFormat,
): Promise<number> {
  let failed = 0;
  for (const file of files) {
    try {
      const flow = await loadFlow(file, registry);
      const stages = flow.pipeline.map((s) => s.id).join(" → ");
      const sources = flow.sources.map((s) => `${s.name} (${s.kind})`).join(", ");
      printOut(`${shownPath(file)}: ok: flow ${flow.name}, ${flow.durability} edges`);
      printOut(`  sources: ${sources}\n  pipeline: ${stages}`);
      // Not an error: the flow loads, and a test may mean to see the refusal.
      const warnings = [
        ...unreachableUrls(flow).map((w) => ({
          ...w,
          message: `${w.message}; every fetch of it will be refused`,
        })),
        ...shortRetentions(flow),
        ...noPublish(flow),
        ...unusedRedis(flow),
      ];
      for (const w of warnings) printOut(`  warning: ${shownPlace(file, w)}${w.message}`);
    } catch (error) {
      if (!(error instanceof FlowError)) throw error;
      if (error instanceof FlowTestFileError) {
        // Checked as a test, whose own problems are said: not as a flow besides.
        if (!await testFileOk(file, format, files)) failed++;
        continue;
      }
      failed++;
      printError(format, shownFlowError(error));
    }
  }
  if (files.length > 1) {
    printOut(`${files.length - failed} of ${files.length} flow files ok`);
  }
  return failed ? 2 : 0;
}

/**
 * Checks a flow's test file given among flow files (`check flows/*.yaml`
 * takes demo.test.yaml too) as `test` reads it, with the flow it tests,
 * saying ok or its problems: a case naming a sink the flow does not have
 * passed `check` and failed `test`.
 */
async function testFileOk(file: string, format: LogFormat, files: string[]): Promise<boolean> {
  try {
    const { test } = await loadTestedFlow(file);
    printOut(
      `${shownPath(file)}: ok: a test of ${shownPath(test.flowFile)}, ${test.cases.length} ` +
        `case${test.cases.length === 1 ? "" : "s"} (run them with \`${
          typedCommand("test", file)
        }\`)`,
    );
    return true;
  } catch (error) {
    if (!(error instanceof FlowError)) throw error;
    const flowFile = error.file === undefined ? undefined : resolve(error.file);
    if (flowFile !== resolve(file) && files.some((f) => resolve(f) === flowFile)) {
      // The flow it tests is among the files checked, and its errors are said there.
      printError(
        format,
        new Error(
          `${shownPath(file)}: its cases are not checked: the flow it tests, ` +
            `${shownPath(error.file!)}, does not load (its errors are said with it)`,
        ),
      );
      return false;
    }
    printError(format, shownFlowError(error));
    return false;
  }
}
