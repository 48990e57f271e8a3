import type { Flow } from "../engine/flow.ts";
import type { Registry } from "../engine/registry.ts";
import { checkFlow } from "./check_flow.ts";
import type { FlowDefinition } from "./flow_schema.ts";

/**
 * Checks a flow built in code exactly as a flow file is checked (same
 * schema, same stage-order check), so a programmatic flow cannot skip what
 * YAML users are held to. Errors name the field's path; there is no line.
 * `opts.name` names the flow when `input` has no `name`. Its sources'
 * relative input files resolve against `opts.baseDir`, by default the
 * current directory; `output`, as in a flow file, against the current
 * directory.
 */
export function defineFlow(
  input: FlowDefinition,
  registry: Registry,
  opts: { baseDir?: string; name?: string } = {},
): Flow {
  const given = input !== null && typeof input === "object" && !Array.isArray(input)
    ? input as unknown as Record<string, unknown>
    : undefined;
  const named = given && given.name === undefined && opts.name !== undefined
    ? { ...given, name: opts.name }
    : input;
  const name = (named as { name?: unknown } | null)?.name;
  return checkFlow(named, registry, {
    label: typeof name === "string" ? `flow ${JSON.stringify(name)}` : "flow",
    baseDir: opts.baseDir ?? Deno.cwd(),
  });
}
