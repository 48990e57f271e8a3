/**
 * Where a durable flow keeps its state in Redis. Every key of one flow
 * carries the same hash tag `{<flow>}`, so on Redis Cluster they all live in
 * one slot and a stage can append, dead-letter and acknowledge in a single
 * MULTI/EXEC.
 *
 * Layout, with the default prefix "millrace":
 *
 *   millrace:{demo}:in:<stage>        stream feeding <stage> (normal lane); group "<stage>"
 *   millrace:{demo}:in:<stage>:high   stream feeding <stage> (high-priority lane); group "<stage>"
 *   millrace:{demo}:dlq               dead letters of every stage (stream)
 *   millrace:{demo}:lease:<source>    lease of a source: holder, PX expiry
 *   millrace:{demo}:fence:<source>    fencing token counter of a source
 *   millrace:{demo}:pos:<source>      a source's remembered position (JSON string)
 *   millrace:{demo}:done:<source>     set once a one-shot source has emitted everything
 *   millrace:{demo}:tick:<source>     the last cron tick a source was polled for (ms since epoch)
 *   millrace:{demo}:emitted:<source>  "<lease holder>#<n>": its last appended send (re-sends skip)
 *   millrace:{demo}:dedupe:<stage>:*  dedupe keys of a dedupe stage
 *   millrace:{demo}:stages            hash stage -> kind, written at start, read by `status`
 *   millrace:{demo}:pipeline          JSON list of "<stage>:<kind>" in flow order, written at
 *                                     start: a start of another version of the flow says so
 *   millrace:{demo}:configs           hash stage -> a fingerprint of its kind and config, as the
 *                                     last start had them: a stage under a new id is known
 *   millrace:{demo}:keyed             hash stage -> what its ids and state are keyed by (a
 *                                     Deduper's key fields), as the last start had it
 *   millrace:{demo}:passed            hash stage -> JSON list of the pipelines (stage ids in
 *                                     order) whose runs wrote what may wait on its input,
 *                                     each earlier one with the last entry per lane it may
 *                                     have written: what those items have been through
 *                                     (pipeline_edit.ts)
 *   millrace:{demo}:steps             hash stage -> the step that runs it (its first stage:
 *                                     the stage itself unless fused), written at start, read
 *                                     by `dlq replay`
 *   millrace:{demo}:host:<host>       per-host request bucket (GCRA: the theoretical arrival
 *                                     time in ms, Redis clock), shared by every process; PX
 *                                     expiry once idle (adapters/http/redis_host_buckets.ts)
 *   millrace:{demo}:history:<minute>  hash of one minute's counts (cli/history.ts), 25 h TTL
 *   millrace:{demo}:tries             hash <stage>:<lane>:<entry id> -> times a redelivered
 *                                     entry was started alone and never committed, and
 *                                     <stage>:<lane>:<entry id>:upTo -> items of an entry a
 *                                     window's batches committed before its end (redis_edge.ts)
 *
 * An entry on a stage stream has the fields
 *   b  JSON array of envelopes (a micro-batch)
 *   n  how many envelopes
 *   s  "1" on a half of a split entry (a suspect, run alone; see recovery.ts)
 * A dead-letter entry has the fields stage, reason, attempts, item (JSON envelope), time.
 */
export interface FlowKeys {
  /** The flow these keys belong to (the hash tag of every key). */
  readonly flow: string;
  /** First part of every key; `millrace` unless the flow sets `durable.prefix`. */
  readonly prefix: string;
  /** The stream feeding `stage`, on its normal lane by default. */
  input(stage: string, lane?: Lane): string;
  /** The dead-letter stream of every stage. */
  readonly dlq: string;
  /** Who holds a source (one process reads it at a time), with a PX expiry. */
  lease(source: string): string;
  /** A source's fencing token counter: a writer whose lease lapsed is refused. */
  fence(source: string): string;
  /** A source's remembered position (JSON), stored with each batch it emits. */
  position(source: string): string;
  /** Set once a one-shot source has emitted everything. */
  done(source: string): string;
  /** The last cron tick the source was polled for, in ms: a new holder polls none twice. */
  tick(source: string): string;
  /** The last send of a source that was appended: "<lease holder>#<n>". */
  emitted(source: string): string;
  /** Prefix of the keys of a dedupe stage. */
  dedupe(stage: string): string;
  /** The request bucket of one host (`example.com:8080`), shared by every process. */
  host(host: string): string;
  /** Hash stage id -> kind, written at start and read by `status`. */
  readonly stages: string;
  /** JSON list of "<stage>:<kind>" in flow order, written at start (see otherVersionReaders). */
  readonly pipeline: string;
  /** Hash stage id -> a fingerprint of its kind and config, as the last start had them. */
  readonly configs: string;
  /** Hash stage id -> what its ids and state are keyed by (StageSpec.keyedBy), as the last start had it. */
  readonly keyed: string;
  /** Hash stage id -> JSON list of the pipelines whose runs wrote what may wait on its input. */
  readonly passed: string;
  /**
   * List of JSON `{ at, order }`: each order of stages the flow started
   * with, from when (ms, Redis's clock), the last 100; `dlq replay` reads
   * it for the stages a dead letter's item had passed when it was written.
   */
  readonly orders: string;
  /** Hash stage id -> the id of the step that runs it, written at start, read by `dlq replay`. */
  readonly steps: string;
  /** Hash of how many times each redelivered entry was started alone and never committed. */
  readonly tries: string;
  /** One minute's counts for the dashboard (minute = ms since epoch / 60000). */
  history(minute: number): string;
  /** The field of `tries` that counts one entry's crashed attempts. */
  tryField(stage: string, lane: Lane, entryId: string): string;
  /** The field of `tries` that holds how many of an entry's items its step committed. */
  upToField(stage: string, lane: Lane, entryId: string): string;
}

/** Each stage input has two streams: `high` (for `priority: high` sources) is read first. */
export type Lane = "normal" | "high";

/** Both lanes of an edge, the high one first: the order every step reads them in. */
export const LANES: readonly Lane[] = ["high", "normal"];

/** The keys of `flow` under `prefix`, all in one Redis Cluster slot. */
export function flowKeys(flow: string, prefix = "millrace"): FlowKeys {
  const base = `${prefix}:{${flow}}`;
  return {
    flow,
    prefix,
    input: (stage, lane = "normal") => `${base}:in:${stage}${lane === "high" ? ":high" : ""}`,
    dlq: `${base}:dlq`,
    lease: (source) => `${base}:lease:${source}`,
    fence: (source) => `${base}:fence:${source}`,
    position: (source) => `${base}:pos:${source}`,
    done: (source) => `${base}:done:${source}`,
    tick: (source) => `${base}:tick:${source}`,
    emitted: (source) => `${base}:emitted:${source}`,
    dedupe: (stage) => `${base}:dedupe:${stage}`,
    host: (host) => `${base}:host:${host}`,
    stages: `${base}:stages`,
    pipeline: `${base}:pipeline`,
    configs: `${base}:configs`,
    keyed: `${base}:keyed`,
    passed: `${base}:passed`,
    orders: `${base}:orders`,
    steps: `${base}:steps`,
    tries: `${base}:tries`,
    history: (minute) => `${base}:history:${minute}`,
    tryField: (stage, lane, entryId) => `${stage}:${lane}:${entryId}`,
    upToField: (stage, lane, entryId) => `${stage}:${lane}:${entryId}:upTo`,
  };
}
