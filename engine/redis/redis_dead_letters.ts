import { type DeadLetter, letterItemJson, UNENCODABLE } from "../dead_letters.ts";
import { errorMessage } from "../errors.ts";

/**
 * The dead letter of an item JSON cannot hold (a BigInt, a cycle: what a
 * source or stage registered in code may make), stopped at the Redis edge
 * it would cross, as a sink that cannot write it stops it in memory.
 */
export function unencodableLetter(
  stage: string,
  item: DeadLetter["item"],
  error: unknown,
): DeadLetter {
  return { stage, reason: `${UNENCODABLE}: ${errorMessage(error)}`, attempts: 1, item };
}

/**
 * The fields of one dead-letter entry, alternating name and value, in the
 * layout of keys.ts: stage, reason, attempts, item (the JSON envelope),
 * time (ISO). Commits pass them to the script that appends dead letters
 * in the same step that acknowledges the entry they came from.
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
    letterItemJson(letter.item),
    "time",
    time.toISOString(),
  ];
}
