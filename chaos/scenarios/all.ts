/** Every scenario, in the order they run. */
import type { Scenario } from "../_scenario.ts";
import { aofCut } from "./aof_cut.ts";
import { clientKill } from "./client_kill.ts";
import { embedFaults } from "./embed_faults.ts";
import { execLost } from "./exec_lost.ts";
import { pgKill } from "./pg_kill.ts";
import { pgSlow } from "./pg_slow.ts";
import { poisonCrash } from "./poison_crash.ts";
import { poisonThrow } from "./poison_throw.ts";
import { redisKill } from "./redis_kill.ts";
import { redisStop } from "./redis_stop.ts";
import { scale } from "./scale.ts";
import { trimPaused } from "./trim_paused.ts";
import { workerKill } from "./worker_kill.ts";

export const SCENARIOS: Scenario[] = [
  workerKill,
  redisKill,
  aofCut,
  redisStop,
  clientKill,
  execLost,
  poisonThrow,
  poisonCrash,
  trimPaused,
  scale,
  pgSlow,
  pgKill,
  embedFaults,
];
