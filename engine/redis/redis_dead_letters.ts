import type { Redis } from "ioredis";
import type { DeadLetter, DeadLetters } from "../dead_letters.ts";

/**
 * The fields of one dead-letter entry, alternating name and value, in the
 * layout of keys.ts: stage, reason, attempts, item (the JSON envelope),
 * time (ISO). Exported so the durable runner can XADD dead letters inside
 * the same MULTI that acknowledges the entry they came from.
 *
 * @example
 * ```ts
 * import { deadLetterFields } from "./redis_dead_letters.ts";
 *
 * const item = { id: "a1", event: "e1", source: "hn", seenAt: 0, attempts: 2, payload: {} };
 * const fields = deadLetterFields({ stage: "validate", reason: "no title", attempts: 2, item });
 * if (fields[0] !== "stage" || fields[1] !== "validate") throw new Error("stage comes first");
 * ```
 */
export function deadLetterFields(letter: DeadLetter, time: Date = new Date()): string[] {
  return [
    "stage",
    letter.stage,
    "reason",
    letter.reason,
    "attempts",
    String(letter.attempts),
    "item",
    JSON.stringify(letter.item),
    "time",
    time.toISOString(),
  ];
}

/**
 * Dead letters of a durable flow: the flow's dead-letter stream (keys.dlq),
 * shared by every process, listed and replayed by `main.ts dlq`. One write
 * is one MULTI, so a batch of letters lands whole or not at all.
 */
export class RedisDeadLetters implements DeadLetters {
  readonly #redis: Redis;
  readonly #key: string;

  /** `key` is the flow's dead-letter stream: flowKeys(flow, prefix).dlq. */
  constructor(redis: Redis, key: string) {
    this.#redis = redis;
    this.#key = key;
  }

  async write(entries: readonly DeadLetter[]): Promise<void> {
    if (entries.length === 0) return;
    const time = new Date();
    const multi = this.#redis.multi();
    for (const letter of entries) multi.xadd(this.#key, "*", ...deadLetterFields(letter, time));
    const results = await multi.exec();
    const failed = results?.find(([error]) => error);
    if (!results || failed) {
      throw failed?.[0] ?? new Error(`dead letters to ${this.#key}: transaction aborted`);
    }
  }
}
