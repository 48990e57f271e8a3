import type { BuiltFlow } from "./build_flow.ts";
import type { StageLoop } from "./stage_loop.ts";
import type { SourceStats } from "./stats.ts";

/**
 * What a mode gives the one flow runner (run_flow.ts): the built flow, one
 * stage loop per step with its edge, and the sources' pump. Memory and
 * Redis differ here and nowhere else.
 */
export interface Runtime {
  built: BuiltFlow;
  loops: StageLoop[];
  sources: SourceStats[];
  /** Items waiting on each stage's input channel, in pipeline order (memory; Redis asks Redis). */
  backlog?(): number[];
  /** Runs every source until it is done or the flow stops. */
  pump(): Promise<void>;
  /**
   * Resolves true once the flow has drained by itself (every source done,
   * nothing left on any edge), when the mode must watch for that (Redis:
   * other processes share the edges); memory edges close in cascade instead.
   */
  drained?: Promise<boolean>;
  /**
   * After the loops of a drained run ended: throws if the flow is no longer
   * drained (Redis came back without writes the drain check had counted).
   */
  confirmDrained?(): Promise<void>;
  /** A hard stop's work beyond the kill signal (abandon channels, end blocked reads). */
  kill(): void;
  /**
   * Items this process holds and has not finished, when the mode knows
   * better than the counters (Redis: the items of entries read and not
   * acknowledged, which a stage may have counted as emitted already).
   */
  inFlight?(): number;
  /** After every loop ended: closes connections. */
  close(): Promise<void>;
}
