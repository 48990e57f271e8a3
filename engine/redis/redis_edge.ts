import type { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import { sleep } from "../backoff.ts";
import { type DeadLetter, UNENCODABLE } from "../dead_letters.ts";
import type { Commit, Delivery, Edge, Fence } from "../edge.ts";
import type { Envelope } from "../item.ts";
import type { WindowOptions } from "../window.ts";
import { decodeEntry, type EncodedEntry, encodeEntries, type StreamEntry } from "./codec.ts";
import { APPLIED, commitArgs, keepFor, runCommit } from "./commit.ts";
import type { FlowKeys, Lane } from "./keys.ts";
import { backlog } from "./redis_info.ts";
import { BacklogGauge } from "./backlog_gauge.ts";
import { claimLoop, leaveGroup, trimLoop } from "./recovery.ts";
import type { RedisRefusedError } from "./no_permission.ts";
import { heartbeatLoop, markHeld } from "./heartbeat.ts";
import { untilRedis } from "./until_redis.ts";
import { unencodableLetter } from "./redis_dead_letters.ts";
import { untilAborted } from "../until_aborted.ts";
import { type DurableStepRun, LANES, unparsable } from "./step_run.ts";

const utf8 = new TextDecoder();

type Item = Envelope<unknown>;

/** A stream entry read by a step. */
export interface RedisDelivery extends Delivery {
  readonly lane: Lane;
  readonly entry: StreamEntry;
  /** `drops.count` when it was last known to be pending to this consumer. */
  seen: number;
  /** Found no longer pending to this consumer (see RedisEdge.fence). */
  vanished?: true;
  /**
   * Set once a batch ended in its middle, or when it was claimed with some
   * of it done: the progress this process last recorded or read for it in
   * `tries` (0 while none was). It is then acknowledged only while this
   * consumer holds it and the record is still that, by a commit that
   * deletes the record.
   */
  upTo?: number;
}

/** Creates the step's consumer groups (from the start of the stream) if missing. */
export async function ensureGroups(redis: Redis, keys: FlowKeys, stage: string): Promise<void> {
  for (const lane of LANES) {
    try {
      await redis.xgroup("CREATE", keys.input(stage, lane), stage, "0", "MKSTREAM");
    } catch (error) {
      if (!String((error as Error).message).includes("BUSYGROUP")) throw error;
    }
  }
}

/**
 * How long one XREADGROUP blocks on an empty input: bounds how late a step
 * notices a stop (a drained flow ends that much after its last item) and
 * entries the claim loop took over for it. An idle step then reads four
 * times a second, which costs Redis next to nothing.
 */
const READ_BLOCK_MS = 250;

/** How long a clean close waits to leave its consumer groups. */
const LEAVE_WITHIN_MS = 1_000;

/**
 * The durable edge of one step: its input streams (a normal and a high
 * lane) read through the step's consumer group. A commit appends outputs to
 * the next step's stream, appends dead letters and acknowledges the input
 * in one script (commit.ts), all or nothing and never twice. Behind the
 * seam it owns recovery (claiming entries of silent consumers, the delivery
 * cap, tries, splitting an entry that crashes its processes), renewing
 * the entries it holds (heartbeat.ts), trimming, and
 * backpressure on the next step's backlog.
 */
export class RedisEdge implements Edge<RedisDelivery> {
  readonly run: DurableStepRun;
  readonly #claimed: RedisDelivery[] = [];
  /** A right the Redis user lacks, found by the claim or trim loop: read() throws it. */
  #refused?: RedisRefusedError;
  readonly #background: Promise<void>[];
  /** Ends the claim and trim loops when the stage loop is done, also when it failed. */
  readonly #closed = new AbortController();
  readonly #entriesPerRead: number;
  readonly #outItems: number;
  /** The next step's backlog (see #roomDownstream). */
  readonly #next: BacklogGauge;
  /** The connection drops counted when this consumer's own pending entries were last read back. */
  #ownReadAt = 0;
  /** Whether this step said it pauses for Redis and not yet that it resumes (untilRedis). */
  readonly #paused = { said: false };

  constructor(run: Omit<DurableStepRun, "held">) {
    this.run = { ...run, held: new Map() };
    const { step, options } = this.run;
    this.#entriesPerRead = Math.max(
      1,
      Math.ceil((step.window?.size ?? options.entryItems) / options.entryItems),
    );
    this.#outItems = entrySize(options.entryItems, step.nextWindow);
    this.#next = new BacklogGauge(() =>
      this.#retrying("backlog check", () => backlog(this.run.redis, this.run.keys, step.next!))
    );
    const refused = (error: RedisRefusedError) => this.#refused ??= error;
    const claimed = {
      push: ({ lane, entries }: { lane: Lane; entries: StreamEntry[] }) => {
        for (const entry of entries) this.#claimed.push(this.#delivery(lane, entry, true));
      },
      refused,
    };
    const background = { ...this.run, stop: AbortSignal.any([run.stop, this.#closed.signal]) };
    this.#background = [
      claimLoop(background, claimed),
      trimLoop(background, refused),
      // Through a drain too: what is held then is being finished, not abandoned.
      heartbeatLoop({ ...this.run, stop: AbortSignal.any([run.kill, this.#closed.signal]) }),
    ];
  }

  async read(timeoutMs?: number): Promise<RedisDelivery[] | "timeout" | undefined> {
    const { stop, kill } = this.run;
    for (;;) {
      kill.throwIfAborted();
      // A right the claim or trim loop found missing ends the run, as one a read meets does.
      if (this.#refused) throw this.#refused;
      if (this.#claimed.length > 0) {
        return await this.#usable(await this.#resumed(this.#claimed.splice(0)));
      }
      if (stop.aborted) return undefined;
      if (this.run.drops.count !== this.#ownReadAt) {
        const orphans = await this.#usable(await this.#readOwnPending());
        if (orphans.length > 0) return orphans;
      }
      if (!(await this.#roomDownstream())) {
        await sleep(Math.min(100, timeoutMs ?? 100), stop);
        if (timeoutMs !== undefined) return "timeout";
        continue;
      }
      const block = Math.max(1, Math.min(READ_BLOCK_MS, timeoutMs ?? Infinity));
      const read = await this.#usable(await this.#readEntries(block));
      if (read.length > 0) return read;
      if (timeoutMs !== undefined) return "timeout";
    }
  }

  /**
   * Redelivered entries (and suspects) run alone, each counted in `tries`
   * before it starts; the count is cleared in the commit that acknowledges
   * it. An entry of several items that was already started alone and never
   * finished holds an item that kills its process: it is split in halves
   * instead of run again, so the crash is narrowed down to that item, as a
   * throwing item is, and its entry-mates go on.
   */
  async alone(d: RedisDelivery, handle: () => Promise<void>): Promise<void> {
    const { keys, step } = this.run;
    const field = keys.tryField(step.id, d.lane, d.entry.id);
    await this.run.alone(async () => {
      const tries = await this.#retrying(
        "claim",
        () => this.run.redis.hincrby(keys.tries, field, 1),
      );
      if (tries > 1 && d.items.length > 1) await this.#split(d, field);
      else await handle();
    });
  }

  /**
   * While no connection of this process has dropped since the deliveries
   * were read, they are held and the items pass as they are. After a drop,
   * Redis may have come back without its last writes: each delivery is
   * checked (XPENDING, this consumer) once per drop, and the items of those
   * no longer pending are left out, so no stage acts on them. Their entry is
   * gone (the source sends its items again), or it is there undelivered
   * (it is read again), or another consumer claimed it: it is not this
   * batch's any more. Nothing is acknowledged for them: commit leaves them
   * out (its script's check, pending to anyone, would not).
   */
  fence(deliveries: readonly RedisDelivery[]): Fence {
    return (items) => {
      const drops = this.run.drops.count;
      if (deliveries.every((d) => d.seen === drops && !d.vanished)) return items;
      return this.#stillHeld(deliveries).then(() => {
        if (!deliveries.some((d) => d.vanished)) return items;
        // A vanished delivery's own items, and what a fused stage made of
        // them (same event). An event a held delivery of the batch carries
        // too (the same items done again after Redis lost the first go) is
        // kept: it cannot be told apart, and losing it would lose the item.
        const goneItems = new Set<Item>();
        const goneEvents = new Set<string>();
        for (const d of deliveries) {
          if (!d.vanished) continue;
          for (const item of d.items) {
            goneItems.add(item);
            goneEvents.add(item.event);
          }
        }
        for (const d of deliveries) {
          if (!d.vanished) { for (const item of d.items) goneEvents.delete(item.event); }
        }
        return items.filter((item) => !goneItems.has(item) && !goneEvents.has(item.event));
      });
    };
  }

  /** Marks the deliveries no longer pending to this consumer `vanished`; until no drop came meanwhile. */
  async #stillHeld(deliveries: readonly RedisDelivery[]): Promise<void> {
    const { redis, keys, step, consumer, drops } = this.run;
    for (;;) {
      const at = drops.count;
      const look = deliveries.filter((d) => !d.vanished && d.seen !== at);
      if (look.length === 0) return;
      const found = await this.#retrying("pending check", async () => {
        const p = redis.pipeline();
        for (const d of look) {
          p.xpending(keys.input(step.id, d.lane), step.id, d.entry.id, d.entry.id, 1, consumer);
        }
        const replies = (await p.exec()) ?? [];
        return replies.map(([error, reply]) => {
          if (error) throw error;
          return (reply as unknown[]).length > 0;
        });
      });
      if (drops.count !== at) continue; // dropped again while asking: ask again
      for (const [i, d] of look.entries()) {
        if (found[i]) d.seen = at;
        else {
          d.vanished = true;
          this.run.held.delete(`${d.lane} ${d.entry.id}`);
          this.run.log.warn(
            `${keys.flow}/${step.id}: entry ${d.entry.id} is no longer held by this process ` +
              `(Redis lost its last writes, another consumer claimed it, or a commit whose reply ` +
              `was lost acknowledged it); its batch goes on without it`,
          );
        }
      }
      return;
    }
  }

  /**
   * Appends outputs and dead letters and acknowledges the input, all or
   * nothing and never twice (commit.ts). When some of the entries were
   * committed elsewhere meanwhile (claimed by another consumer while this
   * one was slow), only the part of the batch that came from the others is
   * committed here. Deliveries found vanished (fence) are left out.
   */
  async commit(c: Commit<RedisDelivery>): Promise<void> {
    // A batch whose last try ended before a drop was never fenced after it
    // (its commit waited behind the one before, or was in flight): what it
    // made of an entry Redis lost, or another consumer holds now, is not
    // committed. The check is asked again when a drop comes mid-commit.
    const tally = { counted: false };
    const held = c.partial ? [...c.deliveries, c.partial.delivery] : c.deliveries;
    // From its first cut on, an entry is acknowledged only while this
    // process holds it, whether or not the progress was written: a part
    // another consumer took over is that consumer's to commit.
    if (c.partial) c.partial.delivery.upTo ??= 0;
    for (;;) {
      const at = this.run.drops.count;
      await this.#stillHeld(held);
      try {
        return await this.#commitHeld(c, at, tally);
      } catch (error) {
        if (!(error instanceof DroppedMeanwhile)) throw error;
      }
    }
  }

  async #commitHeld(
    c: Commit<RedisDelivery>,
    at: number,
    tally: { counted: boolean },
  ): Promise<void> {
    let { deliveries, out, letters, partial } = c;
    // A vanished delivery is not this process's to acknowledge: another
    // consumer may hold it now, and the commit's check (pending to anyone)
    // would let this one acknowledge it with none of its outputs.
    const all = partial ? [...deliveries, partial.delivery] : deliveries;
    /** The outputs and letters of the batch that came from `kept` and the partial delivery. */
    const mine = (kept: RedisDelivery[]) =>
      keepFor(
        (partial ? [...kept, partial.delivery] : kept).map((d) => d.entry),
        all.map((d) => d.entry),
        out,
        letters,
      );
    if (all.some((d) => d.vanished)) {
      const kept = deliveries.filter((d) => !d.vanished);
      if (partial?.delivery.vanished) partial = undefined;
      if (kept.length === 0 && !partial) return;
      ({ out, letters } = mine(kept));
      deliveries = kept;
    }
    const { step, options } = this.run;
    const lane = (deliveries[0] ?? partial!.delivery).lane;
    const alone = deliveries.length === 1 && deliveries[0].alone;
    const tryField = alone
      ? this.run.keys.tryField(step.id, lane, deliveries[0].entry.id)
      : undefined;
    // An output JSON cannot encode (a BigInt, a cycle: what a stage
    // registered in code may make) cannot travel through Redis: it is
    // dead-lettered with the commit, and the flow goes on, as a sink that
    // cannot write it would do in memory. The stage that made it counts it
    // rejected instead of emitted, once the commit that carries its letter
    // is written, and once per batch: not again for the part of the batch
    // left after others committed theirs, nor when a connection drop runs
    // the commit again (`tally`, kept by `commit`).
    const last = step.stages[step.stages.length - 1].stats;
    const encode = (items: Item[], letters: DeadLetter[]) => {
      const all = [...letters];
      const bad: Item[] = [];
      const entries = step.next
        ? encodeEntries(items, this.#outItems, options.entryBytes, (item, error) => {
          all.push(unencodableLetter(last.id, item, error));
          bad.push(item);
        })
        : [];
      return { entries, letters: all, bad };
    };
    const counted = (bad: Item[]) => {
      if (tally.counted) return;
      tally.counted = true;
      for (const item of bad) {
        if (item.update !== true) last.emitted--;
        last.count(last.rejected, UNENCODABLE, 1, true);
      }
    };
    for (;;) {
      const encoded = encode(out, letters);
      const gone = await this.#commit(lane, deliveries, encoded.entries, [], encoded.letters, {
        tryField,
        partial,
        fencedAt: at,
      });
      counted(encoded.bad);
      // Recorded, now or by a first send of this commit whose reply was lost.
      if (partial && (gone.length === 0 || gone.includes(APPLIED))) {
        partial.delivery.upTo = partial.upTo;
        const key = `${lane} ${partial.delivery.entry.id}`;
        if (this.run.held.has(key)) {
          this.run.held.set(key, partial.delivery.items.length - partial.upTo);
        }
      }
      if (gone.length === 0) return;
      // Some entries were committed elsewhere, are held by another consumer
      // now, or lost the progress recorded for them (Redis lost its last
      // writes: they are run again from what it kept): the rest of the
      // batch is committed without them.
      const goneSet = new Set(gone);
      const kept = deliveries.filter((d) => !goneSet.has(d.entry.id));
      if (partial && goneSet.has(partial.delivery.entry.id)) partial = undefined;
      if (kept.length === 0 && !partial) return;
      ({ out, letters } = mine(kept));
      deliveries = kept;
    }
  }

  /** Items of the entries this step read or claimed and has not committed. */
  heldItems(): number {
    let n = 0;
    for (const items of this.run.held.values()) n += items;
    return n;
  }

  /**
   * Ends the claim and trim loops and waits for them. Not left to the
   * flow's stop: a step that failed closes its edge before the runner
   * stops the flow, and waiting for that stop here would hang the flow.
   * A clean close then leaves the step's consumer groups (recovery.ts
   * leaveGroup), so `reset` does not take this process for a live one.
   */

  async close(): Promise<void> {
    this.#closed.abort();
    // A kill does not wait for a claim or trim call queued while Redis is away.
    await untilAborted(Promise.allSettled(this.#background), this.run.kill).catch(() => {});
    if (this.run.kill.aborted) {
      // What it held is abandoned: made claimable now, not after claimAfter.
      await untilAborted(this.#release(), AbortSignal.timeout(LEAVE_WITHIN_MS)).catch(() => {});
      return;
    }
    const { redis, keys, step, consumer } = this.run;
    // A clean stop with Redis away does not wait for it to come back: the
    // consumer is then left for the claim loops to prune.
    const within = AbortSignal.any([this.run.kill, AbortSignal.timeout(LEAVE_WITHIN_MS)]);
    for (const lane of LANES) {
      await untilAborted(leaveGroup(redis, keys.input(step.id, lane), step.id, consumer), within)
        .catch(() => {});
    }
  }

  /**
   * Marks the entries this step held, and will not finish, idle for
   * claimAfter (XCLAIM to itself, JUSTID: no delivery counted), so the next
   * process's claim loop takes them at its first tick: a run stopped hard
   * (its grace ran out, an API refused the key) had the next run wait out
   * claimAfter for them, 30 s, saying nothing. Only those still pending to
   * this consumer (markHeld): one another process claimed while this one
   * was cut off is that process's, and taking it back had a third claim it
   * while the second still ran it. Sent on the connection every commit goes
   * on, after the last of them, so no commit of this step can land after
   * another process has claimed what it acknowledges.
   */
  async #release(): Promise<void> {
    const { redis, keys, step, consumer, options } = this.run;
    // With Redis away a kill does not wait for it: they are claimed once really idle.
    if (redis.status !== "ready") return;
    const byLane = new Map<string, string[]>();
    for (const key of this.run.held.keys()) {
      const [lane, id] = key.split(" ");
      const ids = byLane.get(lane);
      if (ids) ids.push(id);
      else byLane.set(lane, [id]);
    }
    for (const [lane, ids] of byLane) {
      await markHeld(
        redis,
        keys.input(step.id, lane as Lane),
        step.id,
        consumer,
        options.claimAfter,
        ids,
      );
    }
  }

  /** Puts the two halves of an entry back on its stream as suspects, in one commit. */
  async #split(d: RedisDelivery, tryField: string): Promise<void> {
    const half = Math.ceil(d.items.length / 2);
    const halves = encodeEntries(d.items, half, Infinity).map((e) => ({ ...e, suspect: true }));
    this.run.log.warn(
      `${this.run.keys.flow}/${this.run.step.id}: entry ${d.entry.id} was started again and ` +
        `the process running it stopped before finishing it; splitting its ${d.items.length} ` +
        `items in case one of them stops processes (a process killed from outside looks the same)`,
    );
    await this.#commit(d.lane, [d], [], halves, [], { tryField });
  }

  /**
   * One commit script call, retried while Redis is away; returns the ids
   * already committed, or held by another consumer where this one's
   * progress is at stake. Given `fencedAt` (the drop count its deliveries
   * were checked at), a try after a later drop throws DroppedMeanwhile
   * instead, for the caller to check them again. With `partial`, records
   * how far into that entry the step got; an acknowledged delivery with
   * progress recorded has the record deleted.
   */
  async #commit(
    lane: Lane,
    deliveries: readonly RedisDelivery[],
    bodies: EncodedEntry[],
    back: (EncodedEntry & { suspect?: boolean })[],
    letters: readonly DeadLetter[],
    opts: { tryField?: string; partial?: Commit<RedisDelivery>["partial"]; fencedAt?: number } = {},
  ): Promise<string[]> {
    const { keys, step, redis, consumer } = this.run;
    const { partial, fencedAt } = opts;
    const commitKeys = {
      input: keys.input(step.id, lane),
      group: step.id,
      output: step.next && keys.input(step.next, lane),
      dlq: keys.dlq,
      tries: keys.tries,
    };
    const entries = deliveries.map((d) => d.entry);
    const cut = deliveries.filter((d) => d.upTo !== undefined);
    if (partial) cut.push(partial.delivery);
    const args = commitArgs(commitKeys, {
      entries,
      bodies,
      back,
      letters,
      tryField: opts.tryField,
      consumer,
      cut: cut.length
        ? {
          entries: cut.map((d) => ({
            id: d.entry.id,
            field: this.#progressField(d),
            upTo: d.upTo ?? 0,
          })),
          upTo: partial?.upTo,
        }
        : undefined,
    });
    // A script fault would repeat the writes it made before failing: the
    // step fails instead (untilRedis never retries one), and its entries,
    // still pending, are delivered again.
    const gone = await this.#retrying("commit", () => {
      if (fencedAt !== undefined && this.run.drops.count !== fencedAt) {
        return Promise.reject(new DroppedMeanwhile());
      }
      return runCommit(redis, commitKeys, args);
    }, (error) => !(error instanceof DroppedMeanwhile));
    for (const e of entries) this.run.held.delete(`${lane} ${e.id}`);
    if (gone.length === 0) this.#next.appended(bodies.length);
    return gone;
  }

  /** The `tries` field that records how many of an entry's items its step committed. */
  #progressField(d: RedisDelivery): string {
    return this.run.keys.upToField(this.run.step.id, d.lane, d.entry.id);
  }

  /**
   * Claimed entries resume after the items their step already committed
   * (a batch that ended in their middle recorded how many); one round trip
   * for the lot, on the claim path only.
   */
  async #resumed(deliveries: RedisDelivery[]): Promise<RedisDelivery[]> {
    if (deliveries.length === 0) return deliveries;
    const fields = deliveries.map((d) => this.#progressField(d));
    const done = await this.#retrying(
      "progress read",
      () => this.run.redis.hmget(this.run.keys.tries, ...fields),
    );
    return deliveries.map((d, i) => {
      const upTo = Number(done[i] ?? 0);
      if (!(upTo > 0)) return d;
      const items = d.items.slice(upTo);
      this.run.held.set(`${d.lane} ${d.entry.id}`, items.length);
      return { ...d, items, upTo };
    });
  }

  /**
   * Reads new entries of both lanes; the high lane's come first. An entry
   * this step already holds is left out: Redis delivers one again when its
   * group's last-delivered-id moved back (Redis lost its last writes, a
   * crash under appendfsync everysec), and the two copies in one batch
   * would both pass the commit's pending check and be written twice. The
   * delivery held commits it (it is pending again, so the check passes).
   *
   * Read as bytes and decoded here by TextDecoder: the client's own
   * decoding (Deno's Buffer#toString) walks any body with a non-ASCII
   * character byte by byte in JavaScript, the largest cost of reading.
   */
  async #readEntries(block: number): Promise<RedisDelivery[]> {
    const { keys, step, consumer, reader } = this.run;
    const high = keys.input(step.id, "high");
    const normal = keys.input(step.id, "normal");
    const reply = await this.#retrying("read", () =>
      reader.callBuffer(
        "XREADGROUP",
        "GROUP",
        step.id,
        consumer,
        "COUNT",
        this.#entriesPerRead,
        "BLOCK",
        block,
        "STREAMS",
        high,
        normal,
        ">",
        ">",
      ) as Promise<[Buffer, [Buffer, Buffer[]][]][] | null>);
    const out: RedisDelivery[] = [];
    for (const [key, entries] of reply ?? []) {
      const lane: Lane = key.toString() === high ? "high" : "normal";
      for (const [rawId, fields] of entries) {
        const id = rawId.toString();
        if (!this.run.held.has(`${lane} ${id}`)) out.push(this.#decoded(lane, id, fields));
      }
    }
    return out;
  }

  /**
   * After a connection dropped: the entries pending to this consumer that
   * it does not hold. A read whose reply was lost with the connection
   * delivered them (they are in its pending list) though the process never
   * saw them; found in that list (XPENDING, this consumer) and read by id
   * (XRANGE), they run now, not `claimAfter` later when the claim loop would
   * take them for a silent consumer's. Neither call counts a delivery or
   * touches an entry's idle time: a read of the consumer's history
   * (XREADGROUP from 0) counted one for every entry pending to it, those it
   * holds too, at every drop, and a dead letter's `attempts` then counted
   * the drops it lived through. The lost read's delivery is the one they
   * run under; they are marked held (markHeld) before they are read, as
   * that read did at once, and only those still pending to this consumer
   * are run.
   */
  async #readOwnPending(): Promise<RedisDelivery[]> {
    const { redis, keys, step, consumer, drops } = this.run;
    this.#ownReadAt = drops.count;
    // Held when the list is asked for: a batch being committed meanwhile is still in the list
    // Redis sends back, though no longer held once its commit returns; it is not an orphan.
    const heldBefore = new Set(this.run.held.keys());
    const out: RedisDelivery[] = [];
    for (const lane of LANES) {
      const key = keys.input(step.id, lane);
      for (let from = "-";;) {
        const pending = await this.#retrying(
          "look at its own pending entries",
          () => redis.xpending(key, step.id, from, "+", 100, consumer) as Promise<[string][]>,
        );
        if (pending.length === 0) break;
        from = `(${pending[pending.length - 1][0]}`;
        const orphans = pending.map(([id]) => id)
          .filter((id) => !heldBefore.has(`${lane} ${id}`) && !this.run.held.has(`${lane} ${id}`));
        if (orphans.length === 0) continue;
        // Marked held first, in one script that takes only those still pending to this
        // consumer (another process's claim loop may have taken one since XPENDING): their
        // idle time set to 0, no claim loop takes them from here on.
        const mine = await this.#retrying(
          "mark of its own pending entries",
          () => markHeld(redis, key, step.id, consumer, 0, orphans),
        );
        const read = await this.#retrying(
          "read of its own pending entries",
          () => Promise.all(mine.map((id) => redis.xrangeBuffer(key, id, id))),
        );
        for (const [i, [entry]] of read.entries()) {
          // Trimmed away since: nothing to run (the claim loop settles such entries).
          if (entry && !this.run.held.has(`${lane} ${mine[i]}`)) {
            out.push(this.#decoded(lane, mine[i], entry[1]));
          }
        }
      }
    }
    return out;
  }

  /** A read entry's delivery: its fields decoded, run alone when a split made it a suspect. */
  #decoded(lane: Lane, id: string, fields: Buffer[]): RedisDelivery {
    const entry = decodeEntry(id, fields.map((f) => utf8.decode(f)));
    return this.#delivery(lane, entry, entry.suspect === true);
  }

  #delivery(lane: Lane, entry: StreamEntry, alone: boolean): RedisDelivery {
    this.run.held.set(`${lane} ${entry.id}`, entry.items?.length ?? 0);
    const seen = this.run.drops.count;
    return { items: entry.items ?? [], lane, entry, urgent: lane === "high", alone, seen };
  }

  /**
   * Entries that did not parse go to dead letters with the reason,
   * acknowledged; entries of no items (written by hand) are acknowledged,
   * since a window holds no deadline for them and would keep them pending
   * for ever; the rest are returned.
   */
  async #usable(deliveries: RedisDelivery[]): Promise<RedisDelivery[]> {
    if (deliveries.every((d) => d.items.length)) return deliveries;
    for (const d of deliveries) {
      if (d.items.length) continue;
      const letters = d.entry.items ? [] : [unparsable(this.run.step.id, d.entry)];
      await this.#commit(d.lane, [d], [], [], letters);
    }
    return deliveries.filter((d) => d.items.length);
  }

  /** A Redis call of this step, retried while Redis is away; only a hard stop ends the wait. */
  #retrying<T>(
    what: string,
    call: () => Promise<T>,
    isRetryable?: (error: unknown) => boolean,
  ): Promise<T> {
    const who = `${this.run.keys.flow}/${this.run.step.id}`;
    const { log, kill: signal } = this.run;
    return untilRedis(call, { who, what, log, signal, isRetryable, paused: this.#paused });
  }

  /**
   * Backpressure across processes: while the next step's backlog (entries
   * not yet delivered plus delivered and unacknowledged, times items per
   * entry) is above maxBacklog, this step stops reading, so Redis memory
   * stays bounded when a sink is slow (BacklogGauge: asked every 100 ms).
   */
  async #roomDownstream(): Promise<boolean> {
    if (!this.run.step.next) return true;
    return (await this.#next.entries()) * this.#outItems <= this.run.options.maxBacklog;
  }
}

/**
 * Items per output entry: at most `entryItems`, and, before a window, the
 * size that fills it with whole entries, so its batches seldom cut one.
 */
export function entrySize(entryItems: number, next?: WindowOptions): number {
  if (!next) return entryItems;
  return Math.ceil(next.size / Math.ceil(next.size / entryItems));
}

/** A connection dropped after a commit's deliveries were checked: check them again first. */
class DroppedMeanwhile extends Error {}
