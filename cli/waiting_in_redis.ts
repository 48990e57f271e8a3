import type { Flow } from "../engine/flow.ts";
import { closeRedis, connectRedis } from "../engine/redis/connection.ts";
import { untilAborted } from "../engine/until_aborted.ts";
import { type FlowStatus, flowStatus } from "./status.ts";

/** What waits on a durable flow's streams: entries, and about how many items they hold. */
export interface Waiting {
  /** Entries not yet read by their stage, or read and not acknowledged. */
  entries: number;
  /** Items in them, estimated from the mean size of each stream's last entries. */
  items: number;
  /**
   * Some stream's backlog Redis could not count (it restarted, or entries
   * were deleted): it is taken at its most (LaneStatus.lagAtMost), and the
   * figures are a ceiling.
   */
  atMost: boolean;
}

/**
 * The flow's waiting work as `status` counts it, every stage and lane: what
 * a stopped run leaves for the next one (or for the other processes running
 * the flow). A backlog Redis cannot count is taken at its most, and says
 * so (`atMost`): counted as one entry, a stop said 2 entries wait where
 * 1,700 did.
 */
export function waitingIn(status: FlowStatus): Waiting {
  let entries = 0;
  let items = 0;
  let atMost = false;
  for (const stage of status.stages) {
    for (const lane of stage.lanes) {
      if (lane.lag === null) atMost = true;
      const n = (lane.lag ?? lane.lagAtMost ?? 1) + lane.pending;
      entries += n;
      items += n * (lane.itemsPerEntry ?? 1);
    }
  }
  return { entries, items: Math.round(items), atMost };
}

/**
 * Asks the flow's Redis what waits, within `withinMs` from connecting to
 * the answer; undefined when Redis does not answer in time (a run stopped
 * during an outage must not hang on it) or fails.
 */
export async function waitingInRedis(flow: Flow, withinMs = 3000): Promise<Waiting | undefined> {
  const within = AbortSignal.timeout(withinMs);
  let redis;
  try {
    // Not cut short by `within`: a connection abandoned mid-connect could not be closed.
    redis = await connectRedis(flow.redis!, {
      name: `millrace:${flow.name}:stopped`,
      timeout: withinMs,
    });
    return waitingIn(await untilAborted(flowStatus(redis, flow, { sampleMs: 0 }), within));
  } catch {
    return undefined;
  } finally {
    // A server that stopped answering would hold a polite QUIT: give up on it soon.
    if (redis) await untilAborted(closeRedis(redis), AbortSignal.timeout(500)).catch(() => {});
  }
}
