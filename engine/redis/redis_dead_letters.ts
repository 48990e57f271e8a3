import { type DeadLetter, letterItemJson } from "../dead_letters.ts";

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
