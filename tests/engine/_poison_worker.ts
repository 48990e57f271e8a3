/** The stage worker of tests/engine/_poison_stage.ts's registry. */
import { serveStage } from "../../engine/stage_host.ts";
import { poisonRegistry } from "./_poison_stage.ts";

serveStage(poisonRegistry());
