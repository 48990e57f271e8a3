import type { Flow } from "../engine/flow.ts";
import type { FlowWarning } from "./short_retention.ts";

/**
 * A pipeline with no publish stage, which `check` and the start of a run
 * warn of: what leaves its last stage is counted published and written
 * nowhere. Not an error: a flow under test may mean it (runTestFlow collects
 * what leaves the pipeline), but a run said "10 published, output in out/t/"
 * and wrote nothing.
 */
export function noPublish(flow: Flow): FlowWarning[] {
  if (flow.pipeline.some((stage) => stage.kind === "publish")) return [];
  return [{
    ...flow.locate?.(["pipeline"], "key"),
    message: "the pipeline has no publish stage: what leaves it is counted published and " +
      "written nowhere; end it with a publish stage, such as - publish: [ { jsonl: { path: " +
      "items.jsonl } } ]",
  }];
}
