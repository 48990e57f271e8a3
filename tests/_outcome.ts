import type { Actor, Outcome, StageContext } from "../engine/actor.ts";
import type { Envelope } from "../engine/item.ts";
import { memoryLogger } from "../engine/log.ts";
import { type BuildEnv, Registry, type StageSpec } from "../engine/registry.ts";

/** Everything an actor reported, in order, per kind. */
export interface Collected<O> {
  out: Outcome<O>;
  emitted: Envelope<O>[];
  /** `reason` is the full message (the detail when given); `label` what summaries count by. */
  dropped: { item: Envelope<unknown>; reason: string; label: string }[];
  rejected: { item: Envelope<unknown>; reason: string; label: string }[];
}

/** An Outcome that keeps what it is told. */
export function collector<O = unknown>(): Collected<O> {
  const c: Collected<O> = {
    emitted: [],
    dropped: [],
    rejected: [],
    out: {
      emit: (item) => void c.emitted.push(item),
      drop: (item, label, detail) => void c.dropped.push({ item, reason: detail ?? label, label }),
      reject: (item, label, detail) =>
        void c.rejected.push({ item, reason: detail ?? label, label }),
    },
  };
  return c;
}

let tempDir: string | undefined;

/** A BuildEnv whose base and output directory is one temp directory per test process. */
export function testEnv(): BuildEnv {
  tempDir ??= Deno.makeTempDirSync({ prefix: "millrace-test-" });
  return {
    flow: "test",
    baseDir: tempDir,
    outDir: tempDir,
    log: memoryLogger(),
    registry: new Registry(),
  };
}

export function testContext(stage: string): StageContext {
  return { flow: "test", stage, signal: new AbortController().signal, log: memoryLogger() };
}

/** Builds a stage the way a flow does: its schema parses the raw config, then `create`. */
export async function createStage<I, O>(
  spec: StageSpec,
  rawConfig: unknown = {},
): Promise<Actor<I, O>> {
  const env = testEnv();
  const schema = typeof spec.schema === "function" ? spec.schema(env.registry) : spec.schema;
  return await spec.create(schema.parse(rawConfig), env) as Actor<I, O>;
}

/** Runs one batch through an actor and returns what it reported. */
export async function run<I, O>(
  actor: Actor<I, O>,
  batch: readonly Envelope<I>[],
  stage = "stage",
): Promise<Collected<O>> {
  const c = collector<O>();
  await actor.handle(batch, c.out, testContext(stage));
  return c;
}
