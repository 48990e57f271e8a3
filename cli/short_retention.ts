import type { Flow } from "../engine/flow.ts";

/** A warning about a flow file that loads (`check` and a run's start say it), and where it points. */
export interface FlowWarning {
  line?: number;
  column?: number;
  message: string;
}

/**
 * Settings that load but work against each other, which `check` and the
 * start of a run warn of: a publish stage's `retention` shorter than the
 * `ttl` of a dedupe stage before it that merges (the default). The
 * Deduper still remembers a story that retention removed, so a later copy
 * of it goes out as a merge update, and Postgres keeps a row of the merged
 * fields alone (title and vector null) for another retention period.
 */
export function shortRetentions(flow: Flow): FlowWarning[] {
  const out: FlowWarning[] = [];
  flow.pipeline.forEach((stage, i) => {
    if (stage.kind !== "publish") return;
    const retention = (stage.config as { retention?: unknown } | undefined)?.retention;
    if (typeof retention !== "number") return;
    for (const dedupe of flow.pipeline.slice(0, i)) {
      if (dedupe.kind !== "dedupe") continue;
      const { ttl, merge } = (dedupe.config ?? {}) as { ttl?: unknown; merge?: unknown };
      if (merge === false || typeof ttl !== "number" || ttl <= retention) continue;
      out.push({
        ...flow.locate?.(["pipeline", i, "publish", "retention"], "value"),
        message: `pipeline.${stage.id}.retention (${duration(retention)}) is shorter than ` +
          `${dedupe.id}'s ttl (${duration(ttl)}): a later copy of a story retention removed ` +
          `goes out as a merge update, and a sink keeps what it carries alone (in Postgres, a ` +
          `row of the merged fields, title and vector null); set ${dedupe.id}'s ttl to ` +
          `${duration(retention)} or less (README, "Retention")`,
      });
    }
  });
  return out;
}

/** A flow file's duration units, largest first. */
const UNITS: readonly [string, number][] = [
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["m", 60_000],
  ["s", 1000],
];

/** Ms as a flow file would write them: the largest unit that divides them. */
export function duration(ms: number): string {
  const unit = UNITS.find(([, size]) => ms >= size && ms % size === 0);
  return unit ? `${ms / unit[1]}${unit[0]}` : `${ms}ms`;
}
